"""What the fleet poller (`bot.fleet`) keeps between passes: runner labels seen per repo,
each repo's schedule mark and the broken config it last showed; in the bot's database."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from kevolve.bot.database import fleet_repos_table, jobs_table, runner_labels_table
from kevolve.bot.jobrecord import JobStatus, OpKernel, Trigger
from sqlalchemy.exc import IntegrityError

MAX_CRON = 200  # characters of a schedule stored (the column's size)


@dataclass(frozen=True)
class ScheduleMark:
    """A repo's schedule as the fleet poller last read it from its config, and when it last
    checked whether the schedule fired."""

    cron: str | None  # the expression; None: the config has no schedule (or was never read)
    checked: datetime | None


class FleetStore:
    """The fleet's tables, beside the jobs it queues."""

    def __init__(self, engine: sa.Engine, clock: Callable[[], datetime]) -> None:
        self._engine, self._clock = engine, clock

    def fleet_repos(self) -> list[tuple[str, int]]:
        """Each repo that has a job, with the installation its latest such job came through."""
        jobs = jobs_table.c
        latest = sa.select(sa.func.max(jobs.id)).where(jobs.installation_id.is_not(None))
        query = (
            sa.select(jobs.repo, jobs.installation_id)
            .where(jobs.id.in_(latest.group_by(jobs.repo)))
            .order_by(jobs.repo)
        )
        with self._engine.connect() as conn:
            return [(str(repo), int(installation)) for repo, installation in conn.execute(query)]

    def job_labels(self, repo: str) -> set[str]:
        """The hardware labels a repo's jobs ran on or wait for."""
        query = sa.select(jobs_table.c.hardware).where(jobs_table.c.repo == repo).distinct()
        with self._engine.connect() as conn:
            return {str(label) for (label,) in conn.execute(query)}

    def runner_labels(self, repo: str) -> set[str]:
        """The runner labels recorded as seen on a repo."""
        labels = runner_labels_table.c
        query = sa.select(labels.label).where(labels.repo == repo)
        with self._engine.connect() as conn:
            return {str(label) for (label,) in conn.execute(query)}

    def add_runner_label(
        self,
        repo: str,
        label: str,
        jobs: Sequence[tuple[str, str, Trigger, int, tuple[OpKernel, ...]]],
        installation_id: int | None,
    ) -> list[int] | None:
        """Record a runner label first seen on a repo and, in the same transaction, add `jobs`
        on it, each (sha, op, trigger, budget, kernels), with status NEW; their ids. None, and
        nothing added, when the label was recorded before (by another poller, or a restart)."""
        now = self._clock()
        seen = {"repo": repo, "label": label, "seen_at": now}
        rows = [
            {
                "repo": repo,
                "sha": sha,
                "op": op,
                "hardware": label,
                "trigger": trigger,
                "budget": budget,
                "status": JobStatus.NEW,
                "created_at": now,
                "installation_id": installation_id,
                "kernels": kernels,
            }
            for sha, op, trigger, budget, kernels in jobs
        ]
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.insert(runner_labels_table).values(seen))
                keys = [
                    conn.execute(sa.insert(jobs_table).values(r)).inserted_primary_key for r in rows
                ]
        except IntegrityError:
            return None
        return [int(key[0]) for key in keys if key is not None]

    def schedule_checked(self, repo: str) -> datetime | None:
        """When the fleet poller last checked the repo's schedule; None if never."""
        query = sa.select(fleet_repos_table.c.scheduled_at).where(fleet_repos_table.c.repo == repo)
        with self._engine.connect() as conn:
            found = conn.execute(query).scalar()
        return None if found is None else _aware(found)

    def schedule_mark(self, repo: str) -> ScheduleMark:
        """The repo's stored schedule and when it was last checked."""
        t = fleet_repos_table.c
        query = sa.select(t.schedule, t.scheduled_at).where(t.repo == repo)
        with self._engine.connect() as conn:
            found = conn.execute(query).first()
        if found is None:
            return ScheduleMark(None, None)
        cron, checked = found
        return ScheduleMark(cron, None if checked is None else _aware(checked))

    def note_schedule(self, repo: str, cron: str | None) -> None:
        """Store the schedule the repo's config holds now (None: none), where the web process
        reads it; written only when it changed."""
        cron = None if cron is None else cron[:MAX_CRON]
        if self.schedule_mark(repo).cron == cron:
            return
        self._fleet_repo(repo)
        change = (
            sa.update(fleet_repos_table)
            .where(fleet_repos_table.c.repo == repo)
            .values(schedule=cron)
        )
        with self._engine.begin() as conn:
            conn.execute(change)

    def claim_schedule(self, repo: str, previous: datetime | None, now: datetime) -> bool:
        """Move a repo's schedule mark from `previous` to `now`; False when another poller moved
        it first (so one tick queues its jobs once)."""
        self._fleet_repo(repo)
        mark = fleet_repos_table.c.scheduled_at
        same = mark.is_(None) if previous is None else mark == previous
        change = (
            sa.update(fleet_repos_table)
            .where(fleet_repos_table.c.repo == repo, same)
            .values(scheduled_at=now)
        )
        with self._engine.begin() as conn:
            return int(conn.execute(change).rowcount) == 1

    def shown_broken(self, repo: str) -> str | None:
        """The head commit whose broken config the fleet poller last showed, if any."""
        query = sa.select(fleet_repos_table.c.broken_sha).where(fleet_repos_table.c.repo == repo)
        with self._engine.connect() as conn:
            found = conn.execute(query).scalar()
        return None if found is None else str(found)

    def show_broken(self, repo: str, sha: str | None) -> None:
        """Remember that the config at `sha` was shown broken (None: the config reads again)."""
        self._fleet_repo(repo)
        change = (
            sa.update(fleet_repos_table)
            .where(fleet_repos_table.c.repo == repo)
            .values(broken_sha=sha)
        )
        with self._engine.begin() as conn:
            conn.execute(change)

    def _fleet_repo(self, repo: str) -> None:
        """Make sure the repo has a `fleet_repos` row."""
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.insert(fleet_repos_table).values(repo=repo))
        except IntegrityError:
            pass  # it was there already


def _aware(moment: datetime) -> datetime:
    """`moment` as UTC-aware (SQLite hands back naive datetimes)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
