# expect: rejected
# trick: imports Triton's jit properly, then rebinds the name to a pass-through lambda before decorating the torch-computing entry.
import torch
from triton import jit

jit = lambda fn: fn  # noqa: E731


@jit
def softmax(x: torch.Tensor) -> torch.Tensor:
    e = torch.exp(x.float() - x.float().amax(dim=-1, keepdim=True))
    return (e / e.sum(dim=-1, keepdim=True)).to(x.dtype)
