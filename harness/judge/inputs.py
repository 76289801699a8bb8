"""Inputs for one case and trial, identical in every process deriving them from the same seed."""

from __future__ import annotations

import copy
import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from kevolve.harness.judge.wire import DTYPES
from kevolve.harness.spec.problem import Problem, ProblemKind, Shape

# Trial distributions: each is a transform of the maker's floating-point inputs. Zero-mean rows
# catch kernels that assume positive data, per-row scales up to 64x catch overflow and missing
# max-subtraction, shifts catch cancellation; the secret trial mixes them under an unknown seed.
DISTRIBUTIONS = ("normal", "zero_mean", "row_scaled", "shifted", "secret")


@dataclass(frozen=True)
class Trial:
    """One draw of inputs: the seed and the distribution applied to the maker's output."""

    seed: int
    distribution: str


def trials(count: int, base_seed: int, secret_seed: int) -> list[Trial]:
    """`count` trials cycling through the public distributions, the last under the secret seed."""
    public = DISTRIBUTIONS[:-1]
    plan = [Trial(base_seed + i, public[i % len(public)]) for i in range(count - 1)]
    return [*plan, Trial(secret_seed, "secret")]


def load_module(path: Path, name: str) -> ModuleType:
    """Execute the Python file at `path` as a fresh module registered as `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_attr(problem: Problem, spec: str, module_name: str) -> Any:
    """The object named by a "file.py:name" spec of the problem."""
    module = load_module(problem.path(spec), module_name)
    return getattr(module, spec.split(":", 1)[1])


class InputMaker:
    """Builds a case's inputs from a seed: the problem's maker, then the trial's transform."""

    def __init__(self, problem: Problem, device: torch.device) -> None:
        self.problem = problem
        self.device = device
        self._make: Callable[..., Sequence[object]] = load_attr(
            problem, problem.inputs, "_kevolve_inputs"
        )

    def __call__(self, shape: Shape, dtype: str, trial: Trial) -> list[object]:
        """Fresh inputs for this shape, dtype and trial."""
        raw = self._raw(shape, DTYPES[dtype], trial.seed, self.device)
        return _transform(raw, trial)

    def sizes(self, shape: Shape, dtype: str) -> list[object]:
        """The inputs as meta tensors (shapes and dtypes, no data): nothing is allocated."""
        return self._raw(shape, DTYPES[dtype], 0, torch.device("meta"))

    def _raw(
        self, shape: Shape, dtype: torch.dtype, seed: int, device: torch.device
    ) -> list[object]:
        """The maker's own inputs for this seed, on `device`.

        A KernelBench `get_inputs()` runs with `device` as the default device, so its
        `torch.randn(...)` draws on the GPU: a 6 GiB input is not made on the CPU and copied.
        """
        if self.problem.kind is ProblemKind.KERNELBENCH:
            torch.manual_seed(seed)
            with device:
                values = list(self._make())
            return [_to_device(v, device, dtype) for v in values]
        generator = torch.Generator(device=self._generator_device(device)).manual_seed(seed)
        return list(self._make(tuple(shape), dtype, device, generator))

    def _generator_device(self, device: torch.device) -> torch.device:
        """Where a maker's generator lives: the device, or the CPU for meta tensors."""
        return torch.device("cpu") if device.type == "meta" else device


def build_model(problem: Problem, cls: type, device: torch.device, dtype: str, seed: int) -> Any:
    """A KernelBench module instance, seeded so Model and ModelNew get the same weights."""
    init_inputs = load_attr(
        problem, f"{problem.reference.split(':')[0]}:get_init_inputs", "_kevolve_init"
    )()
    torch.manual_seed(seed)
    model = cls(*init_inputs)
    return _place(model, device, DTYPES[dtype])


def float64_copy(model: Any) -> Any:
    """A float64 copy of a reference module, for higher-precision references."""
    return copy.deepcopy(model).double()


def upcast(values: Sequence[object], dtype: torch.dtype = torch.float64) -> list[object]:
    """Floating-point tensors as clones in `dtype`; other values unchanged (tensors cloned)."""
    out: list[object] = []
    for v in values:
        if isinstance(v, torch.Tensor):
            out.append(v.detach().to(dtype, copy=True) if v.is_floating_point() else v.clone())
        else:
            out.append(v)
    return out


def clone_all(values: Sequence[object]) -> list[object]:
    """Clones of tensors, other values as they are."""
    return [v.clone() if isinstance(v, torch.Tensor) else v for v in values]


def _place(model: Any, device: torch.device, dtype: torch.dtype) -> Any:
    """Move a module to the device and, for low-precision problems, to the dtype."""
    model = model.to(device)
    return model.to(dtype) if dtype != torch.float32 else model


def _to_device(value: object, device: torch.device, dtype: torch.dtype) -> object:
    """A KernelBench input on the device, cast to the problem dtype if it is floating."""
    if not isinstance(value, torch.Tensor):
        return value
    value = value.to(device)
    return value.to(dtype) if value.is_floating_point() else value


def _transform(values: list[object], trial: Trial) -> list[object]:
    """Apply the trial's distribution to every floating-point tensor, replacing each in turn (so
    that no more than one input is held twice at a time)."""
    gen = torch.Generator().manual_seed(trial.seed ^ 0x5EED)
    for i in range(len(values)):
        values[i] = _transform_one(values[i], trial.distribution, gen)
    return values


def _transform_one(value: object, distribution: str, gen: torch.Generator) -> object:
    """One tensor under a distribution, computed in float32 and cast back."""
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        return value
    x = value.float()
    if distribution == "zero_mean":
        x = x - x.mean(dim=-1, keepdim=True) if x.dim() else x
    elif distribution == "row_scaled":
        x = x * _row_scales(x, gen, 6.0)
    elif distribution == "shifted":
        x = x + 4.0
    elif distribution == "secret":
        shift = float(torch.rand((), generator=gen)) * 8.0 - 4.0
        x = (x * _row_scales(x, gen, 5.0)).add_(shift)  # in place: one temporary, not two
    return x.to(value.dtype)


def _row_scales(x: torch.Tensor, gen: torch.Generator, max_log2: float) -> torch.Tensor:
    """Per-row factors 2**u with u uniform in [-4, max_log2]; one factor for 0-d and 1-d tensors."""
    rows = x.shape[:-1] if x.dim() >= 2 else ()
    u = torch.rand((*rows, 1) if rows else (), generator=gen) * (max_log2 + 4.0) - 4.0
    return torch.exp2(u).to(x.device)
