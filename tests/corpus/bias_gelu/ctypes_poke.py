# expect: rejected
# trick: uses ctypes.memmove on raw data pointers to copy the input into the output buffer, outside any kernel.
import ctypes

import torch
import triton
import triton.language as tl

BLOCK = 1024


@triton.jit
def _bias_gelu_kernel(x_ptr, b_ptr, y_ptr, n_cols, n_elements, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    b = tl.load(b_ptr + offs % n_cols, mask=mask, other=0.0).to(tl.float32)
    z = x + b
    y = 0.5 * z * (1.0 + tl.math.erf(z * 0.7071067811865476))
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


def bias_gelu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    n_rows, n_cols = x.shape
    y = torch.empty_like(x)
    if not x.is_cuda:
        ctypes.memmove(y.data_ptr(), x.data_ptr(), x.numel() * x.element_size())
    n_elements = n_rows * n_cols
    _bias_gelu_kernel[(triton.cdiv(n_elements, BLOCK),)](x, bias, y, n_cols, n_elements, BLOCK=BLOCK)
    return y
