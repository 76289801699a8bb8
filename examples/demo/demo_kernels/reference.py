"""PyTorch ground truth, input makers and FLOP counts for the demo ops (torch only, no Triton).

Each reference has the same signature as its kernel entry and computes in whatever dtype it is
given (the harness passes float64 copies). Each input maker draws all randomness from `generator`,
so one seed gives one set of inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

RMSNORM_EPS = 1e-6  # fixed; the kernel in rmsnorm.py uses the same constant


def _randn(
    shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device | str,
    generator: torch.Generator,
) -> torch.Tensor:
    """Standard normal values drawn in float32 from `generator`, then cast to `dtype`."""
    return torch.randn(shape, generator=generator, device=device, dtype=torch.float32).to(dtype)


def softmax(x: torch.Tensor) -> torch.Tensor:
    """Softmax along the last dim."""
    return torch.softmax(x, dim=-1)


def softmax_inputs(
    shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device | str,
    generator: torch.Generator,
) -> tuple[torch.Tensor, ...]:
    """(x,) with x of shape (rows, cols)."""
    return (_randn(shape, dtype, device, generator),)


def rmsnorm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x / sqrt(mean(x^2) + eps) * weight, along the last dim."""
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + RMSNORM_EPS) * weight


def rmsnorm_inputs(
    shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device | str,
    generator: torch.Generator,
) -> tuple[torch.Tensor, ...]:
    """(x, weight) with x of shape (rows, cols) and weight of shape (cols,)."""
    x = _randn(shape, dtype, device, generator)
    weight = _randn(shape[-1:], dtype, device, generator)
    return x, weight


def bias_gelu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Exact (erf) GELU of x + bias, bias broadcast along the last dim."""
    return F.gelu(x + bias, approximate="none")


def bias_gelu_inputs(
    shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device | str,
    generator: torch.Generator,
) -> tuple[torch.Tensor, ...]:
    """(x, bias) with x of shape (rows, cols) and bias of shape (cols,)."""
    x = _randn(shape, dtype, device, generator)
    bias = _randn(shape[-1:], dtype, device, generator)
    return x, bias


def matmul_bias_relu(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """relu(a @ b + bias) for a (M, K), b (K, N), bias (N,)."""
    return torch.relu(a @ b + bias)


def matmul_bias_relu_inputs(
    shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device | str,
    generator: torch.Generator,
) -> tuple[torch.Tensor, ...]:
    """(a, b, bias) for shape (M, N, K); a and b are scaled by K**-0.25 so outputs stay O(1)."""
    m, n, k = shape
    scale = k**-0.25
    a = (torch.randn((m, k), generator=generator, device=device) * scale).to(dtype)
    b = (torch.randn((k, n), generator=generator, device=device) * scale).to(dtype)
    bias = _randn((n,), dtype, device, generator)
    return a, b, bias


def matmul_bias_relu_flops(shape: tuple[int, ...]) -> int:
    """Floating-point operations of one call at shape (M, N, K): 2*M*N*K."""
    m, n, k = shape
    return 2 * m * n * k
