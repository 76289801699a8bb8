"""Closed pull requests: kevolve's pull requests that were merged (their kernel is the new
baseline) or closed unmerged (their kernel is not proposed again), in the bot's database.

One row per pull request; when one is reopened and closed again, the latest close stands. An
earlier version stored each close as a pseudo-job (trigger "merged" or "rejected", budget 0):
`move_pseudo_jobs` moves those rows here when the bot starts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from kevolve.bot.database import aware, pull_requests_table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping

log = logging.getLogger(__name__)


class PullOutcome(StrEnum):
    """How a kevolve pull request was closed."""

    MERGED = "merged"  # its kernel is the repo's now
    REJECTED = "rejected"  # closed unmerged: its kernel is not proposed again


@dataclass(frozen=True)
class ClosedPull:
    """One closed kevolve pull request: which op and hardware it was for, and how it ended."""

    repo: str
    number: int
    op: str
    hardware: str
    sha: str  # its head commit when it closed
    candidate: str | None  # the kernel it proposed last, from the jobs' proposals
    outcome: PullOutcome
    closed_at: datetime
    delivery_id: str | None = None  # the `pull_request` event that closed it


class PullStore:
    """The `pull_requests` table."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def record(self, pull: ClosedPull) -> None:
        """Store a close; a later one of the same pull request replaces it, an earlier not."""
        with self._engine.begin() as conn:
            _upsert(conn, [pull])

    def closed(self, repo: str | None = None) -> list[ClosedPull]:
        """Every closed pull request, or those of one repo, in the order they closed."""
        table = pull_requests_table
        query = sa.select(table).order_by(table.c.closed_at, table.c.repo, table.c.number)
        if repo is not None:
            query = query.where(table.c.repo == repo)
        with self._engine.connect() as conn:
            return [_pull(row._mapping) for row in conn.execute(query)]


def rejected_kernels(pulls: Iterable[ClosedPull], op: str) -> set[tuple[str, str]]:
    """The (hardware, candidate) of each kernel for `op` whose pull request was closed unmerged."""
    return {
        (p.hardware, p.candidate)
        for p in pulls
        if p.outcome is PullOutcome.REJECTED and p.op == op and p.candidate
    }


# The jobs table as an earlier version made it, as far as its pseudo-jobs need: plain text, so
# that the triggers this version no longer knows read back.
_OLD_JOBS = sa.table(
    "jobs",
    sa.column("id", sa.Integer),
    sa.column("repo", sa.String),
    sa.column("sha", sa.String),
    sa.column("op", sa.String),
    sa.column("hardware", sa.String),
    sa.column("trigger", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("delivery_id", sa.String),
    sa.column("pr_number", sa.Integer),
    sa.column("candidate", sa.String),
)
_PSEUDO_TRIGGERS = tuple(outcome.value for outcome in PullOutcome)


def move_pseudo_jobs(engine: sa.Engine) -> int:
    """Move the closed pull requests an earlier version stored as jobs into `pull_requests`
    and delete those jobs, in one transaction; how many jobs went. Two processes starting at
    once, or a second start, move nothing twice."""
    found = sa.inspect(engine)
    if not found.has_table("jobs"):
        return 0
    if not {"pr_number", "candidate"} <= {c["name"] for c in found.get_columns("jobs")}:
        return 0  # this version made the table: it never held a pseudo-job
    jobs = _OLD_JOBS.c
    query = sa.select(_OLD_JOBS).where(jobs.trigger.in_(_PSEUDO_TRIGGERS)).order_by(jobs.id)
    with engine.begin() as conn:
        rows = [row._mapping for row in conn.execute(query)]
        if not rows:
            return 0
        pulls = [_from_pseudo_job(row) for row in rows if row["pr_number"] is not None]
        if len(pulls) < len(rows):  # the earlier version always set it: none is expected
            dropped = len(rows) - len(pulls)
            log.warning("%d pseudo-jobs without a pull request number dropped", dropped)
        _upsert(conn, pulls)
        conn.execute(sa.delete(_OLD_JOBS).where(jobs.id.in_([row["id"] for row in rows])))
    log.info("moved %d closed pull requests from the jobs table to pull_requests", len(rows))
    return len(rows)


def _from_pseudo_job(row: RowMapping) -> ClosedPull:
    """A closed pull request from the pseudo-job an earlier version stored for it."""
    return ClosedPull(
        repo=row["repo"],
        number=int(row["pr_number"]),
        op=row["op"],
        hardware=row["hardware"],
        sha=row["sha"],
        candidate=row["candidate"],
        outcome=PullOutcome(row["trigger"]),
        closed_at=aware(row["created_at"]),
        delivery_id=row["delivery_id"],
    )


def _upsert(conn: sa.Connection, pulls: Sequence[ClosedPull]) -> None:
    """Insert each close, or replace the stored close of its pull request when it is no later.

    Of several closes of one pull request in `pulls`, the last stands (one statement may not
    touch a row twice)."""
    rows = list({(p.repo, p.number): _row(p) for p in pulls}.values())
    if not rows:
        return
    table, name = pull_requests_table, conn.dialect.name
    if name in ("sqlite", "postgresql"):
        insert = sqlite.insert if name == "sqlite" else postgresql.insert
        statement = insert(table)
        later = statement.excluded
        values = {column.name: later[column.name] for column in table.c if not column.primary_key}
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=[table.c.repo, table.c.number],
                set_=values,
                where=table.c.closed_at <= later.closed_at,
            ),
            rows,
        )
        return
    for row in rows:  # other databases: in the caller's transaction, one at a time
        keys = (table.c.repo == row["repo"], table.c.number == row["number"])
        stored = conn.execute(sa.select(table.c.closed_at).where(*keys)).scalar()
        if stored is None:
            conn.execute(sa.insert(table).values(row))
        elif aware(stored) <= row["closed_at"]:
            conn.execute(sa.update(table).where(*keys).values(row))


def _row(pull: ClosedPull) -> dict[str, Any]:
    """A close as a row of `pull_requests`."""
    return {**asdict(pull), "outcome": pull.outcome.value}


def _pull(row: RowMapping) -> ClosedPull:
    """A `pull_requests` row as a dataclass."""
    return ClosedPull(
        repo=row["repo"],
        number=row["number"],
        op=row["op"],
        hardware=row["hardware"],
        sha=row["sha"],
        candidate=row["candidate"],
        outcome=PullOutcome(row["outcome"]),
        closed_at=aware(row["closed_at"]),
        delivery_id=row["delivery_id"],
    )
