"""Tests for `harness.judge.stats`: quantiles, summaries and bootstrap speedup intervals."""

from __future__ import annotations

import random

import pytest
from kevolve.harness.evaluation import Timing
from kevolve.harness.judge.stats import median, paired_speedup_ci, quantile, summarize


@pytest.mark.parametrize(
    ("samples", "q", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0], 0.0, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 1.0, 4.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.5),
        ([1.0, 2.0, 3.0, 4.0], 0.1, 1.3),
        ([4.0, 1.0, 3.0, 2.0], 0.9, 3.7),
        ([10.0, 0.0, 20.0], 0.25, 5.0),
        ([7.0], 0.3, 7.0),
    ],
)
def test_quantile_interpolates_linearly(samples: list[float], q: float, expected: float) -> None:
    assert quantile(samples, q) == pytest.approx(expected)


def test_median_of_odd_and_even_counts() -> None:
    assert median([5.0, 1.0, 3.0]) == 3.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5


@pytest.mark.parametrize(("samples", "q"), [([], 0.5), ([1.0], -0.1), ([1.0], 1.5)])
def test_quantile_rejects_bad_arguments(samples: list[float], q: float) -> None:
    with pytest.raises(ValueError):
        quantile(samples, q)


def test_summarize_reports_count_quantiles_and_minimum() -> None:
    samples = [float(x) for x in range(1, 12)]  # 1..11
    assert summarize(samples) == Timing(n=11, median_ms=6.0, q10_ms=2.0, q90_ms=10.0, min_ms=1.0)


def _rounds(rng: random.Random, center: float, rounds: int, calls: int = 10) -> list[list[float]]:
    """`rounds` rounds of `calls` positive times spread about 5% around `center`."""
    return [
        [center * (1.0 + 0.05 * rng.gauss(0.0, 1.0)) for _ in range(calls)] for _ in range(rounds)
    ]


def test_speedup_interval_contains_the_point_estimate() -> None:
    rng = random.Random(1)
    baseline, candidate = _rounds(rng, 2.0, 10), _rounds(rng, 1.0, 10)
    point, low, high = paired_speedup_ci(baseline, candidate, random.Random(2))
    ratios = [median(b) / median(c) for b, c in zip(baseline, candidate, strict=True)]
    assert point == pytest.approx(median(ratios))
    assert low <= point <= high


def test_speedup_interval_narrows_with_more_rounds() -> None:
    rng = random.Random(3)
    _, low_few, high_few = paired_speedup_ci(_rounds(rng, 2.0, 4), _rounds(rng, 1.0, 4), rng)
    _, low_many, high_many = paired_speedup_ci(_rounds(rng, 2.0, 200), _rounds(rng, 1.0, 200), rng)
    assert high_many - low_many < (high_few - low_few) / 2


def test_speedup_interval_excludes_one_for_clearly_different_times() -> None:
    rng = random.Random(4)
    _, low, high = paired_speedup_ci(_rounds(rng, 1.2, 10), _rounds(rng, 1.0, 10), rng)
    assert 1.0 < low < 1.2 < high


def test_speedup_interval_includes_one_for_identical_distributions() -> None:
    rng = random.Random(5)
    _, low, high = paired_speedup_ci(_rounds(rng, 1.0, 10), _rounds(rng, 1.0, 10), rng)
    assert low < 1.0 < high


def test_speedup_interval_is_reproducible_with_the_same_seed() -> None:
    data = random.Random(6)
    baseline, candidate = _rounds(data, 1.5, 10), _rounds(data, 1.0, 10)
    first = paired_speedup_ci(baseline, candidate, random.Random(7))
    assert paired_speedup_ci(baseline, candidate, random.Random(7)) == first


@pytest.mark.parametrize(("baseline", "candidate"), [([[]], [[1.0]]), ([[1.0]], [[0.0, 1.0]])])
def test_speedup_interval_rejects_empty_or_nonpositive_times(
    baseline: list[list[float]], candidate: list[list[float]]
) -> None:
    with pytest.raises(ValueError):
        paired_speedup_ci(baseline, candidate, random.Random(0))


def test_paired_interval_widens_when_rounds_disagree() -> None:
    rng = random.Random(7)
    steady_b = [[1.0 + 0.001 * i for i in range(10)] for _ in range(10)]
    steady_c = [[0.5 + 0.001 * i for i in range(10)] for _ in range(10)]
    point, low, high = paired_speedup_ci(steady_b, steady_c, rng)
    assert low <= point <= high and high - low < 0.02 and point == pytest.approx(2.0, rel=0.01)
    # Rounds that drift together (a slow clock hits both sides of a round) still give ~2x...
    drift = [1.0 + 0.3 * (r % 3) for r in range(10)]
    b = [[x * d for x in row] for row, d in zip(steady_b, drift, strict=True)]
    c = [[x * d for x in row] for row, d in zip(steady_c, drift, strict=True)]
    assert paired_speedup_ci(b, c, rng)[0] == pytest.approx(2.0, rel=0.01)
    # ...while rounds whose ratios disagree give a wide interval that admits no false precision.
    noisy_c = [[x * (1.0 + 0.4 * (r % 2)) for x in row] for r, row in enumerate(steady_c)]
    _, low, high = paired_speedup_ci(steady_b, noisy_c, rng)
    assert low < 1.5 and high > 1.95


def test_paired_interval_rejects_unpaired_rounds() -> None:
    with pytest.raises(ValueError, match="same, non-zero number"):
        paired_speedup_ci([[1.0]], [], random.Random(0))
