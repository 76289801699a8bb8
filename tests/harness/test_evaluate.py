"""Tests for `harness.evaluate`: static verdicts come before any process; the judge's verdict
comes back as an `Evaluation` with per-case figures."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from kevolve.harness.evaluate import EvalOptions, evaluate
from kevolve.harness.evaluation import Diagnostic, Verdict
from kevolve.harness.spec.load import load_problems
from kevolve.harness.spec.problem import Problem

ROOT = Path(__file__).resolve().parents[2]
KERNELBENCH = ROOT / "examples" / "kernelbench"
CORPUS = ROOT / "tests" / "corpus" / "kernelbench"
CPU = EvalOptions(device="cpu", timeout=60)
BROKEN = "import torch\nimport triton\n\nclass ModelNew(torch.nn.Module:\n    pass\n"
ESCAPES = "import torch\nimport triton\nimport subprocess\nimport socket\n"


def kernelbench(name: str) -> Problem:
    [problem] = load_problems(KERNELBENCH / f"{name}.py")
    return problem


@pytest.fixture
def no_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if evaluate starts a judge."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a static verdict must not start a process")

    monkeypatch.setattr("kevolve.harness.evaluate.spawn", refuse)


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The directory evaluate's scratch directories are made in."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.mark.usefixtures("no_process")
def test_syntax_error_is_a_compile_error_with_its_line() -> None:
    ev = evaluate(kernelbench("softmax"), BROKEN, CPU)
    assert ev.verdict is Verdict.COMPILE_ERROR
    assert ev.reason.startswith("syntax error at line 4: ")
    assert ev.diagnostics == [Diagnostic("compile", ev.reason, 4)]
    assert (ev.device, ev.checks, ev.phases) == ("none", [], {})


@pytest.mark.usefixtures("no_process")
@pytest.mark.parametrize("source", ["x = 1\0\n", "x = '\udc80'\n"], ids=["nul", "surrogate"])
def test_source_that_is_not_python_text_is_a_compile_error(source: str) -> None:
    ev = evaluate(kernelbench("softmax"), source, CPU)
    assert ev.verdict is Verdict.COMPILE_ERROR
    assert ev.reason.startswith("the source is not valid Python text: ")


@pytest.mark.usefixtures("no_process")
def test_screen_findings_reject_with_the_first_line_and_a_count() -> None:
    ev = evaluate(kernelbench("softmax"), ESCAPES, CPU)
    assert ev.verdict is Verdict.REJECTED
    assert ev.reason.startswith("line 3: imports subprocess")
    assert ev.reason.endswith("(and 1 more finding(s))")
    assert [(d.kind, d.line) for d in ev.diagnostics] == [("static", 3), ("static", 4)]


@pytest.mark.usefixtures("no_process")
def test_candidate_hash_identifies_the_source() -> None:
    problem = kernelbench("softmax")
    first, again = evaluate(problem, BROKEN, CPU), evaluate(problem, BROKEN, CPU)
    other = evaluate(problem, BROKEN + "\n", CPU)
    assert first.candidate_hash == again.candidate_hash != other.candidate_hash
    assert len(first.candidate_hash) == 16 and int(first.candidate_hash, 16) >= 0


def test_wrong_candidate_is_incorrect_with_case_figures(scratch: Path) -> None:
    source = (CORPUS / "gelu_scale__tanh_approx.py").read_text()
    ev = evaluate(kernelbench("gelu_scale"), source, CPU)
    assert ev.verdict is Verdict.INCORRECT
    assert ev.reason.startswith("shape as given float32, trial 1 (normal inputs): output 0: ")
    [check] = ev.checks
    assert (check.shape, check.dtype, check.passed, check.trials) == ([], "float32", False, 0)
    assert check.elements == 32 * 1024 and 0 < check.mismatches <= check.elements
    assert 1e-4 < check.max_abs < 1e-2 and check.rel_norm > 1e-5
    assert check.first_indices and all(len(i) == 2 for i in check.first_indices)
    assert check.failure is not None and check.failure in ev.reason
    assert ev.diagnostics[-1].kind == "mismatch"
    assert not list(scratch.iterdir())  # the scratch directory is gone


def test_total_timeout_is_a_timeout_verdict(scratch: Path) -> None:
    source = (CORPUS / "gelu_scale__tanh_approx.py").read_text()
    ev = evaluate(kernelbench("gelu_scale"), source, EvalOptions(device="cpu", total_timeout=0.5))
    assert ev.verdict is Verdict.TIMEOUT
    assert ev.reason == "the evaluation took longer than 0.5 s"
    assert ev.candidate_hash
    assert not list(scratch.iterdir())


def test_correct_candidate_runs_every_requested_trial() -> None:
    source = (CORPUS / "softmax__good_online.py").read_text()
    ev = evaluate(kernelbench("softmax"), source, EvalOptions(device="cpu", timeout=60, trials=6))
    assert ev.verdict is Verdict.CORRECT, ev.reason
    assert ev.reason == "correct on every case; nothing was timed (no CUDA device)"
    assert not ev.timed and ev.timings == []
    [check] = ev.checks
    assert (check.passed, check.trials, check.elements) == (True, 6, 16 * 4096)
    assert check.max_abs < 1e-5 and check.mismatches == 0
    checking = {"ahead", "check_wait", "reference", "reply", "compare"}  # parts of "check"
    assert set(ev.phases) == {"load", "check", "total", "check_wait_max", *checking}
    assert sum(ev.phases[p] for p in checking) <= ev.phases["check"] + 0.01
    assert ev.phases["check_wait_max"] <= ev.phases["check_wait"]
    assert ev.phases["load"] + ev.phases["check"] <= ev.phases["total"]  # total adds start-up
