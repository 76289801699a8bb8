"""The publish gate at its exact bounds: the cases mutation testing showed no other test pinned."""

from __future__ import annotations

from kevolve.harness.search.result import GateResult, checked_gate, publish_gate

from tests.harness.test_publish_gate import CASE, FASTER, SHAPE, evaluation, timing


def test_a_low_end_of_exactly_one_is_unproven_and_not_also_a_small_gain() -> None:
    """A case not faster with confidence is that one reason; its low end of 1.0 is no gain to
    average with the others."""
    gate = publish_gate(evaluation(timing(1.10, 1.0, 1.2)), is_seed=False)
    assert gate == GateResult(
        False, [f"{CASE} is not faster with 95% confidence (1.100x [1.000-1.200])"]
    )


def test_a_gain_exactly_at_the_repos_minimum_passes() -> None:
    best = evaluation(timing(1.30, 1.25, 1.35), timing(1.30, 1.25, 1.35, shape=[8192, 512]))
    assert publish_gate(best, is_seed=False, min_speedup=1.25) == GateResult(True, [])


def test_the_checked_gate_asks_for_the_repos_minimum_not_the_default() -> None:
    """FASTER is 1.22x at its low end: enough for the default 1.05x, not for a repo asking 1.3x."""
    best = evaluation(FASTER)
    cases = [(SHAPE, "float16")]
    assert checked_gate(best, False, cases, cases) == GateResult(True, [])
    gate = checked_gate(best, False, cases, cases, min_speedup=1.3)
    assert not gate.passed
    assert gate.reasons == [
        "the gain is too small: 1.220x at the low end of the 95% intervals (geometric mean over "
        "1 timed cases), below the 1.30x this repo asks for (min_speedup)"
    ]
