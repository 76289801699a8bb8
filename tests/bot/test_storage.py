"""Tests for `bot.storage`, against a SQLite file and a real PostgreSQL server alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from kevolve.bot.jobrecord import JobStatus, OpKernel, Trigger
from kevolve.bot.storage import Outcome, Storage, StorageError

from tests.bot.old_schema import OLD, OLD_JOBS

START = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
PUSH = {"ref": "refs/heads/main", "after": "a" * 40, "repository": {"full_name": "o/r"}}


def ticking_clock() -> Callable[[], datetime]:
    """A clock that starts at START and advances one second per reading."""
    ticks = iter(range(10**6))
    return lambda: START + timedelta(seconds=next(ticks))


@pytest.fixture
def storage(database_url: str) -> Iterator[Storage]:
    """A storage on a fresh database of each backend, tables created."""
    store = Storage(database_url, clock=ticking_clock())
    store.create_all()
    yield store
    store.close()


def test_a_recorded_delivery_is_pending_with_its_payload_and_time(storage: Storage) -> None:
    assert storage.record_delivery("d-1", "push", None, {**PUSH, "note": "é ✓"})
    [delivery] = storage.pending_deliveries(10)
    assert delivery.delivery_id == "d-1"
    assert (delivery.event, delivery.action) == ("push", None)
    assert delivery.payload == {**PUSH, "note": "é ✓"}
    assert delivery.received_at == START
    assert (delivery.status, delivery.attempts, delivery.error) == ("pending", 0, None)


def test_a_replayed_delivery_id_is_refused_and_stored_once(storage: Storage) -> None:
    assert storage.record_delivery("d-1", "push", None, PUSH)
    assert not storage.record_delivery("d-1", "push", None, {"other": True})
    [delivery] = storage.pending_deliveries(10)
    assert delivery.payload == PUSH


def test_pending_deliveries_come_oldest_first_up_to_the_limit(storage: Storage) -> None:
    for name in ("c", "a", "b"):
        storage.record_delivery(name, "issue_comment", "created", {"n": name})
    assert [d.delivery_id for d in storage.pending_deliveries(10)] == ["c", "a", "b"]
    assert [d.delivery_id for d in storage.pending_deliveries(2)] == ["c", "a"]


def test_marked_deliveries_leave_the_queue_with_their_outcome(storage: Storage) -> None:
    storage.record_delivery("ok", "push", None, PUSH)
    storage.record_delivery("bad", "push", None, PUSH)
    storage.mark_delivery("ok", "done")
    storage.mark_delivery("bad", "failed", "RuntimeError: boom")
    assert storage.pending_deliveries(10) == []
    done, failed = storage.delivery("ok"), storage.delivery("bad")
    assert done is not None and (done.status, done.attempts, done.error) == ("done", 1, None)
    assert failed is not None and failed.status == "failed"
    assert (failed.attempts, failed.error) == (1, "RuntimeError: boom")
    assert storage.delivery("missing") is None


def test_jobs_are_stored_in_order_and_filtered_by_repo(storage: Storage) -> None:
    first = storage.add_job("o/r", "a" * 40, "softmax", "h100", "push", 50, delivery_id="d-1")
    second = storage.add_job("o/other", "b" * 40, "rmsnorm", "a10g", "comment", 10)
    assert second > first
    assert [j.id for j in storage.jobs()] == [first, second]
    [job] = storage.jobs(repo="o/r")
    assert (job.repo, job.sha, job.op, job.hardware) == ("o/r", "a" * 40, "softmax", "h100")
    assert (job.trigger, job.budget, job.status) == ("push", 50, "queued")
    assert (job.delivery_id, job.result) == ("d-1", None)
    assert job.created_at == START
    assert storage.jobs(repo="nobody/none") == []


def test_a_job_status_and_result_can_be_changed(storage: Storage) -> None:
    job_id = storage.add_job("o/r", "a" * 40, "softmax", "h100", "push", 50)
    storage.add_job("o/r", "a" * 40, "rmsnorm", "h100", "push", 50)
    storage.set_job_status(job_id, "running", {"comment_id": 7})
    storage.set_job_status(job_id, "cancelled")
    first, second = storage.jobs("o/r")
    assert (first.status, first.result) == ("cancelled", {"comment_id": 7})
    assert (second.status, second.result) == ("queued", None)


def test_state_survives_reopening_the_database(database_url: str) -> None:
    first = Storage(database_url, clock=ticking_clock())
    first.create_all()
    first.record_delivery("d-1", "push", None, PUSH)
    first.add_job("o/r", "a" * 40, "softmax", "h100", "push", 50)
    first.close()
    again = Storage(database_url)
    again.create_all()
    assert [d.delivery_id for d in again.pending_deliveries(10)] == ["d-1"]
    assert [j.op for j in again.jobs()] == ["softmax"]
    assert not again.record_delivery("d-1", "push", None, PUSH)
    again.close()


def test_ping_reports_a_reachable_database(storage: Storage) -> None:
    assert storage.ping()


def test_a_bad_url_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match="bad database URL 'nope://'"):
        Storage("nope://")


def test_a_job_like_an_active_one_merges_into_it_until_that_one_ends(storage: Storage) -> None:
    args = ("o/r", "a" * 40, "softmax", "h100", "push", 10)
    first, new = storage.place_job(*args)
    assert new
    assert storage.place_job(*args) == (first, False)
    assert storage.place_job("o/r", "a" * 40, "softmax", "h100", "benchmark", 0)[1]  # another op
    storage.set_job_status(first, "running")
    assert storage.add_job(*args) == first
    storage.set_job_status(first, "done")
    second, new = storage.place_job(*args)
    assert new and second != first
    assert [j.status for j in storage.jobs("o/r")] == ["done", "queued", "queued"]


def test_a_delivery_waiting_for_its_retry_is_not_pending_until_it_is_due(database_url: str) -> None:
    now = [START]
    store = Storage(database_url, clock=lambda: now[0])
    store.create_all()
    try:
        store.record_delivery("d-1", "push", None, PUSH)
        retry_at = START + timedelta(seconds=30)
        store.mark_deliveries([Outcome("d-1", "pending", "ConnectionError: 502", retry_at)])
        assert store.pending_deliveries() == []
        assert store.next_retry() == retry_at
        now[0] = retry_at
        [due] = store.pending_deliveries()
        assert (due.attempts, due.error) == (1, "ConnectionError: 502")
    finally:
        store.close()


def test_a_jobs_status_and_trigger_are_stored_as_the_text_earlier_versions_wrote(
    storage: Storage,
) -> None:
    job_id = storage.add_job("o/r", "a" * 40, "softmax", "h100", Trigger.COMMENT, 5)
    storage.set_job_status(job_id, JobStatus.RUNNING)
    query = sa.text("SELECT trigger, status FROM jobs WHERE id = :id")
    with storage.engine.connect() as conn:
        stored = tuple(conn.execute(query, {"id": job_id}).one())
    assert stored == ("comment", "running") and all(type(text) is str for text in stored)
    job = storage.job(job_id)
    assert job is not None and (job.trigger, job.status) == (Trigger.COMMENT, JobStatus.RUNNING)
    assert job.trigger is Trigger.COMMENT and job.status is JobStatus.RUNNING
    with pytest.raises(sa.exc.StatementError, match="'finished' is no JobStatus"):
        storage.set_job_status(job_id, "finished")  # type: ignore[arg-type]


SOFTMAX = OpKernel("softmax", "kernels/softmax.py")
RMSNORM = OpKernel("rmsnorm", "kernels/rmsnorm.py")


def test_a_job_keeps_the_kernel_files_it_was_queued_for(storage: Storage) -> None:
    kernels = (SOFTMAX, RMSNORM)
    job_id = storage.add_job("o/r", "a" * 40, "*", "h100", Trigger.PUSH, 5, kernels=kernels)
    job = storage.job(job_id)
    assert job is not None and job.kernels == kernels
    assert (job.kernel("rmsnorm"), job.kernel("matmul")) == ("kernels/rmsnorm.py", None)
    with storage.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT kernels FROM jobs")).scalar()
    assert stored == '[["softmax", "kernels/softmax.py"], ["rmsnorm", "kernels/rmsnorm.py"]]'
    storage.record_kernels(job_id, (OpKernel("softmax", "elsewhere.py"),))  # fixed once
    assert [j.kernels for j in storage.jobs()] == [kernels]


def test_a_job_queued_without_kernel_files_records_them_once(storage: Storage) -> None:
    job_id = storage.add_job("o/r", "refs/heads/main", "softmax", "h100", Trigger.COMMENT, 5)
    job = storage.job(job_id)
    assert job is not None and job.kernels is None and job.kernel("softmax") is None
    storage.record_kernels(job_id, (SOFTMAX,))
    storage.record_kernels(job_id, (OpKernel("softmax", "elsewhere.py"),))
    job = storage.job(job_id)
    assert job is not None and job.kernels == (SOFTMAX,)


def test_kernel_files_stored_by_something_else_are_refused_with_the_fix(storage: Storage) -> None:
    job_id = storage.add_job("o/r", "a" * 40, "softmax", "h100", Trigger.PUSH, 5)
    change = sa.text("UPDATE jobs SET kernels = :text WHERE id = :id")
    for text in ('{"softmax": "k.py"}', '[["softmax"]]', "[[1, 2]]", "not json"):
        with storage.engine.begin() as conn:
            conn.execute(change, {"text": text, "id": job_id})
        with pytest.raises(StorageError, match=r"jobs.kernels holds .* set it to NULL"):
            storage.job(job_id)


def test_an_earlier_versions_jobs_gain_kernel_files_not_recorded_on_start(
    database_url: str,
) -> None:
    engine = sa.create_engine(database_url)
    try:
        OLD.create_all(engine)
        row = {"repo": "o/r", "sha": "a" * 40, "op": "softmax", "hardware": "h100", "budget": 5}
        with engine.begin() as conn:
            conn.execute(
                sa.insert(OLD_JOBS).values(**row, trigger="push", status="queued", created_at=START)
            )
    finally:
        engine.dispose()
    storage = Storage(database_url)
    try:
        storage.create_all()
        columns = {c["name"] for c in sa.inspect(storage.engine).get_columns("jobs")}
        assert {"kernels", "reason"} <= columns
        [job] = storage.jobs()
        assert (job.op, job.status, job.kernels, job.kernel("softmax")) == (
            "softmax",
            JobStatus.QUEUED,
            None,
            None,
        )
        storage.record_kernels(job.id, (SOFTMAX,))
        storage.create_all()  # a second start adds nothing and keeps what was recorded
        assert [j.kernels for j in storage.jobs()] == [(SOFTMAX,)]
    finally:
        storage.close()
