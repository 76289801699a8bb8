"""Statistics of per-call times: quantiles, summaries, bootstrap speedup intervals (stdlib only)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from kevolve.harness.evaluation import Timing


def quantile(samples: Sequence[float], q: float) -> float:
    """The q-quantile of the samples, interpolated linearly between order statistics (as numpy)."""
    if not samples:
        raise ValueError("quantile of no samples")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile level {q} is outside [0, 1]")
    ordered = sorted(samples)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(samples: Sequence[float]) -> float:
    """The median of the samples (the mean of the middle two for an even count)."""
    return quantile(samples, 0.5)


def summarize(samples_ms: Sequence[float]) -> Timing:
    """A `Timing` of per-call milliseconds: count, median, 10th and 90th percentiles, minimum."""
    return Timing(
        n=len(samples_ms),
        median_ms=median(samples_ms),
        q10_ms=quantile(samples_ms, 0.1),
        q90_ms=quantile(samples_ms, 0.9),
        min_ms=min(samples_ms),
    )


def paired_speedup_ci(
    baseline_rounds: Sequence[Sequence[float]],
    candidate_rounds: Sequence[Sequence[float]],
    rng: random.Random,
    resamples: int = 2000,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """(point, low, high) of the speedup, bootstrapping whole rounds in pairs.

    Calls within one round share clocks and neighbours, so treating them as independent gives
    intervals too narrow to trust. Each round times baseline and candidate back to back; the
    per-round ratio cancels drift between rounds, and the bootstrap draws whole rounds.
    """
    if len(baseline_rounds) != len(candidate_rounds) or not baseline_rounds:
        raise ValueError("need the same, non-zero number of baseline and candidate rounds")
    for b, c in zip(baseline_rounds, candidate_rounds, strict=True):
        _check_times(b, "baseline")
        _check_times(c, "candidate")
    ratios = [median(b) / median(c) for b, c in zip(baseline_rounds, candidate_rounds, strict=True)]
    draws = [median(rng.choices(ratios, k=len(ratios))) for _ in range(resamples)]
    tail = (1.0 - level) / 2.0
    return median(ratios), quantile(draws, tail), quantile(draws, 1.0 - tail)


def _check_times(samples: Sequence[float], name: str) -> None:
    """Raise `ValueError` unless the samples are a non-empty list of positive times."""
    if not samples:
        raise ValueError(f"no {name} times")
    if min(samples) <= 0.0:
        raise ValueError(f"{name} times must be positive, got minimum {min(samples)}")
