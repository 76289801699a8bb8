# expect: rejected
# trick: reaches torch.softmax through getattr with a name built at run time, so a plain name search misses it.
import torch
import triton
import triton.language as tl

_OP = "soft" + "max"


@triton.jit
def _copy_kernel(x_ptr, y_ptr, n_elements, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask), mask=mask)


def softmax(x: torch.Tensor) -> torch.Tensor:
    z = getattr(torch, _OP)(x, dim=-1)
    y = torch.empty_like(x)
    _copy_kernel[(triton.cdiv(z.numel(), 1024),)](z, y, z.numel(), BLOCK=1024)
    return y
