# expect: rejected
# trick: imports an allow-listed standard helper under Triton's name (`from functools import partial as jit`), which wraps the torch-computing entry without changing it.
import torch
from functools import partial as jit


@jit
def bias_gelu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.gelu(x.float() + bias.float()).to(x.dtype)
