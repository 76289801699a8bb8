"""The run-time trace rules of harness.judge.instrument, in this process: which launches count as
the candidate's, which PyTorch ops are the answer computed by PyTorch, and the poison in fresh
memory. (The judge's own tests see the same rules through a worker process.)"""

from __future__ import annotations

import importlib.util
import inspect
import math
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
import triton.runtime.interpreter as triton_interpreter
import triton.runtime.jit as triton_jit
from kevolve.harness.judge.instrument import LaunchHook, OpGuard, kernel_line, poison, poison_cache

CANDIDATE = "_kevolve_instrument_candidate"
KERNELS = """\
import triton
import triton.language as tl


@triton.jit
def add_one(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + 1, mask=mask)
"""


@pytest.fixture
def hooked() -> Iterator[None]:
    """Put Triton's launch methods back after the test: a LaunchHook replaces them for good."""
    classes = (triton_jit.JITFunction, triton_interpreter.InterpretedFunction)
    saved = [cls.run for cls in classes]
    yield
    for cls, run in zip(classes, saved, strict=True):
        cls.run = run  # type: ignore[method-assign]


def _module(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The kernels imported from a file as module `name`, interpreted on the CPU."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # read as the kernels are decorated
    path = tmp_path / f"{name}.py"
    path.write_text(KERNELS)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _launch(module: ModuleType, x: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    module.add_one[(1,)](x, out, x.numel(), BLOCK=16)
    return out


def test_the_candidates_launches_are_counted_per_call_and_over_the_workers_life(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hooked: None
) -> None:
    candidate = _module(tmp_path, CANDIDATE, monkeypatch)
    other = _module(tmp_path, "_kevolve_instrument_library", monkeypatch)
    hook = LaunchHook(CANDIDATE)
    x = torch.arange(5, dtype=torch.float32)
    assert torch.equal(_launch(candidate, x), x + 1)
    _launch(candidate, x)
    _launch(other, x)  # a library's kernel is not the candidate's
    assert dict(hook.launches) == dict(hook.total) == {"add_one": 2} and hook.active == 0
    hook.reset()
    assert dict(hook.launches) == {} and dict(hook.total) == {"add_one": 2}
    _launch(candidate, x)
    assert (dict(hook.launches), dict(hook.total)) == ({"add_one": 1}, {"add_one": 3})


def test_a_warmup_is_not_a_launch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hooked: None
) -> None:
    candidate = _module(tmp_path, CANDIDATE, monkeypatch)
    hook = LaunchHook(CANDIDATE)
    x = torch.arange(5, dtype=torch.float32)
    candidate.add_one.run(x, torch.empty_like(x), 5, BLOCK=16, grid=(1,), warmup=True)
    assert dict(hook.launches) == {} and dict(hook.total) == {}


def test_the_first_kernel_that_fails_is_kept_until_the_next_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hooked: None
) -> None:
    candidate = _module(tmp_path, CANDIDATE, monkeypatch)
    other = _module(tmp_path, "_kevolve_instrument_library", monkeypatch)
    hook = LaunchHook(CANDIDATE)
    for module in (candidate, other):
        with pytest.raises(TypeError):
            module.add_one[(1,)](torch.zeros(2))  # its other arguments missing
        assert hook.active == 0
    assert hook.failed_kernel is candidate.add_one.fn
    assert dict(hook.launches) == {}  # a launch that failed is not counted
    hook.reset()
    assert hook.failed_kernel is None


def test_pytorch_computing_on_the_host_is_recorded_and_launcher_work_is_not(hooked: None) -> None:
    guard = OpGuard(LaunchHook(CANDIDATE))
    x = torch.arange(6, dtype=torch.float32)
    with guard:
        y = torch.empty_like(x)
        y.copy_(x.view(2, 3).reshape(-1))
        total = x.sum()
        doubled = x * 2
        x.sum()
    assert dict(guard.forbidden) == {"aten.sum.default": 2, "aten.mul.Tensor": 1}
    assert float(total) == 15.0 and torch.equal(doubled, x * 2)


def test_ops_inside_a_triton_launch_are_the_launchs_own(hooked: None) -> None:
    """The interpreter runs a kernel with tensor traffic of its own: not the candidate's."""
    hook = LaunchHook(CANDIDATE)
    guard = OpGuard(hook)
    hook.active = 1  # as while a launch runs
    with guard:
        torch.arange(4.0).sum()
    assert dict(guard.forbidden) == {}
    hook.active = 0


def test_fresh_allocations_are_poisoned_and_explicit_fills_are_not(hooked: None) -> None:
    guard = OpGuard(LaunchHook(CANDIDATE))
    with guard:
        floats = torch.empty(4)
        ints = torch.empty(3, dtype=torch.int32)
        like = torch.empty_like(torch.zeros(2, dtype=torch.int64))
        zeros = torch.zeros(3)
        full = torch.full((2,), 7.0)
    assert floats.isnan().all() and zeros.eq(0).all() and full.eq(7).all()
    assert ints.eq(torch.iinfo(torch.int32).max).all()
    assert like.eq(torch.iinfo(torch.int64).max).all()
    assert dict(guard.forbidden) == {}


def test_poison_is_a_value_no_correct_kernel_leaves() -> None:
    floats, flags = torch.zeros(3, dtype=torch.bfloat16), torch.zeros(3, dtype=torch.bool)
    complexes, ints = torch.zeros(2, dtype=torch.complex64), torch.zeros(2, dtype=torch.int16)
    for t in (floats, flags, complexes, ints):
        poison(t)
    assert floats.isnan().all() and flags.all()
    assert all(math.isnan(v.real) and math.isnan(v.imag) for v in complexes.tolist())
    assert ints.eq(torch.iinfo(torch.int16).max).all()


def test_poisoning_the_cuda_cache_does_nothing_on_the_cpu() -> None:
    poison_cache(torch.device("cpu"), 1 << 20)  # returns without touching CUDA


def test_a_kernel_line_is_counted_from_its_def(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    candidate = _module(tmp_path, CANDIDATE, monkeypatch)
    def_line = next(i for i, text in enumerate(KERNELS.splitlines(), 1) if text.startswith("def "))
    assert kernel_line(candidate.add_one.fn, 1) == def_line
    assert kernel_line(candidate.add_one.fn, 4) == def_line + 3
    assert kernel_line(len, 1) is None  # no Python source to count in


def _decorated(fn: object) -> object:
    return fn


def test_a_nested_kernels_line_is_counted_from_its_own_def() -> None:
    """A kernel defined inside a function is indented: its `def` is found all the same."""

    @_decorated
    def inner(x: int) -> int:
        return x

    lines, start = inspect.getsourcelines(inner)
    def_line = start + next(i for i, text in enumerate(lines) if "def inner" in text)
    assert kernel_line(inner, 1) == def_line and kernel_line(inner, 2) == def_line + 1


def test_timed_calls_run_with_the_hook_suspended_and_it_comes_back_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hooked: None
) -> None:
    candidate = _module(tmp_path, CANDIDATE, monkeypatch)
    hook = LaunchHook(CANDIDATE)
    x = torch.arange(5, dtype=torch.float32)
    wrapped = triton_interpreter.InterpretedFunction.run
    with hook.suspended():
        assert triton_interpreter.InterpretedFunction.run is not wrapped  # Triton's own
        assert torch.equal(_launch(candidate, x), x + 1)
    assert dict(hook.total) == {}  # nothing of the hook ran while suspended
    assert triton_interpreter.InterpretedFunction.run is wrapped
    _launch(candidate, x)
    assert dict(hook.total) == {"add_one": 1}
    with pytest.raises(RuntimeError), hook.suspended():
        raise RuntimeError("a timed call failed")
    assert triton_interpreter.InterpretedFunction.run is wrapped  # restored on the way out
