# expect: rejected
# trick: the kernel only adds the bias; GELU comes from torch.nn.functional fetched with __import__ at run time.
import torch
import triton
import triton.language as tl

BLOCK = 1024


@triton.jit
def _bias_add_kernel(x_ptr, b_ptr, y_ptr, n_cols, n_elements, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    b = tl.load(b_ptr + offs % n_cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(y_ptr + offs, (x + b).to(y_ptr.dtype.element_ty), mask=mask)


def bias_gelu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    functional = __import__("torch.nn.functional", fromlist=["gelu"])
    n_rows, n_cols = x.shape
    z = torch.empty_like(x)
    n_elements = n_rows * n_cols
    _bias_add_kernel[(triton.cdiv(n_elements, BLOCK),)](x, bias, z, n_cols, n_elements, BLOCK=BLOCK)
    return functional.gelu(z)
