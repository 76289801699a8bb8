"""Verdicts that only a GPU can produce: timing, profiler confirmation, device faults."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from kevolve.harness.evaluate import EvalOptions, evaluate
from kevolve.harness.evaluation import Verdict
from kevolve.harness.sandbox.confine import Confinement
from kevolve.harness.spec.load import load_problems, select

from tests.jobuser import ensure_job_user, reachable_dir

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
SOFTMAX = (DEMO / "demo_kernels" / "softmax.py").read_text()
OPTIONS = EvalOptions(device="cuda", timeout=120, rounds=3, calls_per_round=5)

pytestmark = pytest.mark.gpu


def _softmax():  # type: ignore[no-untyped-def]
    return select(load_problems(DEMO), "softmax", DEMO)


def test_demo_kernel_is_correct_and_timed_against_its_baseline(tmp_path: Path) -> None:
    ev = evaluate(_softmax(), SOFTMAX, EvalOptions(**{**vars(OPTIONS), "cache_dir": tmp_path}))
    assert ev.verdict is Verdict.CORRECT, ev.reason
    assert ev.timed and ev.timings
    first = ev.timings[0]
    assert first.baseline is not None and first.speedup_ci is not None
    assert first.speedup_ci[0] <= first.speedup <= first.speedup_ci[1]
    assert first.rechecked and first.roofline_fraction is not None
    assert 0.05 < first.roofline_fraction < 1.05
    assert any(k.n_regs for k in ev.kernels)
    # The baseline's kernels compiled into the shared judge cache, so the next evaluation on
    # this machine loads them instead of compiling them again.
    assert any((tmp_path / "triton-judge").rglob("*.cubin"))


def test_a_judge_in_bubblewrap_as_the_job_user_reaches_the_gpu_and_times() -> None:
    bwrap = shutil.which("bwrap")
    assert bwrap is not None, "install bubblewrap (apt-get install bubblewrap)"
    with reachable_dir("kevolve-gpu-confined-") as place:
        repo = shutil.copytree(DEMO, place / "demo")
        problem = select(load_problems(repo), "softmax", repo)
        confinement = Confinement(ensure_job_user(), bwrap)
        options = replace(OPTIONS, cache_dir=place / "cache", confinement=confinement)
        ev = evaluate(problem, SOFTMAX, options)
    assert ev.verdict is Verdict.CORRECT, ev.reason
    assert ev.timed and ev.timings and ev.timings[0].speedup_ci is not None
    assert [n for n in ev.notes if n.startswith("confined by bubblewrap")], ev.notes


def test_out_of_bounds_writes_are_a_verdict_not_a_crash() -> None:
    # No mask and a huge row offset: an illegal memory access on the device.
    source = SOFTMAX.replace("row = tl.program_id(0)", "row = tl.program_id(0) + 1000000000")
    source = source.replace(", mask=mask)", ")")
    ev = evaluate(_softmax(), source, OPTIONS)
    assert ev.verdict in (Verdict.RUNTIME_ERROR, Verdict.CRASHED, Verdict.INCORRECT)
    assert ev.reason


def test_compile_errors_name_the_candidate_line() -> None:
    source = SOFTMAX.replace("cols = tl.arange(0, BLOCK)", "cols = tl.arange(0, n_cols)")
    ev = evaluate(_softmax(), source, OPTIONS)
    assert ev.verdict is Verdict.COMPILE_ERROR
    line = source.splitlines().index("    cols = tl.arange(0, n_cols)") + 1
    assert ev.diagnostics[0].line == line, ev.diagnostics


def test_outputs_that_turn_wrong_while_timed_are_caught_after_the_hold() -> None:
    # Right for its first 160 calls (the checks and precompiles take about 130, the timed rounds
    # about 130 more), then every output scaled by zero. Only the timed calls' last outputs,
    # kept by the worker through the exclusive hold and fetched after it, can show that.
    source = SOFTMAX.replace("    n_cols,\n    BLOCK", "    n_cols,\n    scale,\n    BLOCK")
    source = source.replace("y = num / tl.sum(num, axis=0)", "y = scale * num / tl.sum(num, 0)")
    launch = "        n_cols,\n        BLOCK"
    source = source.replace(launch, launch.replace("BLOCK", "_scale(),\n        BLOCK"))
    source += (
        "\n\n_CALLS = [0]\n\n\ndef _scale() -> float:\n"
        "    _CALLS[0] += 1\n    return 1.0 if _CALLS[0] <= 160 else 0.0\n"
    )
    ev = evaluate(_softmax(), source, OPTIONS)
    assert ev.verdict is Verdict.INCORRECT, ev.reason
    assert "outputs produced while being timed on shape" in ev.reason, ev.reason
