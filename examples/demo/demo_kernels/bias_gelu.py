"""Bias + exact GELU: the 2D input flattened into 1D blocks, fp32 math."""

import torch
import triton
import triton.language as tl

BLOCK = 1024


@triton.jit
def _bias_gelu_kernel(
    x_ptr,
    bias_ptr,
    y_ptr,
    x_row_stride,
    x_col_stride,
    bias_stride,
    y_row_stride,
    y_col_stride,
    n_cols,
    n_elements,
    BLOCK: tl.constexpr,
):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    rows = offs // n_cols
    cols = offs % n_cols
    x = tl.load(x_ptr + rows * x_row_stride + cols * x_col_stride, mask=mask, other=0.0)
    b = tl.load(bias_ptr + cols * bias_stride, mask=mask, other=0.0)
    z = x.to(tl.float32) + b.to(tl.float32)
    y = 0.5 * z * (1.0 + tl.math.erf(z * 0.7071067811865476))
    tl.store(
        y_ptr + rows * y_row_stride + cols * y_col_stride, y.to(y_ptr.dtype.element_ty), mask=mask
    )


def bias_gelu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Exact GELU of x + bias for a 2D x and a bias along its last dim, in x's dtype."""
    n_rows, n_cols = x.shape
    y = torch.empty_like(x)
    n_elements = n_rows * n_cols
    _bias_gelu_kernel[(triton.cdiv(n_elements, BLOCK),)](
        x,
        bias,
        y,
        x.stride(0),
        x.stride(1),
        bias.stride(0),
        y.stride(0),
        y.stride(1),
        n_cols,
        n_elements,
        BLOCK=BLOCK,
    )
    return y
