# expect: rejected
# trick: `import triton`, then rebinds the name `triton` to a class whose `jit` returns the function unchanged, so `@triton.jit` wraps host torch code.
import torch
import triton


class _Shim:
    @staticmethod
    def jit(fn):
        return fn


triton = _Shim()


@triton.jit
def softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x.float(), dim=-1).to(x.dtype)
