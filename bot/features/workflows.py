"""`workflow_job` and `workflow_run` webhooks: how the search runs the bot dispatched are going.

What GitHub says of a run (queued, in progress, completed and how, on which runner) goes on the
run board, where the job waiting for that run (`runners.actions.ActionsRunner`) reads it. Runs
that are none of kevolve's are ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bot.board import RunBoard
from bot.features.context import FeatureContext
from bot.storage import Delivery

log = logging.getLogger(__name__)


def handle(ctx: FeatureContext, delivery: Delivery) -> None:
    """Put the run's news on the board."""
    event = run_news(delivery.event, delivery.payload)
    if event is None:
        return
    run_id, name, run = event
    board = RunBoard(ctx.storage.engine, ctx.storage.now)
    if board.record(run_id, name, run):
        log.info("run %s (%s): %s %s", run_id, name, run.get("status"), run.get("conclusion"))


def run_news(event: str, payload: Mapping[str, Any]) -> tuple[int, str, Mapping[str, Any]] | None:
    """(run id, name, the job or run object) of a workflow webhook; None for anything else."""
    if event == "workflow_job":
        job = payload.get("workflow_job") or {}
        if job.get("run_id") is None:
            return None
        return int(job["run_id"]), str(job.get("name") or ""), job
    if event == "workflow_run":
        run = payload.get("workflow_run") or {}
        if run.get("id") is None:
            return None
        return int(run["id"]), str(run.get("display_title") or run.get("name") or ""), run
    return None
