"""`Precompiler`: a candidate's Triton kernels compiled for a case before the GPU hold, none run.

The judge asks the worker to compile each case ahead, holding no GPU lock, so that Triton's
compiles (seconds each, more with autotuning) never keep a timer waiting. The worker calls a
throwaway copy of the candidate module (its own import, so nothing the pass leaves behind reaches
the calls that are judged) on placeholder inputs of the case's shapes, dtypes and device, with
every kernel launch turned into a compile (`run(warmup=True)`: compiled, not launched; an
autotuner compiles each config it would benchmark) and every PyTorch op on the device answered
with an uninitialised tensor of the right shape (`NoCompute`): nothing runs on a GPU that other
evaluations may be timing on. Scalars read back read as zero. The compiled kernels land in the
worker's Triton cache on disk, where the judged calls find them, each loaded and its launcher
built as a first launch would do it. Under Triton's interpreter nothing compiles: the pass runs
the host code and skips every launch.

The pass is best effort: an exception (host code that needs real values) ends it early and the
call under the hold compiles what is left. Only a pass that overruns its budget decides a verdict
(a hang in the host code, found without holding the GPU).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import triton.runtime.jit as triton_jit
from kevolve.harness.judge.compiled import describe_failure
from kevolve.harness.judge.inputs import load_attr
from kevolve.harness.judge.subject import Subject
from kevolve.harness.judge.wire import DTYPES
from kevolve.harness.spec.problem import Problem, ProblemKind, Shape
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves, tree_map
from triton.runtime.autotuner import Autotuner

try:  # the interpreter module moved between Triton releases; both places hold the same class
    from triton.runtime.interpreter import InterpretedFunction
except ImportError:  # pragma: no cover - older Triton
    InterpretedFunction = None

COPY_MODULE = "_kevolve_precompile"
MAX_LAUNCHES = 1000  # a pass that launches more has compiled what it will: stop it there
# Ops that only allocate: they run for real, since no kernel runs for them.
_ALLOCATORS = frozenset({"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided"})
# Ops that read values back to the host: answered without reading anything.
_SCALAR_READS = frozenset({"_local_scalar_dense", "is_nonzero", "equal"})


class AheadStop(Exception):
    """Ends a compile pass early; what it compiled so far stays compiled."""


@dataclass
class AheadReport:
    """What one compile pass did: kernels seen, launches compiled, autotune configs, why it
    stopped early (None: it ran to the end)."""

    kernels: set[str] = field(default_factory=set)
    launches: int = 0
    tune_configs: int = 0
    stopped: str | None = None

    def launched(self, name: str) -> None:
        """Count one launch turned into a compile; stop the pass past `MAX_LAUNCHES`."""
        self.kernels.add(name)
        self.launches += 1
        if self.launches > MAX_LAUNCHES:
            raise AheadStop(f"the host code launched more than {MAX_LAUNCHES} kernels")

    def to_reply(self) -> dict[str, Any]:
        """The report as the worker's reply fields."""
        return {
            "kernels": sorted(self.kernels),
            "launches": self.launches,
            "tune_configs": self.tune_configs,
            "stopped": self.stopped,
        }


class Precompiler:
    """Turns kernel launches into compiles while a pass runs; one per worker process."""

    def __init__(self) -> None:
        self.report: AheadReport | None = None  # the pass in progress
        self._copy: Subject | None = None
        self._make: Callable[..., Sequence[object]] | None = None
        for cls in (triton_jit.JITFunction, InterpretedFunction):
            if cls is not None:
                cls.run = self._compile_only(cls.run)  # type: ignore[method-assign]
        Autotuner.run = self._tune_never(Autotuner.run)  # type: ignore[method-assign]

    def run(self, subject: Subject, shape: Shape, dtype: str) -> AheadReport:
        """One pass over `subject`'s entry for a case; never raises for what the entry does."""
        report = AheadReport()
        try:
            copy = self._copy_of(subject)
            inputs = self._placeholders(subject, shape, dtype)
            with self.active(report), NoCompute(subject.device):
                copy(inputs, dtype)
        except BaseException as exc:  # noqa: BLE001 - candidate code: any failure ends the pass
            report.stopped = describe_failure(exc)
        return report

    @contextmanager
    def active(self, report: AheadReport) -> Iterator[None]:
        """Within the block, launches compile (counted in `report`) and run nothing."""
        self.report = report
        try:
            yield
        finally:
            self.report = None

    def _copy_of(self, subject: Subject) -> Subject:
        """The throwaway copy of the candidate module the passes call (imported once)."""
        if self._copy is None:
            self._copy = Subject(
                subject.problem,
                subject.path,
                subject.problem.entry,
                COPY_MODULE,
                subject.device,
                subject.init_seed,
            )
        return self._copy

    def _placeholders(self, subject: Subject, shape: Shape, dtype: str) -> list[object]:
        """Inputs shaped as the case's, on the device, made without running anything there."""
        if self._make is None:
            self._make = load_attr(subject.problem, subject.problem.inputs, "_kevolve_shapes")
        return placeholder_inputs(subject.problem, self._make, shape, dtype, subject.device)

    def _compile_only(self, run: Callable[..., Any]) -> Callable[..., Any]:
        """`run` that, during a pass, compiles the kernel and does not launch it."""
        precompiler = self

        def compile_only(fn_self: Any, *args: Any, **kwargs: Any) -> Any:
            report = precompiler.report
            if report is None:
                return run(fn_self, *args, **kwargs)
            report.launched(getattr(getattr(fn_self, "fn", None), "__name__", "kernel"))
            kwargs["warmup"] = True
            kernel = run(fn_self, *args, **kwargs)
            _load(kernel)
            return kernel

        return compile_only

    def _tune_never(self, run: Callable[..., Any]) -> Callable[..., Any]:
        """`Autotuner.run` that, during a pass, compiles every config and benchmarks none."""
        precompiler = self

        def tune_never(tuner: Any, *args: Any, **kwargs: Any) -> Any:
            report = precompiler.report
            if report is None:
                return run(tuner, *args, **kwargs)
            kwargs.pop("warmup", None)
            compiled = tuner.warmup(*args, **kwargs)
            if len(compiled) > 1:
                report.tune_configs += len(compiled)
            return None

        return tune_never


def _load(kernel: Any) -> None:
    """Load a compiled kernel onto the device and build its launcher, as its first launch would:
    both are cached (the launcher on disk), so the judged first call finds them ready. Nothing
    runs on the device. (Under the interpreter nothing was compiled: there is nothing to load.)"""
    init = getattr(kernel, "_init_handles", None)
    if callable(init):
        init()


def placeholder_inputs(
    problem: Problem,
    make: Callable[..., Sequence[object]],
    shape: Shape,
    dtype: str,
    device: torch.device,
) -> list[object]:
    """Uninitialised tensors with the shapes, dtypes and layouts of a case's inputs: the maker
    runs on the meta device, so nothing is drawn or copied."""
    torch_dtype = DTYPES[dtype]
    meta = torch.device("meta")
    with meta:
        if problem.kind is ProblemKind.KERNELBENCH:
            values = list(make())
        else:
            values = list(make(tuple(shape), torch_dtype, meta, torch.Generator()))
    return [_input_placeholder(v, torch_dtype, device) for v in values]


def _input_placeholder(value: object, dtype: torch.dtype, device: torch.device) -> object:
    """One input's placeholder: floating tensors contiguous in `dtype`, as the trials make them."""
    if not isinstance(value, torch.Tensor):
        return value
    if value.is_floating_point():
        return torch.empty(value.shape, dtype=dtype, device=device)
    return torch.empty_strided(value.shape, value.stride(), dtype=value.dtype, device=device)


class NoCompute(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Answers every PyTorch op on `device` without running it: views and allocations for real
    (nothing runs for them), in-place ops as done, scalar reads as zero, and anything else with
    an uninitialised result whose shape the meta device works out (zeros on the CPU)."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.device = device

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if not self._touches(args, kwargs):
            return func(*args, **kwargs)
        name = func.overloadpacket.__name__
        if func.is_view or name in _ALLOCATORS:
            return func(*args, **kwargs)
        if name in _SCALAR_READS:
            return _zero(args[0].dtype) if name == "_local_scalar_dense" else False
        if kwargs.get("out") is not None:
            return kwargs["out"]
        if func._schema.is_mutable:
            return args[0]
        return self._placeholder_result(func, args, kwargs)

    def _touches(self, args: Any, kwargs: dict[str, Any]) -> bool:
        """True if the op has a tensor on the device, or makes one there."""
        for leaf in tree_leaves((args, kwargs)):
            if isinstance(leaf, torch.Tensor) and leaf.device.type == self.device.type:
                return True
        made_on = kwargs.get("device")
        return made_on is not None and torch.device(made_on).type == self.device.type

    def _placeholder_result(self, func: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        """The op's result as placeholders, shaped by running it on meta tensors."""
        meta_args, meta_kwargs = tree_map(_to_meta, (args, kwargs))
        if "device" in meta_kwargs:
            meta_kwargs["device"] = torch.device("meta")
        try:
            result = func(*meta_args, **meta_kwargs)
        except Exception as exc:  # data-dependent ops have no meta shape
            raise AheadStop(f"{func} needs real values ({describe_failure(exc)})") from exc
        target = _result_device(args, kwargs, self.device)
        return tree_map(lambda m: _placeholder(m, target), result)


def _to_meta(value: Any) -> Any:
    if not isinstance(value, torch.Tensor):
        return value
    return torch.empty_strided(value.shape, value.stride(), dtype=value.dtype, device="meta")


def _result_device(args: Any, kwargs: dict[str, Any], default: torch.device) -> torch.device:
    """Where an op's result lives: its `device` argument, else its first tensor's device."""
    if kwargs.get("device") is not None:
        return torch.device(kwargs["device"])
    tensors = [t for t in tree_leaves(args) if isinstance(t, torch.Tensor)]
    return tensors[0].device if tensors else default


def _placeholder(meta: Any, device: torch.device) -> Any:
    """A tensor shaped as the meta tensor `meta`: uninitialised on a GPU, zeros on the CPU."""
    if not isinstance(meta, torch.Tensor):
        return meta
    size = 1 + sum((n - 1) * s for n, s in zip(meta.shape, meta.stride(), strict=True))
    size = size if all(n > 0 for n in meta.shape) else 0
    make = torch.zeros if device.type == "cpu" else torch.empty
    return make(size, dtype=meta.dtype, device=device).as_strided(meta.shape, meta.stride())


def _zero(dtype: torch.dtype) -> bool | int | float | complex:
    """Zero as the Python scalar a read of `dtype` gives."""
    if dtype == torch.bool:
        return False
    if dtype.is_complex:
        return 0j
    return 0.0 if dtype.is_floating_point else 0
