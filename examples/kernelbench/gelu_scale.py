"""KernelBench-format problem: exact (erf) GELU followed by a constant scale."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 32
dim = 1024
scale = 1.702


class Model(nn.Module):
    """Returns gelu(x) * scale, with the exact erf GELU."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x) * self.scale


def get_inputs() -> list[torch.Tensor]:
    return [torch.randn(batch_size, dim)]


def get_init_inputs() -> list[object]:
    return [scale]
