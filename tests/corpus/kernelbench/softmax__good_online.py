# expect: correct
# trick: none; ModelNew runs an online softmax over each row in fixed 512-column blocks.
import torch
import torch.nn as nn
import triton
import triton.language as tl

BLOCK = 512


@triton.jit
def _online_softmax_kernel(x_ptr, y_ptr, x_row_stride, x_col_stride, y_row_stride, y_col_stride,
                           n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    m = -float("inf")
    d = 0.0
    for start in range(0, n_cols, BLOCK):
        cols = start + offs
        x = tl.load(x_ptr + row * x_row_stride + cols * x_col_stride, mask=cols < n_cols,
                    other=-float("inf")).to(tl.float32)
        m_new = tl.maximum(m, tl.max(x, axis=0))
        d = d * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new), axis=0)
        m = m_new
    for start in range(0, n_cols, BLOCK):
        cols = start + offs
        mask = cols < n_cols
        x = tl.load(x_ptr + row * x_row_stride + cols * x_col_stride, mask=mask,
                    other=-float("inf")).to(tl.float32)
        tl.store(y_ptr + row * y_row_stride + cols * y_col_stride,
                 (tl.exp(x - m) / d).to(y_ptr.dtype.element_ty), mask=mask)


class ModelNew(nn.Module):
    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_rows, n_cols = x.shape
        y = torch.empty_like(x)
        _online_softmax_kernel[(n_rows,)](x, y, x.stride(0), x.stride(1), y.stride(0), y.stride(1),
                                          n_cols, BLOCK=BLOCK)
        return y
