"""`workflow_job` and `workflow_run` webhooks: how the search runs the bot dispatched are going.

What GitHub says of a run (queued, in progress, completed and how, on which runner) goes on the
run board, where the job waiting for that run (`runners.actions.ActionsRunner`) reads it. The
board matches a run by the id its dispatch returned, or a `workflow_run` by its workflow file,
its event and the dispatch's tag in its name (`bot.board`); any other run is ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kevolve.bot.board import RunBoard, RunNews
from kevolve.bot.features.context import FeatureContext, FeatureTable
from kevolve.bot.storage import Delivery

log = logging.getLogger(__name__)


def register(table: FeatureTable) -> None:
    """Workflow jobs and runs, at every step (queued, in progress, completed)."""
    table.add("workflow_job", None, handle)
    table.add("workflow_run", None, handle)


def handle(ctx: FeatureContext, delivery: Delivery) -> None:
    """Put the run's news on the board."""
    news = run_news(delivery.event, delivery.payload)
    if news is None:
        return
    board = RunBoard(ctx.storage.engine, ctx.storage.now)
    if board.record(news):
        log.info("run %s (%s): %s %s", news.run_id, news.name, news.status, news.conclusion)
    else:
        log.info("run %s (%s) is none of kevolve's dispatches: ignored", news.run_id, news.name)


def run_news(event: str, payload: Mapping[str, Any]) -> RunNews | None:
    """What a workflow webhook says of its run; None for anything else."""
    if event == "workflow_job":
        job = payload.get("workflow_job")
        if not isinstance(job, dict) or not isinstance(job.get("run_id"), int):
            return None
        return RunNews(
            run_id=job["run_id"],
            name=_text(job.get("name")),
            status=_text(job.get("status")),
            conclusion=_text(job.get("conclusion")) or None,
            runner_name=_text(job.get("runner_name")) or None,
        )
    if event == "workflow_run":
        run = payload.get("workflow_run")
        if not isinstance(run, dict) or not isinstance(run.get("id"), int):
            return None
        return RunNews(
            run_id=run["id"],
            name=_text(run.get("display_title")),
            status=_text(run.get("status")),
            conclusion=_text(run.get("conclusion")) or None,
            path=_text(run.get("path")) or None,
            event=_text(run.get("event")) or None,
        )
    return None


def _text(value: Any) -> str:
    """A payload field as text, capped: names and titles are written by others."""
    return value[:300] if isinstance(value, str) else ""
