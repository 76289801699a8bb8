"""Tests for `harness.stats`: quantiles, summaries and bootstrap speedup intervals."""

from __future__ import annotations

import random

import pytest

from harness.evaluation import Timing
from harness.stats import median, quantile, speedup_ci, summarize


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


def _times(rng: random.Random, center: float, n: int) -> list[float]:
    """n positive times spread about 5% around `center`."""
    return [center * (1.0 + 0.05 * rng.gauss(0.0, 1.0)) for _ in range(n)]


def test_speedup_ci_contains_the_point_estimate() -> None:
    rng = random.Random(1)
    baseline, candidate = _times(rng, 2.0, 50), _times(rng, 1.0, 50)
    point, low, high = speedup_ci(baseline, candidate, random.Random(2))
    assert point == pytest.approx(median(baseline) / median(candidate))
    assert low <= point <= high


def test_speedup_ci_narrows_with_more_samples() -> None:
    rng = random.Random(3)
    _, low_few, high_few = speedup_ci(_times(rng, 2.0, 10), _times(rng, 1.0, 10), rng)
    _, low_many, high_many = speedup_ci(_times(rng, 2.0, 400), _times(rng, 1.0, 400), rng)
    assert high_many - low_many < (high_few - low_few) / 2


def test_speedup_ci_excludes_one_for_clearly_different_times() -> None:
    rng = random.Random(4)
    _, low, high = speedup_ci(_times(rng, 1.2, 40), _times(rng, 1.0, 40), rng)
    assert 1.0 < low < 1.2 < high


def test_speedup_ci_includes_one_for_identical_distributions() -> None:
    rng = random.Random(5)
    _, low, high = speedup_ci(_times(rng, 1.0, 40), _times(rng, 1.0, 40), rng)
    assert low < 1.0 < high


def test_speedup_ci_is_reproducible_with_the_same_seed() -> None:
    data = random.Random(6)
    baseline, candidate = _times(data, 1.5, 30), _times(data, 1.0, 30)
    first = speedup_ci(baseline, candidate, random.Random(7))
    assert speedup_ci(baseline, candidate, random.Random(7)) == first


@pytest.mark.parametrize(("baseline", "candidate"), [([], [1.0]), ([1.0], [0.0, 1.0])])
def test_speedup_ci_rejects_empty_or_nonpositive_times(
    baseline: list[float], candidate: list[float]
) -> None:
    with pytest.raises(ValueError):
        speedup_ci(baseline, candidate, random.Random(0))
