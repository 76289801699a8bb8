"""GitHub Actions as the job engine: the `ActionsRunner` wired to the app's client and storage."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from kevolve.bot.board import RunBoard
from kevolve.bot.github import GitHub
from kevolve.bot.settings import BotSettings
from kevolve.bot.storage import Job, Storage
from kevolve.bot.tokens import grant, issue, key_for, run_tag
from kevolve.runners.actions import ActionsConfig, ActionsRunner, Ticket, Tickets
from kevolve.runners.runner import Runner


class RepoWorkflows:
    """`runners.actions.Workflows` for one repo, through its installation's client."""

    def __init__(self, github: GitHub, repo: str, workflow: str) -> None:
        self._github, self._repo, self._workflow = github, repo, workflow

    def dispatch(self, inputs: Mapping[str, str]) -> int | None:
        """Dispatch the workflow from the default branch (where the repo keeps it)."""
        ref = self._github.default_branch(self._repo)
        return self._github.dispatch_workflow(self._repo, self._workflow, ref, inputs)

    def cancel(self, run_id: int) -> None:
        self._github.cancel_run(self._repo, run_id)


def actions_config(settings: BotSettings) -> ActionsConfig:
    """The runner's settings; KEVOLVE_BOT_URL is checked when the settings are read."""
    return ActionsConfig(
        bot_url=settings.bot_url or "",
        kevolve=settings.runner_requirement,
        attempts=settings.runner_attempts,
        pickup_s=settings.runner_pickup_s,
        result_grace_s=settings.runner_grace_s,
    )


def actions_runner_for(
    settings: BotSettings, storage: Storage, clock: Callable[[], float] = time.time
) -> Callable[[GitHub, Job], Runner]:
    """Each job's `ActionsRunner`: its repo's workflow, the shared board, a ticket per dispatch."""
    config = actions_config(settings)
    board = RunBoard(storage.engine, storage.now)
    tickets = ticket_office(board, key_for(settings.webhook_secret), settings.workflow, clock)

    def runner_for(github: GitHub, job: Job) -> Runner:
        workflows = RepoWorkflows(github, job.repo, settings.workflow)
        return ActionsRunner(workflows, board, tickets, config)

    return runner_for


def ticket_office(
    board: RunBoard, key: bytes, workflow: str, clock: Callable[[], float] = time.time
) -> Tickets:
    """Issues each dispatch's ticket and records it on the board (single use, run tag)."""

    def ticket(job_id: int, op: str, attempt: int, ttl_s: float) -> Ticket:
        given = grant(job_id, op, attempt, clock() + ttl_s)
        tag = run_tag(key, given)
        board.keep_token(given, tag, workflow)
        return Ticket(issue(key, given), tag)

    return ticket
