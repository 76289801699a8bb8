"""`Status`: what a search knows as it goes, how its candidates score, and how many fit a GPU."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kevolve.harness.evaluation import Evaluation, Verdict
from kevolve.harness.search.candidate import Elite

CONTEXT_BYTES = 640 * 2**20  # a CUDA context (judge and worker each), outside torch's count
MEMORY_SHARE = 0.85  # of the GPU's memory, leaving room for candidates that use more than the seed


class StopKind(StrEnum):
    """Why a search stopped, as data; its stop reason says the same in words."""

    BUDGET = "budget"  # its candidates were judged
    MINUTES = "minutes"
    TOKENS = "tokens"  # the LLM's token cap
    COST = "cost"  # the LLM's cost cap
    PATIENCE = "patience"  # no improvement for `patience` generations
    PAUSED = "paused"  # queued prompts wait for replies: run it again to go on
    OTHER = "other"  # no rule fired (nothing left to judge), or a result older than kinds


@dataclass
class Status:
    """What the search knows now; `history` is the best score after each evaluation."""

    evaluated: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    best: Elite | None = None
    baseline: Evaluation | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    generation: int = 0
    stale: int = 0
    stop_reason: str = ""
    stop: StopKind = StopKind.OTHER
    elapsed_s: float = 0.0  # wall time over every run of this search
    gpu_s: float = 0.0  # seconds evaluations spent timing on the GPU
    cost_usd: float = 0.0  # LLM cost over every run of this search
    tokens: int = 0  # LLM tokens over every run of this search
    repairs: int = 0  # repair candidates judged
    repaired: int = 0  # ... of which correct
    waiting: list[str] = field(default_factory=list)  # queued prompts without a reply: paused


class RepliesPending(Exception):
    """Planning stopped: queued prompts wait for replies (the search state is stored)."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__(f"waiting for {len(keys)} replies")
        self.keys = keys


def memory_slots(ev: Evaluation | None) -> int | None:
    """How many evaluations like `ev` fit its GPU at once, all checking and one timing (timing
    holds the GPU alone); None where its memory was not measured."""
    memory = ev.memory if ev is not None else {}
    total, check = memory.get("device_total", 0), memory.get("check", 0)
    if total <= 0 or check <= 0:
        return None
    timing = max(0, memory.get("peak", check) - check)
    each = check + 2 * CONTEXT_BYTES
    return max(1, int((MEMORY_SHARE * total - timing) // each))


def score(ev: Evaluation) -> float | None:
    """Higher is better: the geometric-mean speedup when timed, 1.0 if only checked, else None."""
    if ev.verdict is not Verdict.CORRECT:
        return None
    speedup = ev.speedup()
    return 1.0 if speedup is None else speedup
