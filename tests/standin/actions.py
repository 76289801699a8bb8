"""GitHub Actions on the stand-in: a dispatched run plays out on the repo's self-hosted runners.

As on GitHub, a run goes to an online runner that carries `self-hosted` and the run's `hardware`
input, or stays queued while there is none; the app hears of it through signed `workflow_run`
(requested, in_progress, completed) and `workflow_job` (queued, in_progress, completed) webhooks.
The runner's machine does the job's work (`Machine`: the run and its place on the runner in, its
conclusion out) in a `RunnerHost` laid out as GitHub's runner lays one: the event payload at
`$GITHUB_EVENT_PATH`, `$RUNNER_TEMP`, the tool cache, the workspace, and the job's log.
`play_steps` runs a workflow's steps there as the runner does: expressions filled in, each step's
script and `env:` printed to the log before it runs, `::add-mask::` honoured from then on.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.standin import gitrepo, payloads
from tests.standin.server import StandIn
from tests.standin.state import Repo, Runner, WorkflowRun

_MASK = "::add-mask::"


class RunnerLog:
    """A job's log as the runner writes it: every masked value shows as `***`."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._masks: set[str] = set()

    def write(self, text: str) -> None:
        """Log `text` line by line; a `::add-mask::` line masks its value and is not shown."""
        for line in text.splitlines():
            if line.startswith(_MASK):
                if line[len(_MASK) :].strip():
                    self._masks.add(line[len(_MASK) :].strip())
                continue
            for value in sorted(self._masks, key=len, reverse=True):
                line = line.replace(value, "***")
            self.lines.append(line)

    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class RunnerHost:
    """One job's place on a runner machine."""

    run: WorkflowRun
    root: Path
    tool_cache: Path  # RUNNER_TOOL_CACHE: shared by every job of the machine
    env: dict[str, str]  # the runner process's own environment
    log: RunnerLog = field(default_factory=RunnerLog)

    @property
    def temp(self) -> Path:
        return self.root / "_temp"

    @property
    def workspace(self) -> Path:
        return self.root / "_work" / self.run.repo.name

    @property
    def event_path(self) -> Path:
        return self.temp / "_github_workflow" / "event.json"


Machine = Callable[[WorkflowRun, RunnerHost], str]  # does a run's work on its runner
# A step the test plays in place of the real one (an action, or one that reaches the internet):
# the host, the step's rendered `with:` and environment in; whether it succeeded out.
StepStandIn = Callable[[RunnerHost, Mapping[str, str], Mapping[str, str]], bool]


class Actions:
    """Plays each dispatched run of the stand-in and tells the app at `webhook_url`."""

    def __init__(
        self,
        standin: StandIn,
        installation_id: int,
        webhook_url: str,
        secret: str,
        machines: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._standin, self._installation = standin, installation_id
        self._url, self._secret = webhook_url, secret
        self._machines, self._env = machines, dict(env or {})
        self.machine: Machine = lambda run, host: "success"
        self.hosts: dict[int, RunnerHost] = {}  # run id -> where it ran
        self._threads: list[threading.Thread] = []
        standin.state.on_dispatch.append(self._dispatched)

    def runs(self) -> list[WorkflowRun]:
        """Every dispatched run, oldest first."""
        return sorted(self._standin.state.runs.values(), key=lambda r: r.id)

    def join(self, timeout: float = 60.0) -> None:
        """Wait for the runs in play to finish."""
        for thread in list(self._threads):
            thread.join(timeout)

    def send_job(
        self,
        run: WorkflowRun,
        action: str,
        runner: str | None = None,
        conclusion: str | None = None,
    ) -> str:
        """Deliver a `workflow_job` webhook of `run`'s one job; the delivery's id."""
        body = payloads.workflow_job(
            run.repo.full_name, self._installation, run, action, runner, conclusion
        )
        return self._deliver(body, "workflow_job")

    def send_run(
        self, run: WorkflowRun, action: str, title: str, path: str, event: str = "workflow_dispatch"
    ) -> str:
        """Deliver a `workflow_run` webhook of `run`, titled `title`, of the file at `path`; the
        delivery's id."""
        body = payloads.aim(
            payloads.example("workflow_run", action="requested"),
            run.repo.full_name,
            self._installation,
        )
        body["action"] = action
        body["workflow_run"].update(
            id=run.id,
            name="kevolve-search",
            display_title=title,
            path=path,
            event=event,
            head_sha=run.head_sha,
            head_branch=run.ref,
            status={"requested": "queued"}.get(action, action),
            conclusion=run.conclusion if action == "completed" else None,
        )
        return self._deliver(body, "workflow_run")

    def _deliver(self, body: dict[str, Any], event: str) -> str:
        raw, headers = payloads.signed(self._secret, body, event)
        httpx.post(self._url, content=raw, headers=headers, timeout=30).raise_for_status()
        return headers["X-GitHub-Delivery"]

    def _dispatched(self, run: WorkflowRun) -> None:
        """Answer the dispatch first; the run plays out on a thread, as on GitHub."""
        thread = threading.Thread(target=self._play, args=(run,), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _play(self, run: WorkflowRun) -> None:
        workflow = _workflow(run)
        title = _render(str(workflow.get("run-name") or run.workflow), _contexts(run, None))
        path = f".github/workflows/{run.workflow}"
        self.send_run(run, "requested", title, path)
        self.send_job(run, "queued")
        runner = _runner_for(run.repo, run.inputs.get("hardware", ""))
        if runner is None:
            return  # queued until a runner with that label comes online
        run.status, run.runner_name = "in_progress", runner.name
        self.send_job(run, "in_progress", runner.name)
        self.send_run(run, "in_progress", title, path)
        if run.cancel_requested:
            conclusion = "cancelled"
        else:
            host = self._host(run, runner)
            try:
                conclusion = self.machine(run, host)
            finally:
                (host.root / "runner.log").write_text(host.log.text())  # as GitHub keeps it
        run.status = "completed"
        run.conclusion = "cancelled" if run.cancel_requested else conclusion
        self.send_job(run, "completed", runner.name, run.conclusion)
        self.send_run(run, "completed", title, path)

    def _host(self, run: WorkflowRun, runner: Runner) -> RunnerHost:
        """The run's place on the runner, with the dispatch's event payload where GitHub puts it."""
        machine = self._machines / runner.name
        host = RunnerHost(run, machine / f"job-{run.id}", machine / "tool-cache", self._env)
        for folder in (host.temp, host.workspace, host.tool_cache, host.event_path.parent):
            folder.mkdir(parents=True, exist_ok=True)
        event = payloads.aim(
            payloads.example("workflow_dispatch"), run.repo.full_name, self._installation
        )
        event.update(
            inputs=dict(run.inputs),
            ref=f"refs/heads/{run.ref}",
            workflow=f".github/workflows/{run.workflow}",
        )
        host.event_path.write_text(json.dumps(event))
        self.hosts[run.id] = host
        return host


def play_steps(host: RunnerHost, stand_ins: Mapping[str, StepStandIn]) -> str:
    """Run the workflow's one job's steps on `host` as the runner does; the conclusion.

    A step whose `uses:` or `name:` is in `stand_ins` is played by it; every other step must be a
    `run:` step, run under bash with the environment GitHub gives it.
    """
    run = host.run
    [job] = (_workflow(run).get("jobs") or {}).values()
    contexts = _contexts(run, host)
    job_env = {k: _render(str(v), contexts) for k, v in (job.get("env") or {}).items()}
    failed = False
    for step in job.get("steps") or []:
        condition = str(step.get("if") or "success()")
        if condition not in ("always()", "success()"):
            raise ValueError(f"the stand-in cannot evaluate `if: {condition}`")
        if failed and condition != "always()":
            continue
        step_env = {k: _render(str(v), contexts) for k, v in (step.get("env") or {}).items()}
        env = {**host.env, **_defaults(host), **job_env, **step_env}
        given = {k: _render(str(v), contexts) for k, v in (step.get("with") or {}).items()}
        _header(host.log, step, given, job_env | step_env)
        key = str(step.get("uses") or step.get("name") or "")
        if key in stand_ins:
            ok = stand_ins[key](host, given, env)
        elif "run" in step:
            ok = _shell(host, str(step["run"]), env)
        else:
            raise ValueError(f"no stand-in for step {key!r}")
        failed = failed or not ok
    return "failure" if failed else "success"


def _workflow(run: WorkflowRun) -> dict[Any, Any]:
    """The dispatched workflow, as it is at the run's commit."""
    path = f"{run.head_sha}:.github/workflows/{run.workflow}"
    data = yaml.safe_load(gitrepo.git("show", path, cwd=run.repo.git_dir))
    return data if isinstance(data, dict) else {}


def _contexts(run: WorkflowRun, host: RunnerHost | None) -> dict[str, dict[str, str]]:
    """The expression contexts a dispatched run's workflow may read."""
    runner = {} if host is None else {"temp": str(host.temp), "tool_cache": str(host.tool_cache)}
    return {
        "inputs": dict(run.inputs),
        "secrets": {},  # a dispatch passes no secrets
        "vars": {},  # no configuration variables are set: unset reads as empty, as on GitHub
        "github": {"repository": run.repo.full_name, "event_name": "workflow_dispatch"},
        "runner": runner,
    }


_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_OPERAND = re.compile(r"(inputs|secrets|vars|github|runner)\.(\w+)|'([^']*)'")


def _render(template: str, contexts: Mapping[str, Mapping[str, str]]) -> str:
    """`template` with each `${{ a.b }}` or `${{ a.b || 'x' }}` filled in; others refused."""

    def value(match: re.Match[str]) -> str:
        for operand in match[1].split("||"):
            found = _OPERAND.fullmatch(operand.strip())
            if found is None:
                raise ValueError(f"the stand-in cannot evaluate ${{{{ {match[1]} }}}}")
            text = found[3] if found[3] is not None else contexts[found[1]].get(found[2], "")
            if text:
                return text
        return ""

    return _EXPRESSION.sub(value, template)


def _defaults(host: RunnerHost) -> dict[str, str]:
    """The variables GitHub's runner sets for every step."""
    return {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "workflow_dispatch",
        "GITHUB_EVENT_PATH": str(host.event_path),
        "GITHUB_REPOSITORY": host.run.repo.full_name,
        "GITHUB_RUN_ID": str(host.run.id),
        "GITHUB_SHA": host.run.head_sha,
        "GITHUB_WORKSPACE": str(host.workspace),
        "RUNNER_TEMP": str(host.temp),
        "RUNNER_TOOL_CACHE": str(host.tool_cache),
    }


def _header(
    log: RunnerLog, step: Mapping[str, Any], given: Mapping[str, str], env: Mapping[str, str]
) -> None:
    """What the runner prints before a step: its script, or action and inputs, and its env."""
    log.write(f"##[group]Run {step.get('uses') or step.get('name')}")
    if "run" in step:
        log.write(str(step["run"]))
        log.write("shell: /usr/bin/bash -e {0}")
    for key, value in given.items():
        log.write(f"  {key}: {value}")
    if env:
        log.write("env:")
        for key, value in env.items():
            log.write(f"  {key}: {value}")
    log.write("##[endgroup]")


def _shell(host: RunnerHost, script: str, env: Mapping[str, str]) -> bool:
    """Run a `run:` step's script as the runner does; its output goes to the log."""
    path = host.temp / f"step-{len(host.log.lines)}.sh"
    path.write_text(script)
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-e", str(path)],
        cwd=host.workspace,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    host.log.write(done.stdout)
    if done.returncode != 0:
        host.log.write(f"##[error]Process completed with exit code {done.returncode}.")
    return done.returncode == 0


def _runner_for(repo: Repo, label: str) -> Runner | None:
    """An online runner of the repo labelled `self-hosted` and `label`."""
    for runner in repo.runners:
        if runner.status == "online" and {"self-hosted", label} <= set(runner.labels):
            return runner
    return None
