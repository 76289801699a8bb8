"""A loaded implementation of a problem (candidate, baseline or reference) and its failures."""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import torch
from kevolve.harness.evaluation import Verdict
from kevolve.harness.judge.inputs import build_model, load_module
from kevolve.harness.judge.instrument import LaunchHook, kernel_line
from kevolve.harness.spec.problem import Problem, ProblemKind
from triton.compiler.errors import CompilationError

MAX_MESSAGE = 4000


class Failure(Exception):
    """A candidate failed in a way that decides its verdict."""

    def __init__(self, verdict: Verdict, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.verdict = verdict
        self.message = message[:MAX_MESSAGE]
        self.line = line


class Subject:
    """Calls one implementation of a problem: a module's entry function or a KernelBench class."""

    def __init__(
        self,
        problem: Problem,
        path: Path,
        entry: str,
        module_name: str,
        device: torch.device,
        init_seed: int,
    ) -> None:
        self.problem = problem
        self.path = path
        self.device = device
        self.init_seed = init_seed
        self.module = load_module(path, module_name)
        self.target = getattr(self.module, entry, None)
        if self.target is None:
            raise Failure(
                Verdict.COMPILE_ERROR,
                f"{path.name} defines no '{entry}'; the candidate module must expose it "
                f"with the same signature as the reference",
            )
        self._models: dict[str, Any] = {}

    def __call__(self, inputs: Sequence[object], dtype: str) -> tuple[object, ...]:
        """The implementation's outputs for these inputs, always as a tuple."""
        out = self.callable_for(dtype)(*inputs)
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)

    def reference_outputs(self, inputs: Sequence[object], dtype: str) -> list[torch.Tensor]:
        """Outputs of a trusted implementation, which must all be tensors."""
        outputs = self(inputs, dtype)
        if not all(isinstance(o, torch.Tensor) for o in outputs):
            kinds = ", ".join(type(o).__name__ for o in outputs)
            raise TypeError(f"the reference in {self.path.name} must return tensors, got {kinds}")
        return cast(list[torch.Tensor], list(outputs))

    def prepare(self, dtype: str) -> None:
        """Build what a call needs (a KernelBench model's weights) before anything is traced."""
        self.callable_for(dtype)

    def callable_for(self, dtype: str) -> Any:
        """The function to call: the entry itself, or a seeded model instance per dtype."""
        if self.problem.kind is not ProblemKind.KERNELBENCH:
            return self.target
        if dtype not in self._models:
            cls = cast(type, self.target)
            self._models[dtype] = build_model(self.problem, cls, self.device, dtype, self.init_seed)
        return self._models[dtype]


def classify(exc: BaseException, path: Path, hook: LaunchHook | None) -> Failure:
    """The verdict and an actionable message for an exception raised by candidate code."""
    if isinstance(exc, Failure):
        return exc
    if isinstance(exc, SyntaxError):
        return Failure(Verdict.COMPILE_ERROR, f"syntax error: {exc.msg}", exc.lineno)
    if isinstance(exc, CompilationError):
        rel = getattr(getattr(exc, "node", None), "lineno", None)
        fn = hook.failed_kernel if hook else None
        line = kernel_line(fn, rel) if fn is not None and rel else None
        return Failure(Verdict.COMPILE_ERROR, f"Triton compilation failed: {exc}", line)
    line = _candidate_line(exc, path)
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return Failure(Verdict.RUNTIME_ERROR, f"out of memory: {text}", line)
    if hook is not None and hook.failed_kernel is not None:
        name = getattr(hook.failed_kernel, "__name__", "kernel")
        # The interpreter's InterpreterError is its way of saying "this would not compile".
        verdict = (
            Verdict.COMPILE_ERROR
            if type(exc).__name__ == "InterpreterError"
            else Verdict.RUNTIME_ERROR
        )
        return Failure(verdict, f"launching Triton kernel '{name}' failed: {text}", line)
    return Failure(Verdict.RUNTIME_ERROR, text, line)


def load_failure(exc: BaseException, path: Path) -> Failure:
    """The verdict for an exception raised while importing the candidate module."""
    if isinstance(exc, Failure):
        return exc
    if isinstance(exc, SyntaxError):
        return Failure(Verdict.COMPILE_ERROR, f"syntax error: {exc.msg}", exc.lineno)
    return Failure(
        Verdict.COMPILE_ERROR,
        f"importing the candidate failed: {type(exc).__name__}: {exc}",
        _candidate_line(exc, path),
    )


def _candidate_line(exc: BaseException, path: Path) -> int | None:
    """The deepest traceback line that lies in the candidate file."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename) == path:
            line = frame.lineno
    return line
