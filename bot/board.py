"""The run board: each dispatch of a job's op to GitHub Actions, how its run goes, its result.

The web process writes posted results here and the worker writes what `workflow_job` and
`workflow_run` webhooks say; the job worker's `ActionsRunner` reads it. All through the bot's
database, so the two processes need nothing else between them.

A run is matched to its dispatch by the run id the dispatch returned. A run the bot has no id for
yet (its first webhook beat the dispatch's answer, or GitHub gave none) is matched only by a
`workflow_run` of the dispatched workflow file, started by `workflow_dispatch`, whose name carries
the dispatch's tag (`bot.tokens.run_tag`): never by a name anyone can write.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from kevolve.bot.database import job_runs_table, job_tokens_table
from kevolve.bot.tokens import TAG_LENGTH, Grant
from kevolve.runners.actions import RunState
from sqlalchemy.exc import IntegrityError

# stored; spent: the token posted before; taken: another attempt's result came first; not
# dispatched: no such dispatch; unknown token: a valid signature the board never issued.
Posted = Literal["stored", "spent", "taken", "not dispatched", "unknown token"]

# The workflow names its run "kevolve job <id> <op> #<attempt> <tag>" (see kevolve-search.yml).
_NAME = re.compile(
    r"kevolve job ([0-9]{1,12}) ([A-Za-z0-9_-]{1,100}) #([0-9]{1,4}) "
    rf"([0-9a-f]{{{TAG_LENGTH}}})$"
)


def run_name(job_id: int, op: str, attempt: int, tag: str) -> str:
    """The name the workflow gives the run of one dispatch."""
    return f"kevolve job {job_id} {op} #{attempt} {tag}"


@dataclass(frozen=True)
class RunNews:
    """What one `workflow_job` or `workflow_run` webhook says of a run."""

    run_id: int
    name: str  # the run's display title (workflow_run) or the job's name (workflow_job)
    status: str
    conclusion: str | None = None
    runner_name: str | None = None
    path: str | None = None  # the workflow file (workflow_run only)
    event: str | None = None  # what started the run (workflow_run only)


@dataclass(frozen=True)
class TokenUse:
    """One issued token of a job: whether it posted, and the replays refused after."""

    op: str
    attempt: int
    spent_at: datetime | None
    replays: int


_RANK = {"dispatched": 0, "requested": 1, "pending": 1, "waiting": 1, "queued": 1}
_RANK |= {"in_progress": 2, "completed": 3}

_runs = job_runs_table.c
_tokens = job_tokens_table.c


class RunBoard:
    """Dispatches and their runs, in the `job_runs` table; their tokens in `job_tokens`."""

    def __init__(self, engine: sa.Engine, clock: Callable[[], datetime]) -> None:
        self._engine, self._clock = engine, clock

    def open(self, job_id: int, op: str, attempt: int) -> None:
        """Record a dispatch about to be made; again for the same attempt (a restarted job),
        start its run's news afresh but keep a result it posted."""
        now = self._clock()
        row = {
            "job_id": job_id,
            "op": op,
            "attempt": attempt,
            "run_id": None,
            "status": "dispatched",
            "dispatched_at": now,
            "updated_at": now,
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.insert(job_runs_table).values(row))
        except IntegrityError:  # a restarted job dispatching the same attempt again
            fresh = {"status": "dispatched", "run_id": None, "conclusion": None, "updated_at": now}
            change = (
                sa.update(job_runs_table)
                .where(*_dispatch(job_id, op, attempt))
                .values(runner_name=None, **fresh)
            )
            with self._engine.begin() as conn:
                conn.execute(change)

    def keep_token(self, grant: Grant, tag: str, workflow: str) -> None:
        """Record a token issued for a dispatch, with its run's tag and the workflow file."""
        row = {
            "nonce": grant.nonce,
            "job_id": grant.job_id,
            "op": grant.op,
            "attempt": grant.attempt,
            "tag": tag,
            "workflow": workflow,
            "issued_at": self._clock(),
            "replays": 0,
        }
        with self._engine.begin() as conn:
            conn.execute(sa.insert(job_tokens_table).values(row))

    def link(self, job_id: int, op: str, attempt: int, run_id: int) -> None:
        """Record the run id GitHub gave a dispatch."""
        change = (
            sa.update(job_runs_table).where(*_dispatch(job_id, op, attempt)).values(run_id=run_id)
        )
        with self._engine.begin() as conn:
            conn.execute(change)

    def state(self, job_id: int, op: str) -> RunState | None:
        """The latest dispatch of the op, with the result any of its attempts posted."""
        query = (
            sa.select(job_runs_table)
            .where(_runs.job_id == job_id, _runs.op == op)
            .order_by(_runs.attempt.desc())
        )
        with self._engine.connect() as conn:
            rows = [row._mapping for row in conn.execute(query)]
        if not rows:
            return None
        latest = rows[0]
        posted = next((r["result"] for r in rows if r["result"] is not None), None)
        return RunState(
            attempt=latest["attempt"],
            run_id=latest["run_id"],
            status=latest["status"],
            conclusion=latest["conclusion"],
            runner_name=latest["runner_name"],
            result=None if posted is None else json.loads(posted),
        )

    def post(self, grant: Grant, result: Mapping[str, Any]) -> Posted:
        """Spend the token and keep the op's first result; a spent token changes nothing but
        its replay count."""
        now = self._clock()
        with self._engine.begin() as conn:
            issued = conn.execute(sa.select(_tokens.nonce).where(_tokens.nonce == grant.nonce))
            if issued.first() is None:
                return "unknown token"
            spend = (
                sa.update(job_tokens_table)
                .where(_tokens.nonce == grant.nonce, _tokens.spent_at.is_(None))
                .values(spent_at=now)
            )
            if conn.execute(spend).rowcount != 1:
                replay = (
                    sa.update(job_tokens_table)
                    .where(_tokens.nonce == grant.nonce)
                    .values(replays=_tokens.replays + 1, replayed_at=now)
                )
                conn.execute(replay)
                return "spent"
            return _keep(conn, grant, result, now)

    def replayed(self, grant: Grant) -> bool:
        """Whether the token was spent already; if so the replay is counted."""
        replay = (
            sa.update(job_tokens_table)
            .where(_tokens.nonce == grant.nonce, _tokens.spent_at.is_not(None))
            .values(replays=_tokens.replays + 1, replayed_at=self._clock())
        )
        with self._engine.begin() as conn:
            return conn.execute(replay).rowcount == 1

    def token_uses(self, job_id: int) -> list[TokenUse]:
        """The tokens issued for a job's dispatches, oldest first."""
        query = (
            sa.select(_tokens.op, _tokens.attempt, _tokens.spent_at, _tokens.replays)
            .where(_tokens.job_id == job_id)
            .order_by(_tokens.issued_at)
        )
        with self._engine.connect() as conn:
            return [TokenUse(*row) for row in conn.execute(query)]

    def record(self, news: RunNews) -> bool:
        """Note what a workflow webhook says of a run; False when the run is none of ours.

        A late event never moves a run's status backwards.
        """
        if news.status not in _RANK:
            return False
        where = self._dispatch_of(news)
        if where is None:
            return False
        values: dict[str, Any] = {"status": news.status, "updated_at": self._clock()}
        if news.conclusion:
            values["conclusion"] = news.conclusion
        if news.runner_name:
            values["runner_name"] = news.runner_name
        behind = [s for s, rank in _RANK.items() if rank <= _RANK[news.status]]
        change = (
            sa.update(job_runs_table)
            .where(*where, _runs.status.in_(behind))
            .values(run_id=news.run_id, **values)
        )
        with self._engine.begin() as conn:
            conn.execute(change)
        return True

    def _dispatch_of(self, news: RunNews) -> list[sa.ColumnElement[bool]] | None:
        """The WHERE clause of the dispatch a run belongs to, or None."""
        with self._engine.connect() as conn:
            known = conn.execute(sa.select(_runs.job_id).where(_runs.run_id == news.run_id))
            if known.first() is not None:
                return [_runs.run_id == news.run_id]
            match = _NAME.search(news.name.strip())
            if match is None or news.event != "workflow_dispatch" or not news.path:
                return None
            job_id, op, attempt, tag = int(match[1]), match[2], int(match[3]), match[4]
            latest = conn.execute(
                sa.select(_tokens.tag, _tokens.workflow)
                .where(*_issued(job_id, op, attempt))
                .order_by(_tokens.issued_at.desc())
            ).first()
            if latest is None or latest.tag != tag or not _same_file(news.path, latest.workflow):
                return None
            # Only a dispatch still without its run: a tagged name never takes a run's place.
            where = [*_dispatch(job_id, op, attempt), _runs.run_id.is_(None)]
            unlinked = conn.execute(sa.select(_runs.job_id).where(*where)).first()
        return None if unlinked is None else where


def _keep(conn: sa.Connection, grant: Grant, result: Mapping[str, Any], now: datetime) -> Posted:
    """Store the result on its attempt's dispatch unless the op already has one."""
    rows = conn.execute(
        sa.select(_runs.attempt, _runs.result).where(
            _runs.job_id == grant.job_id, _runs.op == grant.op
        )
    ).all()
    if grant.attempt not in {row.attempt for row in rows}:
        return "not dispatched"
    if any(row.result is not None for row in rows):
        return "taken"
    change = (
        sa.update(job_runs_table)
        .where(*_dispatch(grant.job_id, grant.op, grant.attempt), _runs.result.is_(None))
        .values(result=json.dumps(result), updated_at=now)
    )
    return "stored" if conn.execute(change).rowcount == 1 else "taken"


def _dispatch(job_id: int, op: str, attempt: int) -> list[sa.ColumnElement[bool]]:
    return [_runs.job_id == job_id, _runs.op == op, _runs.attempt == attempt]


def _issued(job_id: int, op: str, attempt: int) -> list[sa.ColumnElement[bool]]:
    return [_tokens.job_id == job_id, _tokens.op == op, _tokens.attempt == attempt]


def _same_file(path: str, workflow: str) -> bool:
    """Whether `workflow_run.path` (".github/workflows/<file>", with "@<ref>" at times) is the
    dispatched workflow file."""
    return path.partition("@")[0] == f".github/workflows/{workflow}"
