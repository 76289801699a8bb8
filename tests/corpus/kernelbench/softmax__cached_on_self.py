# expect: rejected
# trick: ModelNew keeps the first output on self and returns it for every later input of the same
# shape without launching anything (caught because no kernel of its own runs).
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _softmax_kernel(x_ptr, y_ptr, x_row_stride, y_row_stride, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * x_row_stride + cols, mask=mask, other=-float("inf")).to(tl.float32)
    num = tl.exp(x - tl.max(x, axis=0))
    tl.store(y_ptr + row * y_row_stride + cols, (num / tl.sum(num, axis=0)).to(y_ptr.dtype.element_ty), mask=mask)


class ModelNew(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cached = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cached is not None and self.cached.shape == x.shape:
            return self.cached
        n_rows, n_cols = x.shape
        y = torch.empty_like(x)
        _softmax_kernel[(n_rows,)](x, y, x.stride(0), y.stride(0), n_cols, BLOCK=triton.next_power_of_2(n_cols))
        self.cached = y
        return y
