"""The evaluation timeline, rebuilt from what a state file keeps.

A state file records when each generation finished (its checkpoint's wall time) and how long
each evaluation took (its phases, `total` and the GPU's `time`), not when each one started. So
each generation's evaluations are laid onto judge slots from the end of the generation before,
one after another on the slot that frees first: the picture of which judges were busy and how
much of the wall time the GPU spent timing is right per generation, the order within it a
reconstruction (the page says so).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kevolve.bot.dashboard.charts import Interval
from kevolve.harness.evaluation import Evaluation
from kevolve.harness.search.candidate import Candidate
from kevolve.harness.search.snapshot import Mark

MAX_LANES = 16
SLACK = 1.05  # the share of the recorded wall time a layout may run over and still fit


@dataclass(frozen=True)
class Timeline:
    """The evaluations on their judge slots, and what they add up to."""

    intervals: list[Interval]
    lanes: int
    wall_s: float
    judged_s: float  # seconds of evaluation, all slots together
    gpu_s: float  # seconds the GPU spent timing

    @property
    def gpu_share(self) -> float | None:
        """The share of wall time the GPU spent timing; None before any time passed."""
        return self.gpu_s / self.wall_s if self.wall_s > 0 else None


def rebuild(
    evaluations: Sequence[tuple[str, Evaluation]],
    candidates: Mapping[str, Candidate],
    marks: Sequence[Mark],
) -> Timeline:
    """The timeline of the stored evaluations, generation by generation, on the fewest judge
    slots that fit them into the wall time the checkpoints record."""
    ends = {m.generation: m.elapsed_s for m in marks}
    by_generation: dict[int, list[tuple[str, Evaluation]]] = {}
    for cid, ev in evaluations:
        generation = candidates[cid].generation if cid in candidates else max(ends, default=0)
        by_generation.setdefault(generation, []).append((cid, ev))
    wall = max(ends.values(), default=0.0)
    laid = _lay(by_generation, ends, 1)
    for lanes in range(2, MAX_LANES + 1):
        if not wall or _end(laid) <= wall * SLACK:
            break
        laid = _lay(by_generation, ends, lanes)
    return Timeline(
        laid,
        1 + max((i.lane for i in laid), default=0),
        max(wall, _end(laid)),
        sum(i.length_s for i in laid),
        sum(i.gpu_s for i in laid),
    )


def _lay(
    by_generation: Mapping[int, Sequence[tuple[str, Evaluation]]],
    ends: Mapping[int, float],
    lanes: int,
) -> list[Interval]:
    """Each generation's evaluations from the end of the generation before, each on the slot
    that frees first."""
    free = [0.0] * lanes
    laid: list[Interval] = []
    for generation in sorted(by_generation):
        start = max((t for g, t in ends.items() if g < generation), default=0.0)
        for cid, ev in by_generation[generation]:
            lane = min(range(lanes), key=lambda i: free[i])
            begin = max(start, free[lane])
            length = _seconds(ev, "total")
            laid.append(Interval(lane, begin, length, _seconds(ev, "time"), ev.verdict.value, cid))
            free[lane] = begin + length
    return laid


def _end(laid: Sequence[Interval]) -> float:
    """When the last evaluation laid out ends."""
    return max((i.start_s + i.length_s for i in laid), default=0.0)


def _seconds(ev: Evaluation, phase: str) -> float:
    """One phase's seconds of an evaluation (0 when it did not run)."""
    value = ev.phases.get(phase, 0.0)
    return float(value) if value and value > 0 else 0.0
