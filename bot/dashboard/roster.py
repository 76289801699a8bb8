"""The fleet page: hardware labels, runners and their runs, jobs waiting or running, failures.

Read from the bot's database: the labels the fleet poller saw per repo, each dispatch's run on
GitHub Actions (`job_runs`), the jobs, and the deliveries whose handling failed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from kevolve.bot.database import deliveries_table, job_runs_table, jobs_table, runner_labels_table
from kevolve.bot.jobrecord import Job, JobStatus
from kevolve.bot.storage import Storage

ENDED_BADLY = (JobStatus.FAILED, JobStatus.CANCELLED)
RECENT = 50  # failed jobs, runs and deliveries shown


@dataclass(frozen=True)
class LabelSeen:
    """A runner label first seen on a repo."""

    repo: str
    label: str
    seen_at: datetime


@dataclass(frozen=True)
class RunRow:
    """One dispatch of a job's op to a self-hosted runner, and how its run went."""

    job_id: int
    repo: str
    op: str
    hardware: str
    attempt: int
    run_id: int | None
    status: str
    conclusion: str | None
    runner: str | None
    updated_at: datetime


@dataclass(frozen=True)
class RunnerRow:
    """A runner by name, from the runs it took."""

    name: str
    labels: tuple[str, ...]  # the hardware labels of the jobs it ran
    runs: int
    last_status: str
    last_seen: datetime


@dataclass(frozen=True)
class FailedDelivery:
    """A webhook delivery whose handling failed, and why."""

    delivery_id: str
    event: str
    repo: str | None
    error: str
    attempts: int
    received_at: datetime


@dataclass
class Fleet:
    """Everything the fleet page shows."""

    bot_labels: tuple[str, ...]
    labels: list[LabelSeen]
    runners: list[RunnerRow]
    runs: list[RunRow]
    active: list[Job]
    recent: list[Job]  # ended, newest first
    failed: list[Job]
    deliveries: list[FailedDelivery]


def fleet(storage: Storage, bot_labels: Sequence[str], visible: set[str] | None) -> Fleet:
    """The fleet as the database knows it; only repos in `visible` (None: every repo)."""
    jobs = [j for j in storage.jobs() if visible is None or j.repo in visible]
    runs = _runs(storage.engine, visible)
    return Fleet(
        bot_labels=tuple(bot_labels),
        labels=_labels(storage.engine, visible),
        runners=_runners(runs),
        runs=runs[:RECENT],
        active=[j for j in jobs if j.status.active],
        recent=[j for j in reversed(jobs) if not j.status.active][:RECENT],
        failed=[j for j in reversed(jobs) if j.status in ENDED_BADLY][:RECENT],
        deliveries=_deliveries(storage.engine, visible),
    )


def _labels(engine: sa.Engine, visible: set[str] | None) -> list[LabelSeen]:
    """Runner labels seen per repo, newest first."""
    t = runner_labels_table.c
    query = sa.select(t.repo, t.label, t.seen_at).order_by(t.seen_at.desc())
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        LabelSeen(str(repo), str(label), _aware(seen))
        for repo, label, seen in rows
        if visible is None or repo in visible
    ]


def _runs(engine: sa.Engine, visible: set[str] | None) -> list[RunRow]:
    """Every dispatch with its job's repo, newest first."""
    r, j = job_runs_table.c, jobs_table.c
    query = (
        sa.select(r.job_id, j.repo, r.op, j.hardware, r.attempt, r.run_id, r.status)
        .add_columns(r.conclusion, r.runner_name, r.updated_at)
        .join_from(job_runs_table, jobs_table, r.job_id == j.id)
        .order_by(r.updated_at.desc())
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [_run(tuple(row)) for row in rows if visible is None or row[1] in visible]


def _run(row: Sequence[Any]) -> RunRow:
    """A `job_runs` row joined with its job, as a RunRow."""
    job_id, repo, op, hardware, attempt, run_id, status, conclusion, runner, updated = row
    return RunRow(
        job_id=int(job_id),
        repo=str(repo),
        op=str(op),
        hardware=str(hardware),
        attempt=int(attempt),
        run_id=None if run_id is None else int(run_id),
        status=str(status),
        conclusion=conclusion,
        runner=runner,
        updated_at=_aware(updated),
    )


def _runners(runs: Sequence[RunRow]) -> list[RunnerRow]:
    """The runners named by runs (newest run first), with the labels they served."""
    named: dict[str, list[RunRow]] = {}
    for run in runs:
        if run.runner:
            named.setdefault(run.runner, []).append(run)
    return [
        RunnerRow(
            name,
            tuple(sorted({r.hardware for r in taken})),
            len(taken),
            taken[0].conclusion or taken[0].status,
            taken[0].updated_at,
        )
        for name, taken in sorted(named.items())
    ]


def _deliveries(engine: sa.Engine, visible: set[str] | None) -> list[FailedDelivery]:
    """The newest failed deliveries; with `visible`, only those of a visible repo."""
    d = deliveries_table.c
    query = (
        sa.select(d.delivery_id, d.event, d.payload, d.error, d.attempts, d.received_at)
        .where(d.status == "failed")
        .order_by(d.received_at.desc())
        .limit(RECENT * 4)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    found = []
    for delivery_id, event, payload, error, attempts, received in rows:
        repo = _repo_of(payload)
        if visible is not None and repo not in visible:
            continue
        failed = FailedDelivery(
            str(delivery_id), str(event), repo, str(error or ""), int(attempts), _aware(received)
        )
        found.append(failed)
    return found[:RECENT]


def _repo_of(payload: str) -> str | None:
    """The `repository.full_name` a webhook payload names, if any."""
    try:
        name = json.loads(payload).get("repository", {}).get("full_name")
    except (ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None


def _aware(moment: datetime) -> datetime:
    """`moment` as UTC-aware (SQLite hands back naive datetimes)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
