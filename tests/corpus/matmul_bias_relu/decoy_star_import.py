# expect: rejected
# trick: `from triton import *` hides where `jit` comes from, so a screen cannot tell the decorated torch-computing entry is no kernel.
import torch
from triton import *  # noqa: F403


@jit  # noqa: F405
def matmul_bias_relu(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return torch.relu(a.float() @ b.float() + bias.float()).to(a.dtype)
