"""Which searches a schedule tick queues: stale, outdated, never run; never twice at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from kevolve.bot.schedule import Rerun, reruns
from kevolve.bot.storage import Job

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
_ids = iter(range(1, 1000))


def job(
    op: str,
    label: str = "h100",
    *,
    days_ago: float = 1,
    status: str = "done",
    trigger: str = "push",
    torch: str | None = "2.5.1",
) -> Job:
    """A job on `label`, last updated `days_ago`; done ones carry a result with a fingerprint."""
    at = NOW - timedelta(days=days_ago)
    hardware = {"torch": torch, "triton": "3.1.0"} if torch else None
    searched = {"problem": op, "device": "cuda", "timed": True, "evaluated": 5}
    result: dict[str, Any] = {"results": {op: {**searched, "hardware": hardware}}}
    done = status == "done" and op != "*"
    return Job(
        next(_ids), "o/r", "a" * 40, op, label, trigger, 5, status, at, None,
        result if done else None, updated_at=at,
    )  # fmt: skip


def test_fresh_current_results_are_left_alone() -> None:
    assert reruns(["softmax"], ["h100"], [job("softmax")], NOW, 7) == []


def test_a_stale_or_missing_search_is_due_on_each_label() -> None:
    jobs = [job("softmax", days_ago=8), job("softmax", "a100")]
    assert reruns(["softmax", "rmsnorm"], ["h100", "a100"], jobs, NOW, 7) == [
        Rerun("softmax", "h100", "its newest search is 8 days old (stale after 7)"),
        Rerun("rmsnorm", "h100", "it was never searched on this hardware"),
        Rerun("rmsnorm", "a100", "it was never searched on this hardware"),
    ]


def test_newer_versions_on_the_label_outdate_older_results() -> None:
    jobs = [job("softmax", days_ago=3, torch="2.4.0"), job("rmsnorm", days_ago=1)]
    [due] = reruns(["softmax", "rmsnorm"], ["h100"], jobs, NOW, 7)
    assert (due.op, due.label) == ("softmax", "h100")
    assert "now has torch 2.5.1" in due.reason and "ran on torch 2.4.0" in due.reason


def test_versions_elsewhere_or_unknown_change_nothing() -> None:
    jobs = [
        job("softmax", days_ago=3, torch="2.4.0"),
        job("rmsnorm", "a100", torch="2.6.0"),  # another label's runners
        job("rmsnorm", days_ago=1, torch=None),  # no fingerprint: nothing known
    ]
    assert reruns(["softmax"], ["h100"], jobs, NOW, 7) == []


def test_a_benchmark_tells_versions_but_is_not_a_search() -> None:
    jobs = [job("softmax", days_ago=9), job("softmax", trigger="benchmark", torch="2.6.0")]
    [due] = reruns(["softmax"], ["h100"], jobs, NOW, 7)
    assert due.reason == "its newest search is 9 days old (stale after 7)"


def test_ops_with_a_job_waiting_or_running_are_not_queued_again() -> None:
    jobs = [
        job("softmax", status="queued"),
        job("rmsnorm", status="running"),
        job("*", "a100", status="new"),
    ]
    assert reruns(["softmax", "rmsnorm"], ["h100", "a100"], jobs, NOW, 7) == []


def test_a_stored_result_that_does_not_read_still_counts_as_a_search_of_unknown_versions() -> None:
    unread = job("softmax", days_ago=2, torch="2.4.0")
    assert unread.result is not None
    unread.result["results"]["softmax"]["evaluated"] = "five"  # a record no reader takes
    jobs = [unread, job("rmsnorm", days_ago=1, torch="2.6.0")]
    assert reruns(["softmax"], ["h100"], jobs, NOW, 7) == []
