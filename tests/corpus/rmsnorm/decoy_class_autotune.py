# expect: rejected
# trick: a local class named `autotune` takes Triton's arguments and returns the function unchanged, so `@autotune(...)` dresses up a torch rmsnorm.
import torch


class autotune:
    def __init__(self, configs, key):
        self.configs = configs

    def __call__(self, fn):
        return fn


@autotune(configs=[], key=["n"])
def rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + eps) * weight.float()).to(x.dtype)
