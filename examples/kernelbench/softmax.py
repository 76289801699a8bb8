"""KernelBench-format problem: softmax over dim 1 of a (batch, dim) tensor."""

import torch
import torch.nn as nn

batch_size = 16
dim = 4096


class Model(nn.Module):
    """Applies softmax along dim 1."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=1)


def get_inputs() -> list[torch.Tensor]:
    return [torch.randn(batch_size, dim)]


def get_init_inputs() -> list[object]:
    return []
