# expect: incorrect
# trick: accumulates each row's sum of squares in the input dtype, 8 running lanes per row, so long bfloat16 rows drop small terms (and float16 overflows) and the scale drifts.
import torch
import triton
import triton.language as tl

ROWS = 8
BLOCK = 8
EPS = 1e-6


@triton.jit
def _rmsnorm_kernel(x_ptr, w_ptr, y_ptr, x_row_stride, y_row_stride, n_rows, n_cols, eps,
                    ROWS: tl.constexpr, BLOCK: tl.constexpr, BLOCK_N: tl.constexpr):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    row_mask = rows[:, None] < n_rows
    offs = tl.arange(0, BLOCK)
    acc = tl.zeros((ROWS, BLOCK), dtype=x_ptr.dtype.element_ty)
    for start in range(0, n_cols, BLOCK):
        cols = start + offs
        mask = row_mask & (cols[None, :] < n_cols)
        x = tl.load(x_ptr + rows[:, None] * x_row_stride + cols[None, :], mask=mask, other=0.0)
        acc += x * x
    inv_rms = 1.0 / tl.sqrt(tl.sum(acc, axis=1).to(tl.float32) / n_cols + eps)
    cols = tl.arange(0, BLOCK_N)
    mask = row_mask & (cols[None, :] < n_cols)
    x = tl.load(x_ptr + rows[:, None] * x_row_stride + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    w = tl.load(w_ptr + cols, mask=cols < n_cols, other=0.0).to(tl.float32)
    y = x * inv_rms[:, None] * w[None, :]
    tl.store(y_ptr + rows[:, None] * y_row_stride + cols[None, :], y.to(y_ptr.dtype.element_ty), mask=mask)


def rmsnorm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    n_rows, n_cols = x.shape
    y = torch.empty_like(x)
    _rmsnorm_kernel[(triton.cdiv(n_rows, ROWS),)](
        x, weight, y, x.stride(0), y.stride(0), n_rows, n_cols, EPS,
        ROWS=ROWS, BLOCK=BLOCK, BLOCK_N=triton.next_power_of_2(n_cols),
    )
    return y
