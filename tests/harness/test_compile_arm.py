"""torch.compile as a timed arm of the judge: when it runs, what it keeps per case, how a failed
compile is recorded without failing the evaluation, and (on a GPU) that the judge fills it."""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
from kevolve.harness.evaluate import CompileArm, EvalOptions, compile_modes, evaluate
from kevolve.harness.evaluation import (
    COMPILE_MODES,
    CaseTiming,
    CompiledTiming,
    CompileMode,
    Evaluation,
    Timing,
    Verdict,
    evaluation_from_dict,
    with_seed_compile,
)
from kevolve.harness.judge.compiled import CompiledReference, describe_failure
from kevolve.harness.judge.session import JudgeRequest
from kevolve.harness.judge.stats import summarize
from kevolve.harness.judge.subject import Subject
from kevolve.harness.report import render
from kevolve.harness.spec.load import load_problems, narrow, select
from kevolve.harness.spec.problem import Problem, problem_to_dict

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
SOFTMAX = (DEMO / "demo_kernels" / "softmax.py").read_text()
SMALL, WIDE = ((3, 17), "float32"), ((37, 1000), "float32")


def _softmax() -> Problem:
    return select(load_problems(DEMO), "softmax", DEMO)


def _reference(problem: Problem) -> Subject:
    """The demo softmax's reference, loaded as the judge loads it, on the CPU."""
    path = problem.path(problem.reference)
    entry = problem.reference.split(":", 1)[1]
    return Subject(problem, path, entry, "_test_compile_reference", torch.device("cpu"), 0)


def _inputs(shape: tuple[int, ...]) -> list[object]:
    return [torch.randn(shape, generator=torch.Generator().manual_seed(1))]


class Recorder:
    """A compiler that compiles nothing: it returns the function, after noting the call (or,
    for the modes in `refuse`, raises as a failed compile does)."""

    def __init__(self, refuse: tuple[CompileMode, ...] = ()) -> None:
        self.calls: list[CompileMode] = []
        self.refuse = refuse

    def __call__(self, fn: Any, mode: CompileMode) -> Any:
        self.calls.append(mode)
        if mode in self.refuse:
            raise RuntimeError(
                "backend='inductor' raised:\nLoweringException: no lowering for aten.weird\n"
                "Set TORCH_LOGS=+dynamo for more"
            )
        return fn


def test_a_compiled_arm_compiles_once_per_dtype_and_keeps_each_case_apart() -> None:
    recorder = Recorder()
    arm = CompiledReference(_reference(_softmax()), CompileMode.MAX_AUTOTUNE, recorder)
    for case in (SMALL, WIDE):
        arm.warm(case, partial(arm, _inputs(case[0]), case[1]))
        arm.time_round(case, lambda: [0.50, 0.40, 0.60])
        arm.time_round(case, lambda: [0.45])
    assert recorder.calls == [CompileMode.MAX_AUTOTUNE]  # float32 only: one compiled callable
    (out,) = arm(_inputs((3, 17)), "float32")
    assert isinstance(out, torch.Tensor) and out.shape == (3, 17)
    small = arm.result(SMALL, summarize)
    assert small.mode == "max-autotune-no-cudagraphs" and small.error is None
    assert small.timing is not None and small.timing.n == 4 and small.timing.median_ms == 0.475
    assert small.compile_s is not None and small.compile_s >= 0.0
    assert arm.result(WIDE, summarize).timing is not None


def test_a_failed_compile_is_recorded_in_one_line_and_never_timed() -> None:
    recorder = Recorder(refuse=(CompileMode.DEFAULT,))
    arm = CompiledReference(_reference(_softmax()), CompileMode.DEFAULT, recorder)
    arm.warm(SMALL, lambda: arm(_inputs((3, 17)), "float32"))
    rounds: list[int] = []

    def one_round() -> list[float]:
        rounds.append(1)
        return [0.1]

    arm.time_round(SMALL, one_round)
    assert rounds == []  # a failed case is not called again
    record = arm.result(SMALL, summarize)
    assert record == CompiledTiming(
        mode="default",
        timing=None,
        compile_s=None,
        error="RuntimeError: backend='inductor' raised:",
    )


def test_a_case_that_fails_while_timed_drops_its_samples_and_the_others_stay() -> None:
    arm = CompiledReference(_reference(_softmax()), CompileMode.DEFAULT, Recorder())
    arm.time_round(SMALL, lambda: [0.2, 0.3])
    arm.time_round(WIDE, lambda: [0.9])

    def out_of_memory() -> list[float]:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore")

    arm.time_round(SMALL, out_of_memory)
    small, wide = arm.result(SMALL, summarize), arm.result(WIDE, summarize)
    assert small.timing is None
    assert small.error == "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert wide.timing is not None and wide.timing.median_ms == 0.9 and wide.error is None
    untouched = arm.result(((64, 257), "float32"), summarize)
    assert untouched.error == "not timed: the compiled reference was never called on this case"


def test_failures_are_described_in_one_capped_line() -> None:
    assert describe_failure(ValueError("\n\n  first\nsecond")) == "ValueError: first"
    assert describe_failure(KeyError()) == "KeyError"
    long = describe_failure(RuntimeError("x" * 1000))
    assert len(long) == 300 and long.endswith("…")


@pytest.mark.parametrize(
    ("arm", "time", "source", "modes"),
    [
        (CompileArm.SEED, True, SOFTMAX, COMPILE_MODES),
        (CompileArm.SEED, True, SOFTMAX + "\n# tuned\n", ()),
        (CompileArm.ALWAYS, True, SOFTMAX + "\n# tuned\n", COMPILE_MODES),
        (CompileArm.ALWAYS, False, SOFTMAX, ()),
        (CompileArm.OFF, True, SOFTMAX, ()),
    ],
)
def test_which_evaluations_time_torch_compile(
    arm: CompileArm, time: bool, source: str, modes: tuple[CompileMode, ...]
) -> None:
    options = EvalOptions(device="cuda", time=time, compile_arm=arm)
    assert compile_modes(_softmax(), source, options) == modes


def test_the_default_is_the_seed_alone() -> None:
    assert EvalOptions().compile_arm is CompileArm.SEED
    assert [m.value for m in COMPILE_MODES] == ["default", "max-autotune-no-cudagraphs"]


def test_the_judge_request_carries_the_modes() -> None:
    request = {
        "problem": problem_to_dict(_softmax()),
        "candidate": "/tmp/candidate.py",
        "device": "cpu",
        "timeout": 60,
        "trials": 5,
        "base_seed": 0,
        "secret_seed": 7,
        "time": True,
        "cache_dir": None,
        "rounds": 3,
        "calls_per_round": 5,
    }
    assert JudgeRequest.from_dict(request).compile_modes == ()
    request["compile_modes"] = ["max-autotune-no-cudagraphs"]
    assert JudgeRequest.from_dict(request).compile_modes == (CompileMode.MAX_AUTOTUNE,)


def _timing(median: float) -> Timing:
    return Timing(n=10, median_ms=median, q10_ms=median, q90_ms=median, min_ms=median)


def _case(shape: list[int], compiled: list[CompiledTiming]) -> CaseTiming:
    return CaseTiming(shape=shape, dtype="float16", candidate=_timing(0.5), compiled=compiled)


def test_the_faster_mode_decides_the_speedup_against_torch_compile() -> None:
    case = _case(
        [64, 64],
        [
            CompiledTiming("default", _timing(0.6)),
            CompiledTiming("max-autotune-no-cudagraphs", _timing(0.4)),
        ],
    )
    fastest = case.fastest_compiled()
    assert fastest is not None and fastest.mode == "max-autotune-no-cudagraphs"
    assert case.speedup_vs_compile() == pytest.approx(0.8)
    failed = _case([64, 64], [CompiledTiming("default", error="Unsupported: x")])
    assert failed.fastest_compiled() is None and failed.speedup_vs_compile() is None
    assert _case([64, 64], []).speedup_vs_compile() is None


def test_the_best_takes_the_seed_figures_only_where_it_has_none() -> None:
    own = [CompiledTiming("default", _timing(0.3))]
    seeds = [CompiledTiming("default", _timing(0.7))]
    best = [_case([1, 2], own), _case([3, 4], []), _case([5, 6], [])]
    seed = Evaluation(
        verdict=Verdict.CORRECT,
        reason="",
        problem="p",
        device="cuda",
        timings=[_case([1, 2], seeds), _case([3, 4], seeds)],
    )
    merged = with_seed_compile(best, seed)
    assert merged[0].compiled == own  # its own figures stay
    assert merged[1].compiled == [dataclasses.replace(seeds[0], from_seed=True)]
    assert merged[2].compiled == []  # the seed did not time this case either
    assert best[1].compiled == []  # the inputs are not changed
    assert with_seed_compile(best, None) == best


def test_an_evaluation_with_compile_arms_reads_back_from_json() -> None:
    ev = Evaluation(
        verdict=Verdict.CORRECT,
        reason="ok",
        problem="p",
        device="cuda",
        timed=True,
        dims=["M", "N", "K"],
        timings=[
            _case(
                [33, 17, 45],
                [
                    CompiledTiming("default", _timing(0.6), compile_s=12.5),
                    CompiledTiming("max-autotune-no-cudagraphs", error="BackendCompilerFailed"),
                ],
            )
        ],
    )
    assert evaluation_from_dict(ev.to_dict()) == ev


def test_the_report_shows_every_arm_the_failure_and_a_loss_to_torch_compile() -> None:
    case = _case(
        [33, 17, 45],
        [
            CompiledTiming("default", _timing(0.25), compile_s=12.5),
            CompiledTiming("max-autotune-no-cudagraphs", error="BackendCompilerFailed: boom"),
        ],
    )
    case.reference, case.baseline, case.speedup = _timing(1.5), _timing(0.75), 1.5
    ev = Evaluation(
        verdict=Verdict.CORRECT,
        reason="correct on every case; timed against the baseline",
        problem="matmul_bias_relu",
        device="cuda",
        timed=True,
        dims=["M", "N", "K"],
        timings=[case],
        hardware={
            "device": "cuda",
            "name": "NVIDIA H100",
            "capability": "9.0",
            "driver": "550.54.15",
            "cuda": "12.4",
            "torch": "2.6.0",
            "triton": "3.2.0",
        },
    )
    text = render(ev)
    row = next(line for line in text.splitlines() if line.startswith("33×17×45"))
    assert row.split() == [
        "33×17×45",
        "float16",
        *("1.5000", "[1.5000-1.5000]"),
        *("0.2500", "[0.2500-0.2500]"),
        "failed",
        *("0.7500", "[0.7500-0.7500]"),
        *("0.5000", "[0.5000-0.5000]"),
        "1.500x",
        "0.500x",
        *("-", "-", "-"),
    ]
    assert "shape (M×N×K)" in text
    assert (
        "torch.compile (max-autotune-no-cudagraphs) on 33×17×45 float16: — "
        "BackendCompilerFailed: boom"
    ) in text
    assert "torch.compile (default) on 33×17×45 float16: compiled in 12.5 s (not timed)" in text
    assert "SLOWER THAN TORCH.COMPILE on 1 of 1 timed cases" in text
    assert (
        "Device: NVIDIA H100 (sm 9.0), driver 550.54.15, CUDA 12.4, torch 2.6.0, triton 3.2.0"
    ) in text


def test_on_cpu_nothing_is_timed_and_the_machine_is_still_named() -> None:
    problem = narrow(_softmax(), ["float32"], [], DEMO)
    options = EvalOptions(device="cpu", timeout=60, compile_arm=CompileArm.ALWAYS)
    ev = evaluate(problem, SOFTMAX, options)
    assert ev.verdict is Verdict.CORRECT, ev.reason
    assert not ev.timed and ev.timings == []
    assert ev.hardware is not None and ev.hardware["device"] == "cpu"
    assert ev.hardware["cpu"] and ev.hardware["torch"] == torch.__version__
    assert ev.hardware["triton"]
    assert ev.dims == ["rows", "cols"]
    tolerances = {c.tolerance.rtol for c in ev.checks if c.tolerance is not None}
    assert tolerances == {1e-4} and len(ev.checks) == len(problem.check_shapes)
    assert "Device: CPU " in render(ev) and "rtol / atol / norm" in render(ev)


@pytest.mark.gpu
def test_the_judge_times_eager_and_both_torch_compile_modes_on_the_gpu(tmp_path: Path) -> None:
    problem = narrow(_softmax(), ["bfloat16"], ["4096x4096"], DEMO)
    options = EvalOptions(
        device="cuda",
        timeout=600,
        cache_dir=tmp_path / "cache",
        rounds=3,
        calls_per_round=5,
        compile_arm=CompileArm.ALWAYS,
    )
    tuned = SOFTMAX + "\n# a candidate, not the seed\n"
    ev = evaluate(problem, tuned, options)
    assert ev.verdict is Verdict.CORRECT, ev.reason
    assert ev.timed and len(ev.timings) == 1
    [case] = ev.timings
    assert case.reference is not None and case.reference.median_ms > 0
    assert [c.mode for c in case.compiled] == [m.value for m in COMPILE_MODES]
    for arm in case.compiled:
        assert arm.error is None, arm.error
        assert arm.timing is not None and arm.timing.median_ms > 0 and arm.timing.n == 15
        assert arm.compile_s is not None and arm.compile_s > 0
    versus = case.speedup_vs_compile()
    assert versus is not None and versus > 0
    assert any((tmp_path / "cache" / "triton-judge").rglob("inductor"))
    assert "max-autotune-no-cudagraphs" in render(ev)
    # A search's other candidates pay nothing for the arm: only the seed runs it.
    seeded = dataclasses.replace(options, compile_arm=CompileArm.SEED)
    assert all(not t.compiled for t in evaluate(problem, tuned, seeded).timings)
    assert all(len(t.compiled) == 2 for t in evaluate(problem, SOFTMAX, seeded).timings)
