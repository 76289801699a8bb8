"""The GitHub Actions runner: a job's search on a self-hosted runner of the repo's own fleet.

Each op of a job is one dispatch of the repo's `kevolve-search.yml` on `[self-hosted, <label>]`.
Each dispatch carries a fresh ticket: a token that posts that attempt's result once and expires
with the attempt's time limit, and a tag for the run's name. The workflow posts the result to the
bot (`POST /jobs/{id}/result` with the token), and GitHub tells the bot how the run goes
(`workflow_job` and `workflow_run` webhooks, matched by run id). The bot keeps both on a board;
this runner dispatches, then watches the board until a result arrives. A run no
runner picks up in time, or one that ends without posting (its runner vanished, a step failed),
is cancelled and dispatched again, up to `attempts` times, and then the job fails with the
reason of every attempt. `/kevolve stop` cancels the run on GitHub.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kevolve.runners.intake import CheckedResult
from kevolve.runners.job import JobSpec
from kevolve.runners.runner import Cancelled, RunnerError, checked_result

log = logging.getLogger(__name__)
WAITING = frozenset({"dispatched", "requested", "queued", "waiting", "pending"})


@dataclass(frozen=True)
class Ticket:
    """What one dispatch carries besides the job: never logged, never reused."""

    token: str  # posts this attempt's result once, until the attempt's time limit
    tag: str  # goes into the run's name: the bot's proof that the run is this dispatch's


# (job id, op, attempt, seconds the token must live) -> the dispatch's ticket
Tickets = Callable[[int, str, int, float], Ticket]


@dataclass(frozen=True)
class RunState:
    """What the bot has heard about the latest dispatch of one op of a job."""

    attempt: int
    run_id: int | None
    status: str  # dispatched, queued, waiting, in_progress or completed
    conclusion: str | None = None
    runner_name: str | None = None
    result: Mapping[str, Any] | None = None  # posted by any attempt


class Workflows(Protocol):
    """GitHub Actions for one repo, as far as this runner needs it."""

    def dispatch(self, inputs: Mapping[str, str]) -> int | None:
        """Start the search workflow; its run id when GitHub says."""
        ...

    def cancel(self, run_id: int) -> None:
        """Ask GitHub to cancel a run."""
        ...


class Board(Protocol):
    """Where the bot keeps the dispatches, their runs' progress and posted results."""

    def open(self, job_id: int, op: str, attempt: int) -> None:
        """Record a dispatch about to be made (its run's first webhook may beat the answer)."""
        ...

    def link(self, job_id: int, op: str, attempt: int, run_id: int) -> None:
        """Record the run id GitHub gave the dispatch."""
        ...

    def state(self, job_id: int, op: str) -> RunState | None:
        """The latest dispatch of this op of the job, with any posted result."""
        ...


@dataclass(frozen=True)
class ActionsConfig:
    """How jobs are run on self-hosted runners."""

    bot_url: str  # where the workflow posts results: the bot's public URL
    # The pinned kevolve the runner installs: 'kevolve==X.Y.Z --hash=sha256:...' or '-r <file in
    # the repo, every line pinned and hashed>' (checked by `bot.settings`).
    kevolve: str = "-r .github/kevolve-requirements.txt"
    attempts: int = 3  # dispatches per op before the job fails
    pickup_s: float = 900.0  # no runner took the run by then: it is lost
    result_grace_s: float = 120.0  # a finished run has this long to have posted its result
    run_s: float = 6 * 3600.0  # the workflow's own limit (timeout-minutes: 360): cancelled after
    setup_s: float = 1200.0  # checkout and install before a search with --minutes starts
    token_margin_s: float = 300.0  # a token outlives the runner's wait by this (post retries)
    poll_s: float = 2.0


class ActionsRunner:
    """Dispatches one op at a time and waits for its result on the board."""

    def __init__(
        self,
        workflows: Workflows,
        board: Board,
        tickets: Tickets,
        config: ActionsConfig,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._workflows, self._board, self._tickets = workflows, board, tickets
        self._config, self._clock, self._sleep = config, clock, sleep

    def run(self, spec: JobSpec, cancelled: Cancelled) -> CheckedResult:
        """The posted `SearchResult`, read and checked; RunnerError once every attempt was lost,
        on cancel, or when the result does not fit."""
        lost: list[str] = []
        for attempt in range(1, self._config.attempts + 1):
            outcome = self._attempt(spec, attempt, cancelled)
            if isinstance(outcome, CheckedResult):
                return outcome
            lost.append(f"attempt {attempt}: {outcome}")
        raise RunnerError(
            f"no result for {spec.op} on runner label '{spec.hardware}' after "
            f"{self._config.attempts} attempts ({'; '.join(lost)})"
        )

    def inputs(self, spec: JobSpec, attempt: int, ticket: Ticket) -> dict[str, str]:
        """The workflow's inputs for one dispatch; all strings, as the API wants them."""
        return {
            "job_id": str(spec.job_id),
            "op": spec.op,
            "hardware": spec.hardware,
            "budget": str(spec.budget),
            "minutes": _minutes(spec.minutes),
            "sha": spec.sha,
            "bot_url": self._config.bot_url,
            "token": ticket.token,
            "tag": ticket.tag,
            "kevolve": self._config.kevolve,
            "attempt": str(attempt),
        }

    def limit_s(self, spec: JobSpec) -> float:
        """How long a picked-up run may take: the job's minutes plus setup, within the
        workflow's own limit."""
        if spec.minutes is None:
            return self._config.run_s
        return min(self._config.run_s, spec.minutes * 60.0 + self._config.setup_s)

    def token_ttl_s(self, spec: JobSpec) -> float:
        """How long a dispatch's token lives: as long as this runner waits for its result."""
        config = self._config
        return config.pickup_s + self.limit_s(spec) + config.result_grace_s + config.token_margin_s

    def _attempt(self, spec: JobSpec, attempt: int, cancelled: Cancelled) -> CheckedResult | str:
        """The result, or why this attempt was lost (its run cancelled first)."""
        self._board.open(spec.job_id, spec.op, attempt)
        ticket = self._tickets(spec.job_id, spec.op, attempt, self.token_ttl_s(spec))
        run_id = self._workflows.dispatch(self.inputs(spec, attempt, ticket))
        if run_id is not None:
            self._board.link(spec.job_id, spec.op, attempt, run_id)
        started = self._clock()
        ended: float | None = None  # when the board first said the run completed
        while True:
            state = self._board.state(spec.job_id, spec.op)
            if state is not None and state.result is not None:
                return checked_result(dict(state.result), spec.job_id)
            if cancelled():
                self._cancel(state)
                raise RunnerError(f"job {spec.job_id} was cancelled")
            now = self._clock()
            reason = self._lost(spec, state, now - started)
            if state is not None and state.status == "completed":
                ended = now if ended is None else ended
                if now - ended >= self._config.result_grace_s:
                    reason = _ended_without_result(state)
            if reason:
                self._cancel(state)
                return reason
            self._sleep(self._config.poll_s)

    def _lost(self, spec: JobSpec, state: RunState | None, waited: float) -> str | None:
        """Why a run that has not completed counts as lost by now, if it does."""
        status = state.status if state is not None else "dispatched"
        if status in WAITING and waited >= self._config.pickup_s:
            return (
                f"no runner labelled '{spec.hardware}' picked the run up within "
                f"{self._config.pickup_s:g} s (is one online?)"
            )
        limit = self.limit_s(spec)
        if status != "completed" and waited >= self._config.pickup_s + limit:
            return f"the run took longer than {limit:g} s"
        return None

    def _cancel(self, state: RunState | None) -> None:
        """Cancel the run on GitHub when it is known and may still be going."""
        if state is None or state.run_id is None or state.status == "completed":
            return
        try:
            self._workflows.cancel(state.run_id)
        except Exception:  # best effort: a run GitHub already ended cannot be cancelled
            log.warning("cannot cancel run %s", state.run_id, exc_info=True)


def _ended_without_result(state: RunState) -> str:
    """Why a completed run is lost, in words."""
    where = f" on runner '{state.runner_name}'" if state.runner_name else ""
    ended = state.conclusion or "no conclusion"
    return f"run {state.run_id} ended ({ended}){where} without posting a result"


def _minutes(minutes: float | None) -> str:
    """The `minutes` input: plain decimal digits, or empty for no limit but the budget."""
    return "" if minutes is None else f"{minutes:.3f}".rstrip("0").rstrip(".")
