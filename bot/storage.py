"""Durable bot state: webhook deliveries and jobs, in SQLite by default or PostgreSQL by URL."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from kevolve.bot.database import (
    ACTIVE_CONDITION,
    StorageError,
    add_missing_columns,
    aware,
    deliveries_table,
    jobs_table,
    metadata,
    open_engine,
)
from kevolve.bot.jobrecord import ACTIVE_JOBS, Job, JobStatus, OpKernel, Trigger
from kevolve.bot.pull_store import move_pseudo_jobs
from kevolve.bot.recorder import DeliveryRecorder, NewDelivery, installation_in
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

__all__ = [
    "Delivery",
    "DeliveryStatus",
    "Job",
    "JobStatus",
    "Outcome",
    "Storage",
    "StorageError",
    "Trigger",
]

DeliveryStatus = Literal["pending", "done", "failed"]
Clock = Callable[[], datetime]

MAX_REASON = 4000  # characters of a failure's reason kept (a check run's summary can be long)
_LINKS = ("installation_id", "comment_id", "check_id", "requester")


@dataclass(frozen=True)
class Outcome:
    """The result of one processing attempt of a delivery."""

    delivery_id: str
    status: DeliveryStatus
    error: str | None = None
    retry_at: datetime | None = None  # pending again from then on (a failure to retry)


@dataclass(frozen=True)
class Delivery:
    """One stored webhook delivery."""

    delivery_id: str
    event: str
    action: str | None
    payload: Mapping[str, Any]
    received_at: datetime
    status: DeliveryStatus
    attempts: int
    error: str | None
    installation_id: int | None = None


def _utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Storage:
    """Deliveries and jobs in one SQL database; rows come back as frozen dataclasses."""

    def __init__(self, url: str, clock: Clock = _utc_now) -> None:
        self._engine = open_engine(url)
        self._clock = clock
        self.url = self._engine.url.render_as_string(hide_password=True)

    def create_all(self) -> None:
        """Create the tables that do not exist yet, add the columns that tables an earlier
        version created lack, and move its pseudo-jobs of closed pull requests to their table.

        A server and its worker may start together on a new database: when the other process
        created a table or added a column between the check and the change, the next attempt
        finds it there.
        """
        for _attempt in range(3):
            try:
                metadata.create_all(self._engine)
                add_missing_columns(self._engine)
                move_pseudo_jobs(self._engine)
                return
            except SQLAlchemyError as exc:
                error = exc
        raise StorageError(f"cannot open database {self.url}: {error}") from error

    def ping(self) -> bool:
        """Whether the database answers a trivial query."""
        try:
            with self._engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def close(self) -> None:
        """Release pooled connections."""
        self._engine.dispose()

    def record_delivery(
        self, delivery_id: str, event: str, action: str | None, payload: Mapping[str, Any]
    ) -> bool:
        """Store a new pending delivery; False when that delivery id is already stored (replay)."""
        recorder = self.recorder()
        try:
            text = json.dumps(payload)
            new = NewDelivery(delivery_id, event, action, text, installation_in(payload))
            return delivery_id in recorder.record([new])
        finally:
            recorder.close()

    def recorder(self) -> DeliveryRecorder:
        """A recorder of new deliveries with a connection of its own (for one thread)."""
        return DeliveryRecorder(self._engine, self._clock)

    def pending_deliveries(
        self, limit: int = 100, per_installation: int | None = None
    ) -> list[Delivery]:
        """Up to `limit` deliveries due now (not processed, or due for a retry), taking turns.

        The oldest of each installation comes first, then the second oldest of each, and so on:
        one installation's flood never holds another's delivery behind it. `per_installation`
        bounds how many of one installation come back.
        """
        table = deliveries_table
        turn = (
            sa.func.row_number()
            .over(
                partition_by=table.c.installation_id,
                order_by=(table.c.received_at, table.c.delivery_id),
            )
            .label("turn")
        )
        due = (
            sa.select(table, turn)
            .where(table.c.status == "pending")
            .where(sa.or_(table.c.next_try_at.is_(None), table.c.next_try_at <= self._clock()))
            .subquery()
        )
        query = sa.select(due).order_by(due.c.turn, due.c.received_at, due.c.delivery_id)
        if per_installation is not None:
            query = query.where(due.c.turn <= per_installation)
        with self._engine.connect() as conn:
            return [_delivery(row._mapping) for row in conn.execute(query.limit(limit))]

    def next_retry(self) -> datetime | None:
        """When the soonest delivery waiting for a retry is due; None when none waits."""
        query = sa.select(sa.func.min(deliveries_table.c.next_try_at)).where(
            deliveries_table.c.status == "pending"
        )
        with self._engine.connect() as conn:
            soonest = conn.execute(query).scalar()
        return None if soonest is None else aware(soonest)

    def delivery(self, delivery_id: str) -> Delivery | None:
        """The stored delivery with that id, if any."""
        query = sa.select(deliveries_table).where(deliveries_table.c.delivery_id == delivery_id)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _delivery(row._mapping)

    def mark_delivery(
        self, delivery_id: str, status: DeliveryStatus, error: str | None = None
    ) -> None:
        """Record the outcome of one processing attempt."""
        self.mark_deliveries([Outcome(delivery_id, status, error)])

    def mark_deliveries(self, outcomes: Sequence[Outcome]) -> None:
        """Record the outcomes of several processing attempts in one transaction."""
        if not outcomes:
            return
        change = (
            sa.update(deliveries_table)
            .where(deliveries_table.c.delivery_id == sa.bindparam("key"))
            .values(
                status=sa.bindparam("new_status"),
                error=sa.bindparam("new_error"),
                next_try_at=sa.bindparam("retry_at"),
                attempts=deliveries_table.c.attempts + 1,
            )
        )
        rows = [
            {
                "key": o.delivery_id,
                "new_status": o.status,
                "new_error": o.error,
                "retry_at": o.retry_at,
            }
            for o in outcomes
        ]
        with self._engine.begin() as conn:
            conn.execute(change, rows)

    def failed_deliveries(self) -> dict[str, int]:
        """How many deliveries failed, by event; a StorageError when the database is down."""
        query = (
            sa.select(deliveries_table.c.event, sa.func.count())
            .where(deliveries_table.c.status == "failed")
            .group_by(deliveries_table.c.event)
        )
        try:
            with self._engine.connect() as conn:
                return {str(event): int(count) for event, count in conn.execute(query)}
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot read {self.url}: {exc}") from exc

    def add_job(
        self,
        repo: str,
        sha: str,
        op: str,
        hardware: str,
        trigger: Trigger,
        budget: int,
        delivery_id: str | None = None,
        status: JobStatus = JobStatus.QUEUED,
        kernels: tuple[OpKernel, ...] | None = None,
        **links: int | str | None,
    ) -> int:
        """Store a new job; its id. `kernels`: what it is about, from the config at `sha` (None:
        recorded when it starts); `links`: installation_id, comment_id, check_id, ...

        A job for the same (repo, sha, op, hardware, trigger) as one new, queued or running is not
        stored again: the id is that job's (`place_job` tells the two apart).
        """
        return self.place_job(
            repo, sha, op, hardware, trigger, budget, delivery_id, status, kernels, **links
        )[0]

    def place_job(
        self,
        repo: str,
        sha: str,
        op: str,
        hardware: str,
        trigger: Trigger,
        budget: int,
        delivery_id: str | None = None,
        status: JobStatus = JobStatus.QUEUED,
        kernels: tuple[OpKernel, ...] | None = None,
        **links: int | str | None,
    ) -> tuple[int, bool]:
        """`add_job`'s (id, True) for a new job, or (the active job's id, False) when merged."""
        unknown = set(links) - set(_LINKS)
        if unknown:
            raise ValueError(f"add_job: unknown fields {sorted(unknown)}; use {_LINKS}")
        row = {
            **links,
            "repo": repo,
            "sha": sha,
            "op": op,
            "hardware": hardware,
            "trigger": trigger,
            "budget": budget,
            "status": status,
            "created_at": self._clock(),
            "delivery_id": delivery_id,
            "kernels": kernels,
        }
        with self._engine.begin() as conn:
            return insert_job(conn, row)

    def set_job_status(
        self,
        job_id: int,
        status: JobStatus,
        result: Mapping[str, Any] | None = None,
        reason: str | None = None,
        **links: int | str | None,
    ) -> None:
        """Change a job's status and, when given, replace its result, its reason (why it
        failed, capped at MAX_REASON characters) and links."""
        values: dict[str, Any] = {"status": status, "updated_at": self._clock(), **links}
        if result is not None:
            values["result"] = json.dumps(result)
        if reason is not None:
            values["reason"] = reason[:MAX_REASON]
        with self._engine.begin() as conn:
            conn.execute(sa.update(jobs_table).where(jobs_table.c.id == job_id).values(values))

    def link_job(self, job_id: int, **links: int | str | None) -> None:
        """Record where a job shows itself: its check run, answer comment or pull request."""
        with self._engine.begin() as conn:
            conn.execute(sa.update(jobs_table).where(jobs_table.c.id == job_id).values(links))

    def record_kernels(self, job_id: int, kernels: tuple[OpKernel, ...]) -> None:
        """Record what a job that was queued without them is about (its commit is fixed now)."""
        change = sa.update(jobs_table).where(
            jobs_table.c.id == job_id, jobs_table.c.kernels.is_(None)
        )
        with self._engine.begin() as conn:
            conn.execute(change.values(kernels=kernels))

    def job(self, job_id: int) -> Job | None:
        """The job with that id, if any."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(jobs_table).where(jobs_table.c.id == job_id)).first()
        return None if row is None else _job(row._mapping)

    def claim_job(self) -> Job | None:
        """Move the oldest queued job to `running` and return it; None when none is queued.

        The conditional update makes a claim atomic: two workers never run the same job.
        """
        while True:
            with self._engine.connect() as conn:
                first = conn.execute(
                    sa.select(jobs_table.c.id)
                    .where(jobs_table.c.status == JobStatus.QUEUED)
                    .order_by(jobs_table.c.id)
                    .limit(1)
                ).first()
            if first is None:
                return None
            claim = (
                sa.update(jobs_table)
                .where(jobs_table.c.id == first[0], jobs_table.c.status == JobStatus.QUEUED)
                .values(status=JobStatus.RUNNING, updated_at=self._clock())
            )
            with self._engine.begin() as conn:
                if conn.execute(claim).rowcount == 1:
                    return self.job(int(first[0]))

    def requeue_running(self) -> int:
        """Put jobs a stopped bot left `running` back in the queue; how many."""
        change = (
            sa.update(jobs_table)
            .where(jobs_table.c.status == JobStatus.RUNNING)
            .values(status=JobStatus.QUEUED)
        )
        with self._engine.begin() as conn:
            return int(conn.execute(change).rowcount)

    @property
    def engine(self) -> sa.Engine:
        """The engine, shared with the stores of other tables (`bot.board`)."""
        return self._engine

    def now(self) -> datetime:
        """The storage's clock (tests set it)."""
        return self._clock()

    def jobs(self, repo: str | None = None) -> list[Job]:
        """Every job, or those of one repo, in the order they were added."""
        query = sa.select(jobs_table).order_by(jobs_table.c.id)
        if repo is not None:
            query = query.where(jobs_table.c.repo == repo)
        with self._engine.connect() as conn:
            return [_job(row._mapping) for row in conn.execute(query)]


def insert_job(conn: sa.Connection, row: dict[str, Any]) -> tuple[int, bool]:
    """Insert a job row in the caller's transaction: (its id, True), or (the id of the active job
    with the same repo, sha, op, hardware and trigger, False) when the unique index merged it."""
    name, table = conn.dialect.name, jobs_table
    keys = (table.c.repo, table.c.sha, table.c.op, table.c.hardware, table.c.trigger)
    if name in ("sqlite", "postgresql"):
        insert = sqlite.insert if name == "sqlite" else postgresql.insert
        statement = (
            insert(table)
            .values(row)
            .on_conflict_do_nothing(index_elements=keys, index_where=sa.text(ACTIVE_CONDITION))
            .returning(table.c.id)
        )
        new = conn.execute(statement).scalar()
    else:
        try:
            with conn.begin_nested():
                key = conn.execute(sa.insert(table).values(row)).inserted_primary_key
                new = None if key is None else key[0]
        except IntegrityError:
            new = None
    if new is not None:
        return int(new), True
    existing = conn.execute(
        sa.select(table.c.id).where(
            *(column == row[column.name] for column in keys), table.c.status.in_(ACTIVE_JOBS)
        )
    ).scalar()
    if existing is None:  # the other job ended between the two statements: store this one
        return insert_job(conn, row)
    return int(existing), False


def _delivery(row: RowMapping) -> Delivery:
    """A delivery row as a dataclass."""
    return Delivery(
        delivery_id=row["delivery_id"],
        event=row["event"],
        action=row["action"],
        payload=json.loads(row["payload"]),
        received_at=aware(row["received_at"]),
        status=row["status"],
        attempts=row["attempts"],
        error=row["error"],
        installation_id=row["installation_id"],
    )


def _job(row: RowMapping) -> Job:
    """A job row as a dataclass."""
    result = row["result"]
    return Job(
        id=row["id"],
        repo=row["repo"],
        sha=row["sha"],
        op=row["op"],
        hardware=row["hardware"],
        trigger=row["trigger"],
        budget=row["budget"],
        status=row["status"],
        created_at=aware(row["created_at"]),
        delivery_id=row["delivery_id"],
        result=None if result is None else json.loads(result),
        installation_id=row["installation_id"],
        comment_id=row["comment_id"],
        check_id=row["check_id"],
        updated_at=aware(row["updated_at"]) if row["updated_at"] else None,
        requester=row["requester"],
        reason=row["reason"],
        kernels=row["kernels"],
    )
