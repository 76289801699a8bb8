"""Durable bot state: webhook deliveries and jobs, in SQLite by default or PostgreSQL by URL."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError

DeliveryStatus = Literal["pending", "done", "failed"]
Clock = Callable[[], datetime]

_metadata = sa.MetaData()

_deliveries = sa.Table(
    "deliveries",
    _metadata,
    sa.Column("delivery_id", sa.String(100), primary_key=True),
    sa.Column("event", sa.String(100), nullable=False),
    sa.Column("action", sa.String(100), nullable=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.Text, nullable=True),
)

_jobs = sa.Table(
    "jobs",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("repo", sa.String(200), nullable=False, index=True),
    sa.Column("sha", sa.String(64), nullable=False),
    sa.Column("op", sa.String(200), nullable=False),
    sa.Column("hardware", sa.String(200), nullable=False),
    sa.Column("trigger", sa.String(32), nullable=False),
    sa.Column("budget", sa.Integer, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("delivery_id", sa.String(100), nullable=True),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("installation_id", sa.BigInteger, nullable=True),
    sa.Column("comment_id", sa.BigInteger, nullable=True),  # the answer a comment job edits
    sa.Column("check_id", sa.BigInteger, nullable=True),
    sa.Column("pr_number", sa.Integer, nullable=True),
    sa.Column("candidate", sa.String(64), nullable=True),  # the published kernel's id
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
)


_LINKS = ("installation_id", "comment_id", "check_id", "pr_number", "candidate")


class StorageError(RuntimeError):
    """The database cannot be reached or used."""


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


@dataclass(frozen=True)
class Job:
    """One optimization job: an op of a repo at a commit, on one hardware label."""

    id: int
    repo: str
    sha: str
    op: str
    hardware: str
    trigger: str
    budget: int
    status: str
    created_at: datetime
    delivery_id: str | None
    result: Mapping[str, Any] | None
    installation_id: int | None = None
    comment_id: int | None = None
    check_id: int | None = None
    pr_number: int | None = None
    candidate: str | None = None
    updated_at: datetime | None = None


def _utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    """`moment` as UTC-aware (SQLite hands back naive datetimes)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Write-ahead logging so the webhook and the dispatcher thread do not block each other."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _engine(url: str) -> sa.Engine:
    """An engine for `url`; a ValueError naming the URL when it cannot be understood."""
    try:
        parsed = sa.make_url(url)
        if parsed.get_backend_name() == "sqlite":
            engine = sa.create_engine(parsed, connect_args={"check_same_thread": False})
            sa.event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return sa.create_engine(parsed, pool_pre_ping=True)
    except (ArgumentError, ImportError) as exc:
        raise ValueError(f"bad database URL {url!r}: {exc}") from exc


class Storage:
    """Deliveries and jobs in one SQL database; rows come back as frozen dataclasses."""

    def __init__(self, url: str, clock: Clock = _utc_now) -> None:
        self._engine = _engine(url)
        self._clock = clock
        self.url = self._engine.url.render_as_string(hide_password=True)

    def create_all(self) -> None:
        """Create the tables that do not exist yet."""
        try:
            _metadata.create_all(self._engine)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot open database {self.url}: {exc}") from exc

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
        row = {
            "delivery_id": delivery_id,
            "event": event,
            "action": action,
            "payload": json.dumps(payload),
            "received_at": self._clock(),
            "status": "pending",
            "attempts": 0,
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.insert(_deliveries).values(row))
        except IntegrityError:
            return False
        return True

    def pending_deliveries(self, limit: int = 100) -> list[Delivery]:
        """Up to `limit` deliveries not processed yet, oldest first."""
        query = (
            sa.select(_deliveries)
            .where(_deliveries.c.status == "pending")
            .order_by(_deliveries.c.received_at, _deliveries.c.delivery_id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [_delivery(row._mapping) for row in conn.execute(query)]

    def delivery(self, delivery_id: str) -> Delivery | None:
        """The stored delivery with that id, if any."""
        query = sa.select(_deliveries).where(_deliveries.c.delivery_id == delivery_id)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _delivery(row._mapping)

    def mark_delivery(
        self, delivery_id: str, status: DeliveryStatus, error: str | None = None
    ) -> None:
        """Record the outcome of one processing attempt."""
        change = (
            sa.update(_deliveries)
            .where(_deliveries.c.delivery_id == delivery_id)
            .values(status=status, error=error, attempts=_deliveries.c.attempts + 1)
        )
        with self._engine.begin() as conn:
            conn.execute(change)

    def add_job(
        self,
        repo: str,
        sha: str,
        op: str,
        hardware: str,
        trigger: str,
        budget: int,
        delivery_id: str | None = None,
        status: str = "queued",
        **links: int | str | None,
    ) -> int:
        """Store a new job; its id. `links`: installation_id, comment_id, check_id, ..."""
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
        }
        with self._engine.begin() as conn:
            key = conn.execute(sa.insert(_jobs).values(row)).inserted_primary_key
        assert key is not None
        return int(key[0])

    def set_job_status(
        self,
        job_id: int,
        status: str,
        result: Mapping[str, Any] | None = None,
        **links: int | str | None,
    ) -> None:
        """Change a job's status and, when given, replace its result and links."""
        values: dict[str, Any] = {"status": status, "updated_at": self._clock(), **links}
        if result is not None:
            values["result"] = json.dumps(result)
        with self._engine.begin() as conn:
            conn.execute(sa.update(_jobs).where(_jobs.c.id == job_id).values(values))

    def link_job(self, job_id: int, **links: int | str | None) -> None:
        """Record where a job shows itself: its check run, answer comment or pull request."""
        with self._engine.begin() as conn:
            conn.execute(sa.update(_jobs).where(_jobs.c.id == job_id).values(links))

    def job(self, job_id: int) -> Job | None:
        """The job with that id, if any."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_jobs).where(_jobs.c.id == job_id)).first()
        return None if row is None else _job(row._mapping)

    def claim_job(self) -> Job | None:
        """Move the oldest queued job to `running` and return it; None when none is queued.

        The conditional update makes a claim atomic: two workers never run the same job.
        """
        while True:
            with self._engine.connect() as conn:
                first = conn.execute(
                    sa.select(_jobs.c.id)
                    .where(_jobs.c.status == "queued")
                    .order_by(_jobs.c.id)
                    .limit(1)
                ).first()
            if first is None:
                return None
            claim = (
                sa.update(_jobs)
                .where(_jobs.c.id == first[0], _jobs.c.status == "queued")
                .values(status="running", updated_at=self._clock())
            )
            with self._engine.begin() as conn:
                if conn.execute(claim).rowcount == 1:
                    return self.job(int(first[0]))

    def requeue_running(self) -> int:
        """Put jobs a stopped bot left `running` back in the queue; how many."""
        change = sa.update(_jobs).where(_jobs.c.status == "running").values(status="queued")
        with self._engine.begin() as conn:
            return int(conn.execute(change).rowcount)

    def jobs(self, repo: str | None = None) -> list[Job]:
        """Every job, or those of one repo, in the order they were added."""
        query = sa.select(_jobs).order_by(_jobs.c.id)
        if repo is not None:
            query = query.where(_jobs.c.repo == repo)
        with self._engine.connect() as conn:
            return [_job(row._mapping) for row in conn.execute(query)]


def _delivery(row: RowMapping) -> Delivery:
    """A delivery row as a dataclass."""
    return Delivery(
        delivery_id=row["delivery_id"],
        event=row["event"],
        action=row["action"],
        payload=json.loads(row["payload"]),
        received_at=_aware(row["received_at"]),
        status=row["status"],
        attempts=row["attempts"],
        error=row["error"],
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
        created_at=_aware(row["created_at"]),
        delivery_id=row["delivery_id"],
        result=None if result is None else json.loads(result),
        installation_id=row["installation_id"],
        comment_id=row["comment_id"],
        check_id=row["check_id"],
        pr_number=row["pr_number"],
        candidate=row["candidate"],
        updated_at=_aware(row["updated_at"]) if row["updated_at"] else None,
    )
