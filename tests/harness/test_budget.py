"""Tests for `harness.judge.budget`: a call's budget from the judge's own time, and its settings."""

from __future__ import annotations

import pytest
from kevolve.harness.evaluation import CallBudget
from kevolve.harness.judge.budget import TUNE_CONFIGS_CAP, Budget, Budgets

CASE = ((64, 257), "float16")
SETTINGS = CallBudget(floor_s=2.0, cpu_floor_s=30.0, factor=20.0, compile_s=60.0)


def budgets(timeout: float = 120.0, interpreter: bool = False) -> Budgets:
    return Budgets(SETTINGS, timeout, interpreter)


def test_a_call_gets_the_floor_plus_a_multiple_of_the_judges_own_time() -> None:
    b = budgets()
    b.observe(CASE, 0.050)
    assert b.calls(CASE, 1, first=False) == Budget(
        3.0,
        "1 call x (2 s + 20 x 50.0 ms, the judge's own time for the same inputs and references)",
    )
    assert b.calls(CASE, 13, first=False).seconds == 39.0
    assert b.calls(CASE, 13, first=False).why.startswith("13 calls x (2 s + 20 x 50.0 ms")


def test_the_least_of_the_judges_times_counts() -> None:
    b = budgets()
    for seconds in (0.5, 0.1, 0.3):  # the first trial's time carries first-call costs
        b.observe(CASE, seconds)
    assert b.calls(CASE, 1, first=False).seconds == 4.0


def test_a_first_call_not_compiled_ahead_gets_the_compile_allowance() -> None:
    b = budgets()
    b.observe(CASE, 0.0)
    first = b.calls(CASE, 2, first=True)
    assert first.seconds == 64.0
    assert first.why.endswith(" + 60 s to compile (nothing was compiled ahead)")


def test_a_first_call_compiled_ahead_gets_time_for_its_autotune_benchmarks_only() -> None:
    b = budgets()
    b.observe(CASE, 0.0)
    b.compiled_ahead(CASE, 8)
    tuned = b.calls(CASE, 1, first=True)
    assert tuned.seconds == 6.0 and tuned.why.endswith(" + 4 s to benchmark 8 autotune config(s)")
    b.compiled_ahead(CASE, 0)
    assert b.calls(CASE, 1, first=True) == b.calls(CASE, 1, first=False)


def test_a_call_that_returns_outputs_gets_their_bytes_at_the_transfer_rate() -> None:
    b = budgets()
    b.observe(CASE, 0.1, output_bytes=6 * 2**30)  # a 4096x393216 float32 output
    calls = b.calls(CASE, 1, first=False)
    returning = b.returning(calls, CASE)
    assert returning.seconds == calls.seconds + 24.0  # 6 GiB at 256 MiB/s
    assert returning.why == calls.why + " + 24 s to return 6.00 GiB of outputs"
    b.observe(CASE, 0.1, output_bytes=64 * 2**10)  # too little to matter: the budget as it was
    assert b.returning(calls, CASE) == calls
    assert budgets().returning(calls, CASE) == calls  # nothing observed: nothing known to add


def test_the_transfer_allowance_is_capped_by_the_timeout() -> None:
    b = budgets(timeout=20.0)
    b.observe(CASE, 0.1, output_bytes=6 * 2**30)
    assert b.returning(b.calls(CASE, 1, first=False), CASE) == Budget(
        20.0, "the evaluation's timeout (20 s)"
    )


def test_what_a_compile_pass_reports_is_capped() -> None:
    b = budgets(timeout=1e9)
    b.observe(CASE, 0.0)
    b.compiled_ahead(CASE, 10**9)  # the worker's word
    assert b.calls(CASE, 1, first=True).seconds == 2.0 + 60.0  # no more than compile_s
    assert b.tune_configs[CASE] == TUNE_CONFIGS_CAP
    b.compiled_ahead(CASE, -5)
    assert b.tune_configs[CASE] == 0


def test_the_timeout_stays_the_outer_bound() -> None:
    b = budgets(timeout=10.0)
    b.observe(CASE, 1.0)
    assert b.calls(CASE, 1, first=False) == Budget(10.0, "the evaluation's timeout (10 s)")
    assert b.ahead() == Budget(10.0, "the evaluation's timeout (10 s)")
    assert budgets(timeout=120.0).ahead() == Budget(60.0, "60 s to compile")


def test_a_case_the_judge_never_timed_gets_the_timeout() -> None:
    assert budgets().calls(CASE, 1, first=False) == Budget(
        120.0, "the evaluation's timeout (120 s)"
    )


def test_the_interpreter_has_its_own_floor() -> None:
    b = budgets(interpreter=True)
    b.observe(CASE, 0.0)
    assert b.calls(CASE, 1, first=False).seconds == 30.0


def test_more_time_for_a_named_purpose_is_still_capped() -> None:
    b = budgets(timeout=40.0)
    b.observe(CASE, 0.0)
    calls = b.calls(CASE, 2, first=False)
    assert b.plus(calls, 30.0, "for the profiler to start") == Budget(
        34.0, f"{calls.why} + 30 s for the profiler to start"
    )
    assert b.plus(calls, 40.0, "for more").seconds == 40.0


def test_settings_travel_as_data() -> None:
    settings = CallBudget(floor_s=1.5, preemptions=0, grace_s=0.0)
    assert CallBudget.from_dict(settings.to_dict()) == settings
    assert CallBudget.from_dict({}) == CallBudget()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"floor": 1.0}, "call budget: unknown setting(s) floor"),
        ({"floor_s": 0}, "call budget: floor_s must be more than zero seconds, got 0"),
        ({"factor": -1.0}, "call budget: factor must be more than zero seconds, got -1.0"),
        ({"compile_s": float("inf")}, "call budget: compile_s must be more than zero seconds"),
        ({"grace_s": "2"}, "call budget: grace_s must be zero or more seconds, got '2'"),
        ({"preemptions": True}, "call budget: preemptions must be zero or more yields, got True"),
        ({"preemptions": 1.5}, "call budget: preemptions must be zero or more yields, got 1.5"),
    ],
)
def test_bad_settings_are_refused_by_name(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        CallBudget.from_dict(data)
