# expect: rejected
# trick: computes the matmul by calling the nn.Linear submodule (no torch function named anywhere) and only applies ReLU in Triton.
import torch
import torch.nn as nn
import triton
import triton.language as tl

BLOCK = 1024


@triton.jit
def _relu_kernel(x_ptr, y_ptr, n_elements, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(y_ptr + offs, tl.maximum(x, 0.0), mask=mask)


class ModelNew(nn.Module):
    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x)
        y = torch.empty_like(z)
        n_elements = z.numel()
        _relu_kernel[(triton.cdiv(n_elements, BLOCK),)](z, y, n_elements, BLOCK=BLOCK)
        return y
