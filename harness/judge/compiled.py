"""`CompiledReference`: the op's reference under torch.compile, a timed arm beside eager PyTorch.

What a user would run instead of a hand-written kernel is `torch.compile(reference)`, so the judge
times that too, in the same rounds as the candidate and the baseline. Compiling is never timed:
each case's first call (in `Benchmark.prepare`) traces and compiles, and its seconds are kept
apart. A reference torch.compile cannot handle is a finding, not a failed evaluation: the arm
records why, in one line, and stops timing that case.

What is cached: within the judge process, one compiled callable per mode and dtype, holding one
graph per shape (`dynamic=False`: each production shape specialized, as a user with fixed
shapes gets). Across evaluations (one judge process each), inductor's own on-disk cache under
the judge's cache directory (`TORCHINDUCTOR_CACHE_DIR`, set by `harness.evaluate`) keeps the
compiled graphs and autotuning choices per machine, torch and Triton version, so later
evaluations trace again but do not compile or autotune again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
from kevolve.harness.evaluation import CompiledTiming, CompileMode, Timing
from kevolve.harness.judge.subject import Subject
from kevolve.harness.spec.problem import Shape

Compiler = Callable[[Any, CompileMode], Any]  # (callable, mode) -> its compiled callable
Case = tuple[Shape, str]
_T = TypeVar("_T")
ERROR_CHARS = 300
# Each (mode, shape, dtype) is a graph of the reference's code: more than dynamo keeps by default.
RECOMPILE_LIMIT = 256


def compile_reference(fn: Any, mode: CompileMode) -> Any:
    """`torch.compile` of `fn` in `mode`, shapes specialized, errors raised (never hidden)."""
    _allow_recompiles()
    named = None if mode is CompileMode.DEFAULT else mode.value
    return torch.compile(fn, dynamic=False, mode=named)


class CompiledReference:
    """The reference compiled in one mode: callable like a `Subject`, with per-case bookkeeping
    of compile seconds, samples and failures."""

    def __init__(
        self, reference: Subject, mode: CompileMode, compiler: Compiler = compile_reference
    ) -> None:
        self.reference = reference
        self.mode = mode
        self.compiler = compiler
        self._compiled: dict[str, Any] = {}  # per dtype (a KernelBench model is one per dtype)
        self.compile_s: dict[Case, float] = {}
        self.errors: dict[Case, str] = {}
        self.samples: dict[Case, list[float]] = {}

    def __call__(self, inputs: Sequence[object], dtype: str) -> tuple[object, ...]:
        """The compiled reference's outputs, always as a tuple (as `Subject` returns them)."""
        if dtype not in self._compiled:
            self._compiled[dtype] = self.compiler(self.reference.callable_for(dtype), self.mode)
        out = self._compiled[dtype](*inputs)
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)

    def warm(self, case: Case, first_call: Callable[[], object]) -> None:
        """Run the case's first call, which compiles; keep its seconds, or why it failed."""
        started = time.perf_counter()
        if self._guarded(case, first_call) is not None:
            self.compile_s[case] = round(time.perf_counter() - started, 3)

    def time_round(self, case: Case, run: Callable[[], Sequence[float]]) -> None:
        """One timed round of the case: its per-call times kept, or why it failed."""
        times = self._guarded(case, run)
        if times is not None:
            self.samples.setdefault(case, []).extend(times)

    def _guarded(self, case: Case, call: Callable[[], _T]) -> _T | None:
        """`call()`, or None (the reason kept) when it raises or the case failed before."""
        if case in self.errors:
            return None
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - any compiler failure is a finding, kept as text
            self.errors[case] = describe_failure(exc)
            self.samples.pop(case, None)
            return None

    def result(self, case: Case, summarize: Callable[[list[float]], Timing]) -> CompiledTiming:
        """The case's record: its timing, or the reason it has none."""
        error = self.errors.get(case)
        samples = self.samples.get(case, [])
        if error is None and not samples:
            error = "not timed: the compiled reference was never called on this case"
        return CompiledTiming(
            mode=self.mode.value,
            timing=None if error else summarize(samples),
            compile_s=self.compile_s.get(case),
            error=error,
        )


def describe_failure(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message, capped."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def _allow_recompiles() -> None:
    """Let dynamo keep a graph per case and mode, and raise rather than fall back to eager."""
    config: Any = torch._dynamo.config
    for name in ("cache_size_limit", "recompile_limit"):  # the name changed across releases
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), RECOMPILE_LIMIT))
    for name in ("accumulated_cache_size_limit", "accumulated_recompile_limit"):
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), RECOMPILE_LIMIT))
    config.suppress_errors = False
