"""RMSNorm: one program per row, the whole row in one block, fp32 math."""

import torch
import triton
import triton.language as tl

EPS = 1e-6  # the reference uses the same constant


@triton.jit
def _rmsnorm_kernel(
    x_ptr,
    w_ptr,
    y_ptr,
    x_row_stride,
    x_col_stride,
    w_stride,
    y_row_stride,
    y_col_stride,
    n_cols,
    eps,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * x_row_stride + cols * x_col_stride, mask=mask, other=0.0)
    x = x.to(tl.float32)
    w = tl.load(w_ptr + cols * w_stride, mask=mask, other=0.0).to(tl.float32)
    inv_rms = 1.0 / tl.sqrt(tl.sum(x * x, axis=0) / n_cols + eps)
    y = x * inv_rms * w
    tl.store(
        y_ptr + row * y_row_stride + cols * y_col_stride, y.to(y_ptr.dtype.element_ty), mask=mask
    )


def rmsnorm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """RMSNorm of a 2D tensor along its last dim, scaled by `weight`, in x's dtype."""
    n_rows, n_cols = x.shape
    y = torch.empty_like(x)
    _rmsnorm_kernel[(n_rows,)](
        x,
        weight,
        y,
        x.stride(0),
        x.stride(1),
        weight.stride(0),
        y.stride(0),
        y.stride(1),
        n_cols,
        EPS,
        BLOCK=triton.next_power_of_2(n_cols),
    )
    return y
