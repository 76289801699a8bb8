# expect: correct
# trick: none; RMSNorm that loops over each row in fixed 512-column blocks, accumulating squares in fp32.
import torch
import triton
import triton.language as tl

BLOCK = 512
EPS = 1e-6


@triton.jit
def _rmsnorm_looped_kernel(x_ptr, w_ptr, y_ptr, x_row_stride, x_col_stride, w_stride,
                           y_row_stride, y_col_stride, n_cols, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    for start in range(0, n_cols, BLOCK):
        cols = start + offs
        x = tl.load(x_ptr + row * x_row_stride + cols * x_col_stride, mask=cols < n_cols, other=0.0)
        x = x.to(tl.float32)
        acc += x * x
    inv_rms = 1.0 / tl.sqrt(tl.sum(acc, axis=0) / n_cols + eps)
    for start in range(0, n_cols, BLOCK):
        cols = start + offs
        mask = cols < n_cols
        x = tl.load(x_ptr + row * x_row_stride + cols * x_col_stride, mask=mask, other=0.0)
        w = tl.load(w_ptr + cols * w_stride, mask=mask, other=0.0)
        y = x.to(tl.float32) * inv_rms * w.to(tl.float32)
        tl.store(y_ptr + row * y_row_stride + cols * y_col_stride, y.to(y_ptr.dtype.element_ty), mask=mask)


def rmsnorm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    n_rows, n_cols = x.shape
    y = torch.empty_like(x)
    _rmsnorm_looped_kernel[(n_rows,)](x, weight, y, x.stride(0), x.stride(1), weight.stride(0),
                                      y.stride(0), y.stride(1), n_cols, EPS, BLOCK=BLOCK)
    return y
