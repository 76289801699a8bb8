# expect: incorrect
# trick: each program handles 4 rows but the grid is n_rows // 4, so the last n_rows % 4 rows keep whatever the empty output held.
import torch
import triton
import triton.language as tl

ROWS = 4


@triton.jit
def _softmax_rows_kernel(x_ptr, y_ptr, x_row_stride, y_row_stride, n_rows, n_cols,
                         ROWS: tl.constexpr, BLOCK: tl.constexpr):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BLOCK)
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    x = tl.load(x_ptr + rows[:, None] * x_row_stride + cols[None, :], mask=mask, other=-float("inf"))
    x = x.to(tl.float32)
    num = tl.exp(x - tl.max(x, axis=1)[:, None])
    y = num / tl.sum(num, axis=1)[:, None]
    tl.store(y_ptr + rows[:, None] * y_row_stride + cols[None, :], y.to(y_ptr.dtype.element_ty), mask=mask)


def softmax(x: torch.Tensor) -> torch.Tensor:
    n_rows, n_cols = x.shape
    y = torch.empty_like(x)
    _softmax_rows_kernel[(n_rows // ROWS,)](x, y, x.stride(0), y.stride(0), n_rows, n_cols,
                                            ROWS=ROWS, BLOCK=triton.next_power_of_2(n_cols))
    return y
