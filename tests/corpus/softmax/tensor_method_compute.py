# expect: rejected
# trick: the host computes exp and the row sums with tensor methods (.amax/.exp/.sum); the kernel only divides.
import torch
import triton
import triton.language as tl


@triton.jit
def _divide_kernel(e_ptr, s_ptr, y_ptr, e_row_stride, y_row_stride, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    e = tl.load(e_ptr + row * e_row_stride + cols, mask=mask, other=0.0)
    s = tl.load(s_ptr + row)
    tl.store(y_ptr + row * y_row_stride + cols, (e / s).to(y_ptr.dtype.element_ty), mask=mask)


def softmax(x: torch.Tensor) -> torch.Tensor:
    n_rows, n_cols = x.shape
    xf = x.float()
    e = xf.sub(xf.amax(dim=-1, keepdim=True)).exp()
    s = e.sum(dim=-1).contiguous()
    y = torch.empty_like(x)
    _divide_kernel[(n_rows,)](e, s, y, e.stride(0), y.stride(0), n_cols,
                              BLOCK=triton.next_power_of_2(n_cols))
    return y
