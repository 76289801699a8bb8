# expect: correct
# trick: none; the legitimate spellings a decoy imitates: `from triton import jit`, `import triton as tr` with `@tr.heuristics(...)` choosing the block size.
import torch
import triton as tr
import triton.language as tl
from triton import jit


@tr.heuristics({"BLOCK": lambda args: tr.next_power_of_2(args["n_cols"])})
@jit
def _row_softmax_kernel(x_ptr, y_ptr, x_row_stride, y_row_stride, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * x_row_stride + cols, mask=mask, other=-float("inf")).to(tl.float32)
    e = tl.exp(x - tl.max(x, axis=0))
    y = e / tl.sum(e, axis=0)
    tl.store(y_ptr + row * y_row_stride + cols, y.to(y_ptr.dtype.element_ty), mask=mask)


def softmax(x: torch.Tensor) -> torch.Tensor:
    n_rows, n_cols = x.shape
    y = torch.empty_like(x)
    _row_softmax_kernel[(n_rows,)](x, y, x.stride(0), y.stride(0), n_cols)
    return y
