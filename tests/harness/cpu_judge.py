"""A judge request on the CPU without timing, as the judge's own CPU tests build it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kevolve.harness.judge.session import JudgeRequest
from kevolve.harness.spec.problem import Problem


def cpu_request(problem: Problem, candidate: Path, trials: int, **settings: Any) -> JudgeRequest:
    """`trials` trials of `candidate` on the CPU, nothing timed; `settings` override the rest
    (chunk sizes, say)."""
    return JudgeRequest(
        problem=problem,
        candidate=candidate,
        device="cpu",
        timeout=120.0,
        trials=trials,
        base_seed=0,
        secret_seed=4242,
        time=False,
        cache_dir=None,
        rounds=1,
        calls_per_round=1,
        **settings,
    )
