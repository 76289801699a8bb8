"""Tests for `bot.pull_store`: closed pull requests in their own table, on SQLite and a real
PostgreSQL alike; the pseudo-jobs an earlier version stored for them moved there on start."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from kevolve.bot.jobrecord import JobStatus, Trigger
from kevolve.bot.pull_store import ClosedPull, PullOutcome, PullStore, rejected_kernels
from kevolve.bot.storage import Storage, StorageError

from tests.bot.old_schema import OLD, OLD_JOBS

REPO = "acme/kernels"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MERGED, REJECTED = PullOutcome.MERGED, PullOutcome.REJECTED


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def closed(number: int, outcome: PullOutcome, hours: int, **fields: Any) -> ClosedPull:
    """A close of pull request `number` of REPO (softmax on h100 unless `fields` say)."""
    base: dict[str, Any] = {"op": "softmax", "hardware": "h100", "candidate": f"k{number}"}
    base.update(fields)
    return ClosedPull(
        REPO, number, sha="a" * 40, outcome=outcome, closed_at=at(hours), delivery_id=None, **base
    )


@pytest.fixture
def store(database_url: str) -> Iterator[PullStore]:
    storage = Storage(database_url)
    storage.create_all()
    yield PullStore(storage.engine)
    storage.close()


def test_closes_come_back_in_the_order_they_happened(store: PullStore) -> None:
    later, earlier = closed(5, MERGED, 2, op="rmsnorm"), closed(3, REJECTED, 1)
    store.record(later)
    store.record(earlier)
    store.record(replace(closed(9, REJECTED, 0, candidate=None), repo="other/repo"))
    assert store.closed(REPO) == [earlier, later]
    assert [p.repo for p in store.closed()] == ["other/repo", REPO, REPO]


def test_the_latest_close_of_a_pull_request_stands(store: PullStore) -> None:
    store.record(closed(3, REJECTED, 2))
    store.record(closed(3, MERGED, 1))  # an earlier close, delivered late: it changes nothing
    assert [p.outcome for p in store.closed(REPO)] == [REJECTED]
    store.record(closed(3, MERGED, 3, candidate="k3-again"))  # reopened, then merged
    assert store.closed(REPO) == [closed(3, MERGED, 3, candidate="k3-again")]


def test_rejected_kernels_are_those_of_the_op_closed_unmerged() -> None:
    pulls = [
        closed(1, REJECTED, 0),
        closed(2, REJECTED, 0, hardware="a10g", candidate="k2"),
        closed(3, MERGED, 0, candidate="k3"),
        closed(4, REJECTED, 0, op="rmsnorm"),
        closed(5, REJECTED, 0, candidate=None),  # its kernel was never known
    ]
    assert rejected_kernels(pulls, "softmax") == {("h100", "k1"), ("a10g", "k2")}


def _pseudo(number: int, trigger: str, hours: int, **fields: Any) -> dict[str, Any]:
    """A pseudo-job row as the earlier version stored it for a closed pull request."""
    row = {"repo": REPO, "sha": "b" * 40, "op": "softmax", "hardware": "h100", "budget": 0}
    row.update(trigger=trigger, status="done", created_at=at(hours), pr_number=number)
    row.update(delivery_id=f"closed-{number}-{hours}", candidate=f"k{number}", **fields)
    return row


def _old_database(url: str) -> None:
    """The earlier version's tables with two real jobs and four pseudo-jobs, one of them for
    a pull request closed unmerged, reopened and merged later."""
    job = {"repo": REPO, "sha": "c" * 40, "op": "softmax", "hardware": "h100", "budget": 20}
    rows = [
        {**job, "trigger": "comment", "status": "done", "created_at": at(0)},
        _pseudo(3, "rejected", 1),
        _pseudo(5, "merged", 2, op="rmsnorm", hardware="a10g"),
        _pseudo(3, "merged", 3),
        _pseudo(7, "rejected", 4, hardware="a10g"),
        {**job, "trigger": "benchmark", "budget": 0, "status": "queued", "created_at": at(5)},
    ]
    engine = sa.create_engine(url)
    try:
        OLD.create_all(engine)
        with engine.begin() as conn:
            for row in rows:  # one by one: their columns differ
                conn.execute(sa.insert(OLD_JOBS).values(row))
    finally:
        engine.dispose()


def test_an_earlier_versions_pseudo_jobs_move_to_their_table_on_start(database_url: str) -> None:
    _old_database(database_url)
    storage = Storage(database_url)
    try:
        storage.create_all()
        jobs = storage.jobs()
        assert [(j.trigger, j.status, j.budget) for j in jobs] == [
            (Trigger.COMMENT, JobStatus.DONE, 20),
            (Trigger.BENCHMARK, JobStatus.QUEUED, 0),
        ]
        store = PullStore(storage.engine)
        moved = [
            ClosedPull(REPO, 5, "rmsnorm", "a10g", "b" * 40, "k5", MERGED, at(2), "closed-5-2"),
            ClosedPull(REPO, 3, "softmax", "h100", "b" * 40, "k3", MERGED, at(3), "closed-3-3"),
            ClosedPull(REPO, 7, "softmax", "a10g", "b" * 40, "k7", REJECTED, at(4), "closed-7-4"),
        ]
        assert store.closed(REPO) == moved
        assert rejected_kernels(moved, "softmax") == {("a10g", "k7")}  # 3 was merged in the end
        storage.create_all()  # a second start, or a second process, moves nothing twice
        assert storage.jobs() == jobs and store.closed(REPO) == moved
        # The benchmark an earlier version queued with budget 0 runs as one now.
        assert jobs[1].trigger.evaluations(jobs[1].budget) == 1
    finally:
        storage.close()


def test_a_pseudo_job_left_unmigrated_is_refused_with_the_fix(database_url: str) -> None:
    storage = Storage(database_url)
    try:
        storage.create_all()
        row = {"repo": REPO, "sha": "b" * 40, "op": "softmax", "hardware": "h100", "budget": 0}
        row.update(trigger="merged", status="done", created_at=T0)
        with storage.engine.begin() as conn:  # as an earlier version still running writes it
            conn.execute(sa.text(_INSERT), row)
        with pytest.raises(StorageError, match=r"'merged' is no Trigger this kevolve knows.*start"):
            storage.jobs()
    finally:
        storage.close()


_INSERT = (
    "INSERT INTO jobs (repo, sha, op, hardware, trigger, budget, status, created_at) "
    "VALUES (:repo, :sha, :op, :hardware, :trigger, :budget, :status, :created_at)"
)
