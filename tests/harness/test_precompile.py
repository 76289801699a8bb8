"""Tests for `harness.judge.precompile`: kernels compiled before the GPU hold, nothing run.

On the CPU, Triton's interpreter compiles nothing, so a pass only runs the candidate's host code
with every launch skipped; that is what these tests can see: launches counted but not run, ops
answered without computing, and, with real judges, the pass before any hold is asked for.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
import triton.runtime.interpreter as triton_interpreter
import triton.runtime.jit as triton_jit
from kevolve.harness.evaluate import EvalOptions, evaluate
from kevolve.harness.evaluation import CallBudget, Evaluation, Verdict
from kevolve.harness.judge.client import WorkerClient
from kevolve.harness.judge.gpulock import exclusive_gpu
from kevolve.harness.judge.inputs import InputMaker, Trial, load_attr, load_module
from kevolve.harness.judge.precompile import (
    MAX_LAUNCHES,
    AheadReport,
    AheadStop,
    NoCompute,
    Precompiler,
    placeholder_inputs,
)
from kevolve.harness.sandbox.spawn import Limits, clean_env
from kevolve.harness.spec.load import load_problems, select
from kevolve.harness.spec.problem import Problem, problem_to_dict
from triton.runtime.autotuner import Autotuner

ROOT = Path(__file__).resolve().parents[2]
KERNELBENCH = ROOT / "examples" / "kernelbench" / "softmax.py"
DEMO = ROOT / "examples" / "demo"
GOOD = ROOT / "tests" / "corpus" / "kernelbench" / "softmax__good_online.py"
HOST_HANG = ROOT / "tests" / "corpus" / "softmax" / "infinite_loop.py"
PATIENCE = 120.0
CPU = torch.device("cpu")
KERNELS = """\
import triton
import triton.language as tl


@triton.jit
def add_one(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(x_ptr + offs, tl.load(x_ptr + offs, mask=offs < n) + 1.0, mask=offs < n)
"""
# Its kernel never ends; its host code reads a value back and loops on it a while.
SPIN = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _spin_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n)
    while tl.sum(x, axis=0) == tl.sum(x, axis=0):
        x = x + 0.0
    tl.store(y_ptr + offs, x, mask=offs < n)


@triton.autotune(configs=[triton.Config({"BLOCK": 256}), triton.Config({"BLOCK": 512})], key=["n"])
@triton.jit
def _tuned_copy_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


class ModelNew(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.empty_like(x)
        n = x.numel()
        for _ in range(int(x.abs().max().item()) + 2):  # zero during a pass: two launches
            _spin_kernel[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        _tuned_copy_kernel[lambda meta: (triton.cdiv(n, meta["BLOCK"]),)](x, y, n)
        return y
"""


@pytest.fixture
def precompiler() -> Iterator[Precompiler]:
    """A precompiler in this process; Triton's launch methods put back after the test."""
    classes = (triton_jit.JITFunction, triton_interpreter.InterpretedFunction, Autotuner)
    saved = [cls.run for cls in classes]
    yield Precompiler()
    for cls, run in zip(classes, saved, strict=True):
        cls.run = run  # type: ignore[method-assign]


@pytest.fixture
def kernels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """`KERNELS` imported from a file, interpreted on the CPU."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # read as the kernels are decorated
    path = tmp_path / "never_kernels.py"
    path.write_text(KERNELS)
    return load_module(path, "_kevolve_test_never_kernels")


def kernelbench() -> Problem:
    [problem] = load_problems(KERNELBENCH)
    return problem


def test_no_compute_answers_ops_without_running_them() -> None:
    x = torch.arange(12, dtype=torch.float32)
    with NoCompute(CPU):
        total = x.sum().item()
        scaled = x * 3.0 + 1.0
        ones = torch.ones(4)
        view = x.view(3, 4)
        x.add_(100.0)
        copied = x.clone()
    assert total == 0.0  # a scalar read back reads as zero
    assert scaled.shape == (12,) and not scaled.any()  # shaped right, never computed
    assert not ones.any()
    assert view.shape == (3, 4) and view.data_ptr() == x.data_ptr()  # views are real
    assert torch.equal(x, torch.arange(12, dtype=torch.float32))  # in-place ops did nothing
    assert copied.shape == (12,) and copied.data_ptr() != x.data_ptr()


def test_no_compute_stops_at_an_op_that_needs_real_values() -> None:
    x = torch.ones(8)
    with (
        pytest.raises(AheadStop, match=r"^aten\.nonzero\.default needs real values"),
        NoCompute(CPU),
    ):
        (x > 0).nonzero()


def test_ops_off_the_device_run_for_real() -> None:
    x = torch.ones(4)
    with NoCompute(torch.device("meta")):  # the device under judgement is another one
        assert (x + 1).sum().item() == 8.0


def test_a_pass_counts_launches_and_runs_none(
    precompiler: Precompiler, kernels: ModuleType
) -> None:
    x = torch.zeros(64)
    report = AheadReport()
    with precompiler.active(report):
        for _ in range(3):
            kernels.add_one[(1,)](x, 64, BLOCK=64)
    assert (report.kernels, report.launches) == ({"add_one"}, 3)
    assert not x.any()  # compiled at most, never run
    kernels.add_one[(1,)](x, 64, BLOCK=64)  # outside a pass: launched as ever
    assert torch.equal(x, torch.ones(64))


def test_a_kernel_compiled_in_a_pass_is_loaded_as_its_first_launch_would(
    kernels: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a GPU a compile returns the kernel, which the pass loads (module and launcher); the
    interpreter returns none, so a stand-in for `run` returns one here."""
    loaded: list[str] = []

    class Compiled:
        def _init_handles(self) -> None:
            loaded.append("loaded")

    def compiled(fn_self: object, *args: object, **kwargs: object) -> Compiled:
        assert kwargs["warmup"] is True  # compiled, never launched
        return Compiled()

    classes = (triton_jit.JITFunction, triton_interpreter.InterpretedFunction, Autotuner)
    saved = [cls.run for cls in classes]
    monkeypatch.setattr(triton_interpreter.InterpretedFunction, "run", compiled)
    try:
        precompiler = Precompiler()
        with precompiler.active(AheadReport()):
            kernels.add_one[(1,)](torch.zeros(4), 4, BLOCK=4)
    finally:
        for cls, run in zip(classes, saved, strict=True):
            cls.run = run  # type: ignore[method-assign]
    assert loaded == ["loaded"]


def test_a_pass_that_launches_without_end_is_stopped(
    precompiler: Precompiler, kernels: ModuleType
) -> None:
    report = AheadReport()
    x = torch.zeros(16)
    with (
        pytest.raises(AheadStop, match=f"launched more than {MAX_LAUNCHES} kernels"),
        precompiler.active(report),
    ):
        while True:
            kernels.add_one[(1,)](x, 16, BLOCK=16)
    assert report.launches == MAX_LAUNCHES + 1 and not x.any()


def _layout(value: object) -> tuple[object, ...]:
    assert isinstance(value, torch.Tensor)
    return value.shape, value.dtype, value.stride()


def test_placeholders_have_the_shapes_and_dtypes_of_the_real_inputs() -> None:
    problem = select(load_problems(DEMO), "rmsnorm", DEMO)
    make = load_attr(problem, problem.inputs, "_test_shapes")
    fake = placeholder_inputs(problem, make, (37, 1000), "bfloat16", CPU)
    real = InputMaker(problem, CPU)((37, 1000), "bfloat16", Trial(0, "normal"))
    assert [_layout(t) for t in fake] == [_layout(t) for t in real]
    kb = kernelbench()
    [x] = placeholder_inputs(kb, load_attr(kb, kb.inputs, "_test_kb"), (), "float16", CPU)
    assert isinstance(x, torch.Tensor) and (x.shape, x.dtype) == ((16, 4096), torch.float16)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerClient]:
    env = clean_env({"TRITON_INTERPRET": "1"}, os.environ)
    client = WorkerClient(env, tmp_path, Limits())
    yield client
    client.close()


def test_the_worker_compiles_a_case_without_running_its_kernels(
    worker: WorkerClient, tmp_path: Path
) -> None:
    candidate = tmp_path / "spin.py"
    candidate.write_text(SPIN)
    load = {
        "op": "load",
        "problem": problem_to_dict(kernelbench()),
        "path": str(candidate),
        "device": "cpu",
        "init_seed": 0,
    }
    worker.request(load, "loading", PATIENCE)
    request = {"op": "compile", "shape": [], "dtype": "float32"}
    reply, _ = worker.request(request, "compiling", PATIENCE)  # a launch would spin forever
    assert reply == {
        "ok": True,
        "kernels": ["_spin_kernel", "_tuned_copy_kernel"],
        "launches": 4,  # two spins; the autotuner compiled its two configs, timed neither
        "tune_configs": 2,
        "stopped": None,
    }


def lock_waiters(path: Path) -> int:
    """How many processes wait for a flock on `path` (the `->` lines of /proc/locks)."""
    if not path.exists():
        return 0
    inode = f":{os.stat(path).st_ino} "
    lines = Path("/proc/locks").read_text().splitlines()
    return sum(1 for line in lines if " -> FLOCK " in line and inode in line)


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting until {what}"
        time.sleep(0.005)


def test_a_hang_in_host_code_is_found_before_the_hold(tmp_path: Path) -> None:
    """A timer holds the GPU throughout; the host-side hang is still judged, in the compile pass,
    so it never asked for the hold, and its verdict names the pass's budget."""
    problem = select(load_problems(DEMO), "softmax", DEMO)
    cache = tmp_path / "cache"
    options = EvalOptions(
        device="cpu", timeout=300, cache_dir=cache, budget=CallBudget(compile_s=3.0)
    )
    with exclusive_gpu(cache, "cpu"):
        ev = evaluate(problem, HOST_HANG.read_text(), options)
    assert ev.verdict is Verdict.TIMEOUT
    assert ev.reason.startswith(
        "compiling the candidate's kernels for shape 1x1 bfloat16 ahead of the hold did not "
        "finish within 3 s, its budget (3 s to compile); the candidate was killed"
    )
    assert "check_wait" not in ev.phases and ev.phases["ahead"] >= 3.0


def test_each_case_compiles_before_its_first_hold(tmp_path: Path) -> None:
    """With a timer holding the GPU, the judge loads and compiles, then waits for its hold."""
    problem = kernelbench()
    cache = tmp_path / "cache"
    options = EvalOptions(device="cpu", timeout=300, cache_dir=cache)
    result: list[Evaluation] = []
    with exclusive_gpu(cache, "cpu"):
        judging = threading.Thread(
            target=lambda: result.append(evaluate(problem, GOOD.read_text(), options))
        )
        judging.start()
        until(lambda: lock_waiters(cache / "gpu-cpu.turnstile") == 1, "the judge waits")
    judging.join(timeout=PATIENCE)
    [ev] = result
    assert ev.verdict is Verdict.CORRECT, ev.reason
    order = list(ev.phases)
    assert order.index("load") < order.index("ahead") < order.index("check_wait")
    assert ev.phases["check_wait_max"] > 0.0
