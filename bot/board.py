"""The run board: each dispatch of a job's op to GitHub Actions, how its run goes, its result.

The web process writes posted results here and the worker writes what `workflow_job` and
`workflow_run` webhooks say; the job worker's `ActionsRunner` reads it. All through the bot's
database, so the two processes need nothing else between them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bot.database import job_runs_table
from runners.actions import RunState

Posted = Literal["stored", "duplicate", "not dispatched"]

# The workflow names its run and job "kevolve job <id> <op> #<attempt>" (see kevolve-search.yml);
# a reusable-workflow caller prefixes the job's name with its own ("caller / kevolve job ...").
_NAME = re.compile(r"kevolve job (\d{1,12}) ([A-Za-z0-9_-]{1,100}) #(\d{1,4})$")


def run_name(job_id: int, op: str, attempt: int) -> str:
    """The name the workflow gives the run and job of one dispatch."""
    return f"kevolve job {job_id} {op} #{attempt}"


_RANK = {"dispatched": 0, "requested": 1, "pending": 1, "waiting": 1, "queued": 1}
_RANK |= {"in_progress": 2, "completed": 3}

_runs = job_runs_table.c


class RunBoard:
    """Dispatches and their runs, in the `job_runs` table."""

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
                .where(_runs.job_id == job_id, _runs.op == op, _runs.attempt == attempt)
                .values(runner_name=None, **fresh)
            )
            with self._engine.begin() as conn:
                conn.execute(change)

    def link(self, job_id: int, op: str, attempt: int, run_id: int) -> None:
        """Record the run id GitHub gave a dispatch."""
        change = (
            sa.update(job_runs_table)
            .where(_runs.job_id == job_id, _runs.op == op, _runs.attempt == attempt)
            .values(run_id=run_id)
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

    def post(self, job_id: int, op: str, result: Mapping[str, Any]) -> Posted:
        """Keep the first result posted for the op; later posts change nothing."""
        state = self.state(job_id, op)
        if state is None:
            return "not dispatched"
        if state.result is not None:
            return "duplicate"
        change = (
            sa.update(job_runs_table)
            .where(
                _runs.job_id == job_id,
                _runs.op == op,
                _runs.attempt == state.attempt,
                _runs.result.is_(None),
            )
            .values(result=json.dumps(result), updated_at=self._clock())
        )
        with self._engine.begin() as conn:
            stored = conn.execute(change).rowcount == 1
        return "stored" if stored else "duplicate"

    def record(self, run_id: int, name: str, run: Mapping[str, Any]) -> bool:
        """Note what a workflow webhook says of a run; False when the run is none of ours.

        The run id matches a dispatch GitHub gave it to; otherwise the run's name does, and the
        dispatch learns its run id. A late event never moves a run's status backwards.
        """
        status = str(run.get("status") or "")
        if status not in _RANK:
            return False
        values: dict[str, Any] = {"status": status, "updated_at": self._clock()}
        if run.get("conclusion"):
            values["conclusion"] = str(run["conclusion"])
        if run.get("runner_name"):
            values["runner_name"] = str(run["runner_name"])
        where = self._dispatch_of(run_id, name)
        if where is None:
            return False
        behind = [s for s, rank in _RANK.items() if rank <= _RANK[status]]
        change = (
            sa.update(job_runs_table)
            .where(*where, _runs.status.in_(behind))
            .values(run_id=run_id, **values)
        )
        with self._engine.begin() as conn:
            conn.execute(change)
        return True

    def _dispatch_of(self, run_id: int, name: str) -> list[sa.ColumnElement[bool]] | None:
        """The WHERE clause of the dispatch a run belongs to, or None."""
        with self._engine.connect() as conn:
            known = conn.execute(sa.select(_runs.job_id).where(_runs.run_id == run_id)).first()
        if known is not None:
            return [_runs.run_id == run_id]
        match = _NAME.search(name.strip())
        if match is None:
            return None
        job_id, op, attempt = int(match[1]), match[2], int(match[3])
        where = [_runs.job_id == job_id, _runs.op == op, _runs.attempt == attempt]
        with self._engine.connect() as conn:
            found = conn.execute(sa.select(_runs.job_id).where(*where)).first()
        return None if found is None else where
