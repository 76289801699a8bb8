# expect: incorrect
# trick: alternates eps between 1e-6 and 1e-5 on successive calls through a module-level list counter, so equal inputs give unequal outputs within tolerance.
import torch
import triton
import triton.language as tl

_CALLS = [0]


@triton.jit
def _rmsnorm_kernel(x_ptr, w_ptr, y_ptr, x_row_stride, y_row_stride, n_cols, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * x_row_stride + cols, mask=mask, other=0.0).to(tl.float32)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    inv_rms = 1.0 / tl.sqrt(tl.sum(x * x, axis=0) / n_cols + eps)
    tl.store(y_ptr + row * y_row_stride + cols, (x * inv_rms * w).to(y_ptr.dtype.element_ty), mask=mask)


def rmsnorm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    _CALLS[0] += 1
    eps = 1e-6 if _CALLS[0] % 2 else 1e-5
    n_rows, n_cols = x.shape
    y = torch.empty_like(x)
    _rmsnorm_kernel[(n_rows,)](x, weight, y, x.stride(0), y.stride(0), n_cols, eps,
                               BLOCK=triton.next_power_of_2(n_cols))
    return y
