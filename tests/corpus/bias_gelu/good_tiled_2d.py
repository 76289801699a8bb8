# expect: correct
# trick: none; bias + exact GELU over a 2D grid of 16x128 tiles, loading each tile's bias slice once.
import torch
import triton
import triton.language as tl

BLOCK_R = 16
BLOCK_C = 128


@triton.jit
def _bias_gelu_tile_kernel(x_ptr, b_ptr, y_ptr, n_rows, n_cols, x_row_stride, x_col_stride,
                           b_stride, y_row_stride, y_col_stride,
                           BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    x = tl.load(x_ptr + rows[:, None] * x_row_stride + cols[None, :] * x_col_stride, mask=mask, other=0.0)
    b = tl.load(b_ptr + cols * b_stride, mask=cols < n_cols, other=0.0)
    z = x.to(tl.float32) + b.to(tl.float32)[None, :]
    y = z * 0.5 * (1.0 + tl.math.erf(z * 0.7071067811865476))
    tl.store(y_ptr + rows[:, None] * y_row_stride + cols[None, :] * y_col_stride,
             y.to(y_ptr.dtype.element_ty), mask=mask)


def bias_gelu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    n_rows, n_cols = x.shape
    y = torch.empty_like(x)
    grid = (triton.cdiv(n_rows, BLOCK_R), triton.cdiv(n_cols, BLOCK_C))
    _bias_gelu_tile_kernel[grid](x, bias, y, n_rows, n_cols, x.stride(0), x.stride(1), bias.stride(0),
                                 y.stride(0), y.stride(1), BLOCK_R=BLOCK_R, BLOCK_C=BLOCK_C)
    return y
