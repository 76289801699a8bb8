"""Quotas on what people can ask of the bot: queued jobs per repo and per user, duplicate jobs
merged, and one refusal answer per user per hour; each decided in one database transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from kevolve.bot.database import jobs_table, refusals_table
from kevolve.bot.jobrecord import ACTIVE_JOBS, JobStatus, OpKernel, Trigger
from kevolve.bot.storage import insert_job

log = logging.getLogger(__name__)

Decision = Literal["queued", "merged", "repo_full", "user_full"]


@dataclass(frozen=True)
class QuotaLimits:
    """How much one comment, repo or person may ask for (settings, with these defaults)."""

    commands_per_comment: int = 5  # KEVOLVE_COMMANDS_PER_COMMENT
    queued_per_repo: int = 20  # KEVOLVE_QUEUED_PER_REPO: new, queued or running jobs
    queued_per_user: int = 10  # KEVOLVE_QUEUED_PER_USER: the same, asked by one person
    budget: int = 1000  # KEVOLVE_MAX_BUDGET: evaluations one command may ask for
    refusal_every_s: float = 3600.0  # one refusal answer per person in this many seconds


@dataclass(frozen=True)
class JobOrder:
    """One job a person asked for, before the quotas decide on it."""

    repo: str
    sha: str
    op: str
    hardware: str
    trigger: Trigger
    budget: int
    delivery_id: str
    requester: str
    installation_id: int | None
    comment_id: int | None
    status: JobStatus = JobStatus.QUEUED  # NEW: not claimable until its check run exists
    kernels: tuple[OpKernel, ...] | None = None  # None: recorded when it starts (see `Job`)


@dataclass(frozen=True)
class Admitted:
    """What became of a `JobOrder`: queued as a new job, merged into an active one, or refused."""

    decision: Decision
    job_id: int | None = None  # the new or the merged-into job


class Quotas:
    """Admits jobs and refusal answers against the limits, in the database the jobs live in."""

    def __init__(
        self, engine: sa.Engine, clock: Callable[[], datetime], limits: QuotaLimits
    ) -> None:
        self._engine, self._clock, self.limits = engine, clock, limits

    def admit(self, order: JobOrder) -> Admitted:
        """Queue `order` unless a job like it is active (merged) or a cap is reached (refused)."""
        with self._engine.begin() as conn:
            _serialize(conn, order.repo)
            same = conn.execute(
                sa.select(jobs_table.c.id).where(
                    jobs_table.c.repo == order.repo,
                    jobs_table.c.sha == order.sha,
                    jobs_table.c.op == order.op,
                    jobs_table.c.hardware == order.hardware,
                    jobs_table.c.trigger == order.trigger,
                    jobs_table.c.status.in_(ACTIVE_JOBS),
                )
            ).scalar()
            if same is not None:
                return Admitted("merged", int(same))
            if _active(conn, jobs_table.c.repo == order.repo) >= self.limits.queued_per_repo:
                return Admitted("repo_full")
            mine = jobs_table.c.requester == order.requester
            if _active(conn, mine) >= self.limits.queued_per_user:
                return Admitted("user_full")
            job_id, new = insert_job(conn, self._row(order))
        return Admitted("queued" if new else "merged", job_id)

    def answer_refusal(self, user: str, repo: str, delivery_id: str, reason: str) -> bool:
        """Record a refusal; whether to answer it (the person's first in `refusal_every_s`)."""
        now = self._clock()
        since = now - timedelta(seconds=self.limits.refusal_every_s)
        with self._engine.begin() as conn:
            answered = conn.execute(
                sa.select(sa.func.count()).where(
                    refusals_table.c.user == user,
                    refusals_table.c.answered.is_(True),
                    refusals_table.c.at > since,
                )
            ).scalar_one()
            answer = answered == 0
            row = {"user": user, "repo": repo, "delivery_id": delivery_id, "reason": reason}
            conn.execute(sa.insert(refusals_table).values(**row, answered=answer, at=now))
        if not answer:
            log.info("refusal of %s in %s recorded, not answered (%s)", user, repo, reason)
        return answer

    def refusals(self, user: str) -> tuple[int, int]:
        """(answered, recorded) refusals of `user`, all time."""
        query = sa.select(refusals_table.c.answered, sa.func.count()).where(
            refusals_table.c.user == user
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query.group_by(refusals_table.c.answered)).all()
        counts = {bool(answered): int(n) for answered, n in rows}
        return counts.get(True, 0), sum(counts.values())

    def _row(self, order: JobOrder) -> dict[str, object]:
        """The jobs-table row of an admitted order."""
        return {
            "repo": order.repo,
            "sha": order.sha,
            "op": order.op,
            "hardware": order.hardware,
            "trigger": order.trigger,
            "budget": order.budget,
            "status": order.status,
            "created_at": self._clock(),
            "delivery_id": order.delivery_id,
            "requester": order.requester,
            "installation_id": order.installation_id,
            "comment_id": order.comment_id,
            "kernels": order.kernels,
        }


def _active(conn: sa.Connection, where: sa.ColumnElement[bool]) -> int:
    """How many new, queued or running jobs match `where`."""
    query = sa.select(sa.func.count()).where(where, jobs_table.c.status.in_(ACTIVE_JOBS))
    return int(conn.execute(query).scalar_one())


def _serialize(conn: sa.Connection, repo: str) -> None:
    """Make the count-then-insert of one repo atomic across dispatchers.

    PostgreSQL: a transaction-scoped advisory lock on the repo. SQLite: the first write takes the
    database's single write lock, so an empty update does it before anything is counted.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(repo))))
    elif conn.dialect.name == "sqlite":
        conn.execute(sa.update(jobs_table).where(sa.false()).values(repo=jobs_table.c.repo))
