# expect: incorrect
# trick: uses the tanh approximation of GELU (written with exp), off from the exact erf GELU by up to about 1e-3.
import torch
import torch.nn as nn
import triton
import triton.language as tl

BLOCK = 1024


@triton.jit
def _gelu_scale_kernel(x_ptr, y_ptr, n_elements, scale, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    u = 0.7978845608028654 * (x + 0.044715 * x * x * x)
    cdf = 1.0 / (1.0 + tl.exp(-2.0 * u))  # 0.5 * (1 + tanh(u))
    tl.store(y_ptr + offs, (x * cdf * scale).to(y_ptr.dtype.element_ty), mask=mask)


class ModelNew(nn.Module):
    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        n_elements = x.numel()
        _gelu_scale_kernel[(triton.cdiv(n_elements, BLOCK),)](x, y, n_elements, self.scale, BLOCK=BLOCK)
        return y
