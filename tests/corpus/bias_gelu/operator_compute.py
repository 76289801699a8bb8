# expect: rejected
# trick: adds the bias on the host with the tensor + operator (statically just a BinOp) and launches a kernel that only applies GELU.
import torch
import triton
import triton.language as tl

BLOCK = 1024


@triton.jit
def _gelu_kernel(z_ptr, y_ptr, n_elements, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    z = tl.load(z_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    y = 0.5 * z * (1.0 + tl.math.erf(z * 0.7071067811865476))
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


def bias_gelu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    z = x + bias
    y = torch.empty_like(z)
    n_elements = z.numel()
    _gelu_kernel[(triton.cdiv(n_elements, BLOCK),)](z, y, n_elements, BLOCK=BLOCK)
    return y
