"""Sharing one GPU's memory: how many evaluations fit, and a judge that ran out of memory."""

from __future__ import annotations

from pathlib import Path

import pytest
from kevolve.harness.evaluate import EvalOptions, HarnessError, evaluate
from kevolve.harness.evaluation import Evaluation, Verdict
from kevolve.harness.search.campaign import OOM_ATTEMPTS, OOM_PAUSE_S, _evaluator
from kevolve.harness.search.status import CONTEXT_BYTES, memory_slots
from kevolve.harness.spec.load import load_problems
from kevolve.harness.spec.problem import Problem

ROOT = Path(__file__).resolve().parents[2]
GOOD = (ROOT / "tests" / "corpus" / "kernelbench" / "softmax__good_online.py").read_text()
GIB = 2**30
FAILING_REFERENCE = '''"""A KernelBench problem whose reference fails in the judge: {name}."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise {error}


def get_inputs() -> list[torch.Tensor]:
    return [torch.randn(16, 4096)]


def get_init_inputs() -> list[object]:
    return []
'''


def measured(check: int, peak: int, total: int = 80 * GIB) -> Evaluation:
    ev = Evaluation(Verdict.CORRECT, "ok", "softmax", "cuda")
    ev.memory = {"device_total": total, "check": check, "peak": peak}
    return ev


@pytest.mark.parametrize(
    ("check", "peak", "slots"),
    [
        (6 * GIB, 6 * GIB, 9),  # 68 GiB usable / (6 GiB + two 640 MiB contexts)
        (6 * GIB, 16 * GIB, 8),  # one timing evaluation's extra 10 GiB comes off the top
        (70 * GIB, 70 * GIB, 1),  # never fewer than one
    ],
)
def test_evaluations_that_fit_follow_the_seeds_measured_memory(
    check: int, peak: int, slots: int
) -> None:
    assert memory_slots(measured(check, peak)) == slots
    usable = 0.85 * 80 * GIB - (peak - check)
    assert slots == max(1, int(usable // (check + 2 * CONTEXT_BYTES)))


def test_unmeasured_memory_sets_no_limit() -> None:
    assert memory_slots(None) is None
    assert memory_slots(Evaluation(Verdict.CORRECT, "ok", "softmax", "cpu")) is None


def problem_failing_with(tmp_path: Path, error: str) -> Problem:
    path = tmp_path / "failing.py"
    path.write_text(FAILING_REFERENCE.format(name=error.split("(")[0], error=error))
    [problem] = load_problems(path)
    return problem


def test_a_judge_out_of_gpu_memory_is_a_harness_error_worth_retrying(tmp_path: Path) -> None:
    oom = problem_failing_with(tmp_path, 'torch.cuda.OutOfMemoryError("CUDA out of memory")')
    with pytest.raises(HarnessError, match="OutOfMemoryError") as caught:
        evaluate(oom, GOOD, EvalOptions(device="cpu", timeout=60))
    assert caught.value.out_of_memory
    broken = problem_failing_with(tmp_path, 'RuntimeError("a bug in the reference")')
    with pytest.raises(HarnessError, match="a bug in the reference") as caught:
        evaluate(broken, GOOD, EvalOptions(device="cpu", timeout=60))
    assert not caught.value.out_of_memory


def test_the_local_evaluator_retries_a_judge_out_of_memory_then_gives_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers: list[HarnessError | Evaluation] = [
        HarnessError("the judge failed: OutOfMemoryError", out_of_memory=True),
        HarnessError("the judge failed: OutOfMemoryError", out_of_memory=True),
        Evaluation(Verdict.CORRECT, "ok", "softmax", "cuda"),
    ]

    def fake_evaluate(problem: object, source: str, options: EvalOptions) -> Evaluation:
        answer = answers.pop(0)
        if isinstance(answer, HarnessError):
            raise answer
        return answer

    monkeypatch.setattr("kevolve.harness.search.campaign.evaluate", fake_evaluate)
    pauses: list[float] = []
    judge = _evaluator(EvalOptions(device="cuda"), pauses.append)
    [problem] = load_problems(ROOT / "examples" / "kernelbench" / "softmax.py")
    assert judge(problem, GOOD).verdict is Verdict.CORRECT
    assert pauses == [OOM_PAUSE_S, 2 * OOM_PAUSE_S]

    answers[:] = [HarnessError("out", out_of_memory=True)] * OOM_ATTEMPTS
    with pytest.raises(HarnessError):
        judge(problem, GOOD)
    assert not answers  # every attempt was made before giving up
    answers[:] = [HarnessError("a bug"), Evaluation(Verdict.CORRECT, "ok", "softmax", "cuda")]
    with pytest.raises(HarnessError, match="a bug"):
        judge(problem, GOOD)  # anything else is not retried
