"""Tests for harness.search.result: the publish gate refuses each way a speedup can be unproven, and
the search result's JSON and markdown forms."""

from __future__ import annotations

import pytest
from kevolve.harness.evaluation import CaseCheck, CaseTiming, Evaluation, Timing, Verdict
from kevolve.harness.search.result import (
    GateResult,
    SearchResult,
    checked_gate,
    publish_gate,
    render_markdown,
)
from kevolve.harness.search.status import StopKind

SHAPE = [4096, 1024]
CASE = "4096x1024 float16"
ROOFLINE_FLAG = (
    "shape [4096, 1024] float16: 3.10x the roofline — faster than the measured ceilings allow; "
    "the timing cannot be trusted"
)


def timing(
    speedup: float, low: float, high: float, *, shape: list[int] = SHAPE,
    roofline: float | None = None, baseline_ms: float | None = None,
) -> CaseTiming:  # fmt: skip
    """One timed case whose medians agree with `speedup` unless `baseline_ms` says otherwise."""
    candidate = Timing(n=50, median_ms=0.1, q10_ms=0.09, q90_ms=0.11, min_ms=0.08)
    base = 0.1 * speedup if baseline_ms is None else baseline_ms
    return CaseTiming(
        shape=shape,
        dtype="float16",
        candidate=candidate,
        baseline=Timing(n=50, median_ms=base, q10_ms=base, q90_ms=base, min_ms=base),
        speedup=speedup,
        speedup_ci=[low, high],
        roofline_fraction=roofline,
    )


def evaluation(*timings: CaseTiming, flags: tuple[str, ...] = (), timed: bool = True) -> Evaluation:
    """A correct evaluation checked on every timed shape (or on SHAPE when nothing is timed)."""
    shapes = [t.shape for t in timings] or [SHAPE]
    return Evaluation(
        verdict=Verdict.CORRECT,
        reason="correct on every case",
        problem="softmax",
        device="cuda" if timed else "cpu",
        timed=timed,
        checks=[CaseCheck(shape=s, dtype="float16", trials=5, passed=True) for s in shapes],
        timings=list(timings),
        flags=list(flags),
    )


FASTER = timing(1.30, 1.22, 1.38)


def test_a_candidate_faster_with_confidence_on_every_case_passes() -> None:
    best = evaluation(FASTER, timing(1.10, 1.04, 1.17, shape=[8192, 512]))
    assert publish_gate(best, is_seed=False) == GateResult(True, [])
    assert checked_gate(best, False, checked=[(SHAPE, "float16")], timed=[(SHAPE, "float16")]) == (
        GateResult(True, [])
    )


def test_an_interval_that_crosses_one_is_not_faster_with_confidence() -> None:
    gate = publish_gate(evaluation(FASTER, timing(1.01, 0.97, 1.05)), is_seed=False)
    assert gate == GateResult(
        False, [f"{CASE} is not faster with 95% confidence (1.010x [0.970-1.050])"]
    )


@pytest.mark.parametrize(
    ("low", "high", "passed"),
    [(1.0, 1.1, False), (1.0001, 1.1, True), (0.9, 1.0, False), (0.5, 0.9999, False)],
)
def test_the_interval_bounds_are_strict_at_one(low: float, high: float, passed: bool) -> None:
    gate = publish_gate(evaluation(timing(1.05, low, high)), is_seed=False, min_speedup=1.0)
    assert gate.passed is passed


@pytest.mark.parametrize(
    ("lows", "wanted", "passed"),
    [
        ((1.06, 1.2), 1.05, True),
        ((1.01, 1.04), 1.05, False),  # each case faster, the gain too small: a half-percent PR
        ((1.01, 1.20), 1.05, True),  # the geometric mean of the low ends decides
        ((1.10, 1.10), 1.20, False),  # a repo asking for more
    ],
)
def test_the_gain_must_reach_the_repos_minimum_at_the_low_end(
    lows: tuple[float, float], wanted: float, passed: bool
) -> None:
    shapes = ([4096, 1024], [8192, 8192])
    cases = [
        timing(low + 0.02, low, low + 0.05, shape=s) for low, s in zip(lows, shapes, strict=True)
    ]
    gate = publish_gate(evaluation(*cases), is_seed=False, min_speedup=wanted)
    assert gate.passed is passed
    if not passed:
        [reason] = gate.reasons
        assert reason.startswith("the gain is too small: ") and f"{wanted:.2f}x" in reason


def test_the_default_minimum_refuses_a_half_percent_gain() -> None:
    gate = publish_gate(evaluation(timing(1.005, 1.002, 1.008)), is_seed=False)
    assert not gate.passed and "below the 1.05x this repo asks for" in gate.reasons[0]


def test_a_slowdown_is_a_regression() -> None:
    gate = publish_gate(evaluation(timing(0.80, 0.75, 0.85)), is_seed=False)
    assert gate == GateResult(False, [f"{CASE} regressed: speedup 0.800x [0.750-0.850]"])


def test_an_upper_bound_of_exactly_one_is_unproven_not_a_regression() -> None:
    gate = publish_gate(evaluation(timing(0.95, 0.9, 1.0)), is_seed=False)
    assert gate.reasons == [f"{CASE} is not faster with 95% confidence (0.950x [0.900-1.000])"]


def test_a_case_without_an_interval_counts_as_a_regression() -> None:
    case = timing(1.30, 1.22, 1.38)
    case.speedup_ci = None
    gate = publish_gate(evaluation(case), is_seed=False)
    assert gate == GateResult(False, [f"{CASE} regressed: speedup 1.300x [0.000-0.000]"])


def test_an_implausible_timing_flag_refuses_an_otherwise_clear_win() -> None:
    gate = publish_gate(evaluation(FASTER, flags=(ROOFLINE_FLAG,)), is_seed=False)
    assert gate == GateResult(False, [f"implausible timing: {ROOFLINE_FLAG}"])


def test_every_flag_is_a_reason_of_its_own() -> None:
    hidden = "shape [4096, 1024] float16: calls take 0.900 ms longer by the wall clock"
    gate = publish_gate(evaluation(FASTER, flags=(ROOFLINE_FLAG, hidden)), is_seed=False)
    assert gate.reasons == [f"implausible timing: {ROOFLINE_FLAG}", f"implausible timing: {hidden}"]


def test_no_candidate_the_seed_and_no_timing_are_refused() -> None:
    nothing = GateResult(False, ["no correct candidate was found"])
    assert publish_gate(None, is_seed=False) == nothing
    assert publish_gate(evaluation(FASTER), is_seed=True) == GateResult(
        False, ["the best candidate is the repo's current kernel"]
    )
    assert publish_gate(evaluation(timed=False), is_seed=False) == GateResult(
        False, ["nothing was timed (no GPU): speed was not established"]
    )


def test_all_reasons_are_given_in_order() -> None:
    best = evaluation(timing(0.8, 0.7, 0.9), timing(1.01, 0.97, 1.05), flags=(ROOFLINE_FLAG,))
    assert publish_gate(best, is_seed=True).reasons == [
        "the best candidate is the repo's current kernel",
        f"{CASE} regressed: speedup 0.800x [0.700-0.900]",
        f"{CASE} is not faster with 95% confidence (1.010x [0.970-1.050])",
        f"implausible timing: {ROOFLINE_FLAG}",
    ]


def test_the_checked_gate_keeps_the_publish_gates_refusals() -> None:
    best = evaluation(timing(1.01, 0.97, 1.05), flags=(ROOFLINE_FLAG,))
    assert checked_gate(best, False) == publish_gate(best, False)
    assert checked_gate(None, False) == GateResult(False, ["no correct candidate was found"])


def test_the_checked_gate_refuses_a_verdict_or_check_that_is_not_clean() -> None:
    best = evaluation(FASTER)
    best.verdict = Verdict.INCORRECT
    best.checks.append(CaseCheck(shape=[64, 64], dtype="float32", trials=5, passed=False))
    assert checked_gate(best, False).reasons == [
        "the verdict is incorrect, not correct",
        "64x64 float32 failed its correctness check",
    ]
    best.checks = []
    assert checked_gate(best, False).reasons == [
        "the verdict is incorrect, not correct",
        "no case was checked for correctness",
    ]


def test_the_checked_gate_wants_each_named_case_checked_and_timed() -> None:
    best = evaluation(FASTER)
    other = ([64, 64], "float32")
    assert checked_gate(best, False, checked=[other], timed=[other]).reasons == [
        "64x64 float32 was not checked",
        "64x64 float32 was not timed",
    ]
    untimed = evaluation(timed=False)
    assert checked_gate(untimed, False, timed=[other]).reasons == [
        "nothing was timed (no GPU): speed was not established"
    ]
    nothing = evaluation()
    assert checked_gate(nothing, False).reasons == ["no case was timed"]


def test_the_checked_gate_refuses_figures_that_contradict_each_other() -> None:
    outside = timing(1.5, 1.1, 1.3)
    flat = timing(1.2, 1.1, 1.3, baseline_ms=0.1)
    roofline = timing(1.3, 1.22, 1.38, roofline=1.2)
    assert checked_gate(evaluation(outside, flat, roofline), False).reasons == [
        f"{CASE}: speedup 1.500x lies outside its interval",
        f"{CASE}: its medians (0.1 ms baseline, 0.1 ms candidate) show no speedup",
        f"implausible timing: {CASE} is faster than the roofline allows",
    ]


def test_the_checked_gate_accepts_figures_exactly_at_their_bounds() -> None:
    at_bounds = timing(1.1, 1.1, 1.3, roofline=1.0)
    assert checked_gate(evaluation(at_bounds, timing(1.3, 1.1, 1.3)), False) == GateResult(True, [])


def test_the_checked_gate_wants_a_baseline_and_an_interval() -> None:
    no_baseline = timing(1.3, 1.22, 1.38)
    no_baseline.baseline = None
    no_interval = timing(1.3, 1.22, 1.38)
    no_interval.speedup_ci = []
    reasons = checked_gate(evaluation(no_baseline, no_interval), False).reasons
    assert reasons[:2] == [f"{CASE} has no baseline timing to compare with"] * 2


def result(gate: GateResult, **fields: object) -> SearchResult:
    """A finished search over softmax whose best scored 1.234."""
    values: dict[str, object] = {
        "problem": "softmax", "device": "cuda", "timed": True, "evaluated": 12,
        "counts": {"incorrect": 2, "correct": 10}, "history": [], "hardware": None,
        "best": {"id": "abc123", "proposer": "llm", "generation": 3, "score": 1.234},
        "baseline": None, "llm": {"requests": 4, "prompt_tokens": 100, "completion_tokens": 20},
        "wall_s": 7200.0, "gpu_s": 1800.0, "gate": gate, "stop_reason": "budget spent",
        "stop": StopKind.BUDGET,
    } | fields  # fmt: skip
    return SearchResult(**values)  # type: ignore[arg-type]


def test_throughput_is_per_hour_of_wall_time_with_the_timing_share() -> None:
    assert result(GateResult(True)).throughput() == {
        "evaluations_per_hour": 6.0,
        "timing_fraction": 0.25,
    }
    assert result(GateResult(True), wall_s=0.0).throughput() == {
        "evaluations_per_hour": None,
        "timing_fraction": None,
    }


def test_the_json_form_has_a_stable_layout() -> None:
    gate = GateResult(False, ["the best candidate is the repo's current kernel"])
    assert result(gate, notes=["n"]).to_dict() == {
        "schema": 1,
        "problem": "softmax",
        "device": "cuda",
        "timed": True,
        "evaluated": 12,
        "counts": {"incorrect": 2, "correct": 10},
        "best": {"id": "abc123", "proposer": "llm", "generation": 3, "score": 1.234},
        "baseline": None,
        "history": [],
        "hardware": None,
        "llm": {"requests": 4, "prompt_tokens": 100, "completion_tokens": 20},
        "wall_s": 7200.0,
        "gpu_s": 1800.0,
        "throughput": {"evaluations_per_hour": 6.0, "timing_fraction": 0.25},
        "publish_gate": {"passed": False, "reasons": gate.reasons},
        "stop_reason": "budget spent",
        "stop": "budget",
        "notes": ["n"],
        "waiting": [],
        "lineage": [],
    }


def test_the_markdown_report_names_the_best_and_the_gate() -> None:
    gate = GateResult(False, ["first reason", "second reason"])
    assert render_markdown(result(gate, notes=["a note"])) == "\n".join([
        "# kevolve search: softmax",
        "",
        "- device: cuda (timed)",
        "- evaluated: 12 (correct 10, incorrect 2)",
        "- stopped: budget spent",
        "- wall time: 7200.0 s, GPU timing: 1800.0 s (6 evaluations per hour, timing 25% of "
        "wall time)",
        "- LLM: 4 requests, 120 tokens",
        "- best: `abc123` from llm (generation 3), score 1.234",
        "- publish gate: not passed: first reason; second reason",
        "- note: a note",
        "",
    ])  # fmt: skip


def test_the_markdown_report_of_an_untimed_search_without_a_best() -> None:
    text = render_markdown(result(GateResult(True), timed=False, best=None, wall_s=0.0, llm={}))
    assert "- device: cuda (correctness only)\n" in text
    assert "- wall time: 0.0 s, GPU timing: 1800.0 s (no rate)\n" in text
    assert "- LLM: 0 requests, 0 tokens\n" in text
    assert "- best:" not in text
    assert text.endswith("- publish gate: passed\n")


@pytest.mark.parametrize(
    ("evaluated", "wall_s", "gpu_s", "expected"),
    [
        (7, 1234.0, 1.0, {"evaluations_per_hour": 20.4, "timing_fraction": 0.0008}),
        (1000, 3600.0, 3600.0, {"evaluations_per_hour": 1000.0, "timing_fraction": 1.0}),
        (12, 0.5, 0.25, {"evaluations_per_hour": 86400.0, "timing_fraction": 0.5}),
    ],
)
def test_throughput_rounds_to_a_tenth_per_hour_and_four_places_of_share(
    evaluated: int, wall_s: float, gpu_s: float, expected: dict[str, float]
) -> None:
    searched = result(GateResult(True), evaluated=evaluated, wall_s=wall_s, gpu_s=gpu_s)
    assert searched.throughput() == expected


def test_the_timing_share_is_a_rounded_percentage() -> None:
    text = render_markdown(result(GateResult(True), wall_s=4000.0, gpu_s=3000.0))
    assert "(11 evaluations per hour, timing 75% of wall time)" in text


def test_the_checked_gate_passes_on_whether_the_best_is_the_seed() -> None:
    assert checked_gate(evaluation(FASTER), is_seed=True) == GateResult(
        False, ["the best candidate is the repo's current kernel"]
    )


def test_an_interval_with_extra_values_is_read_by_its_first_two() -> None:
    case = timing(1.30, 1.22, 1.38)
    case.speedup_ci = [1.22, 1.38, 0.95]
    assert checked_gate(evaluation(case), False) == GateResult(True, [])


def test_a_speedup_of_exactly_one_is_unproven_but_not_contradicted_by_flat_medians() -> None:
    flat = timing(1.0, 0.9, 1.1, baseline_ms=0.1)
    assert checked_gate(evaluation(flat), False).reasons == [
        f"{CASE} is not faster with 95% confidence (1.000x [0.900-1.100])"
    ]


def test_a_timed_case_without_a_speedup_is_a_reason_not_a_crash() -> None:
    case = timing(1.30, 1.22, 1.38)
    case.speedup = None
    gate = publish_gate(evaluation(case), is_seed=False)
    assert gate == GateResult(False, [f"{CASE} has no measured speedup"])
