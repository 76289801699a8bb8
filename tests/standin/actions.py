"""GitHub Actions on the stand-in: a dispatched run plays out on the repo's self-hosted runners.

As on GitHub, a run goes to an online runner that carries `self-hosted` and the run's `hardware`
input, or stays queued while there is none; the app hears of it through signed `workflow_job`
webhooks (queued, in_progress, completed). The runner's machine does the job's work (`Machine`:
the run in, its conclusion out); a machine may also vanish, which GitHub reports as a failed job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx

from tests.standin import payloads
from tests.standin.server import StandIn
from tests.standin.state import Repo, Runner, WorkflowRun

Machine = Callable[[WorkflowRun], str]  # does a run's work on its runner; the conclusion


class Actions:
    """Plays each dispatched run of the stand-in and tells the app at `webhook_url`."""

    def __init__(
        self, standin: StandIn, installation_id: int, webhook_url: str, secret: str
    ) -> None:
        self._standin, self._installation = standin, installation_id
        self._url, self._secret = webhook_url, secret
        self.machine: Machine = lambda run: "success"
        self._threads: list[threading.Thread] = []
        standin.state.on_dispatch.append(self._dispatched)

    def runs(self) -> list[WorkflowRun]:
        """Every dispatched run, oldest first."""
        return sorted(self._standin.state.runs.values(), key=lambda r: r.id)

    def join(self, timeout: float = 60.0) -> None:
        """Wait for the runs in play to finish."""
        for thread in list(self._threads):
            thread.join(timeout)

    def _dispatched(self, run: WorkflowRun) -> None:
        """Answer the dispatch first; the run plays out on a thread, as on GitHub."""
        thread = threading.Thread(target=self._play, args=(run,), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _play(self, run: WorkflowRun) -> None:
        self._send(run, "queued")
        runner = _runner_for(run.repo, run.inputs.get("hardware", ""))
        if runner is None:
            return  # queued until a runner with that label comes online
        run.status, run.runner_name = "in_progress", runner.name
        self._send(run, "in_progress", runner.name)
        conclusion = "cancelled" if run.cancel_requested else self.machine(run)
        run.status = "completed"
        run.conclusion = "cancelled" if run.cancel_requested else conclusion
        self._send(run, "completed", runner.name, run.conclusion)

    def _send(
        self,
        run: WorkflowRun,
        action: str,
        runner: str | None = None,
        conclusion: str | None = None,
    ) -> None:
        body = payloads.workflow_job(
            run.repo.full_name, self._installation, run, action, runner, conclusion
        )
        raw, headers = payloads.signed(self._secret, body, "workflow_job")
        httpx.post(self._url, content=raw, headers=headers, timeout=30).raise_for_status()


def _runner_for(repo: Repo, label: str) -> Runner | None:
    """An online runner of the repo labelled `self-hosted` and `label`."""
    for runner in repo.runners:
        if runner.status == "online" and {"self-hosted", label} <= set(runner.labels):
            return runner
    return None
