# expect: rejected
# trick: a module-local `def jit(fn): return fn` makes the torch-computing entry look like a Triton kernel to a screen that trusts the name.
import torch


def jit(fn):
    return fn


@jit
def softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x.float(), dim=-1).to(x.dtype)
