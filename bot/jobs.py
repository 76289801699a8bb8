"""The job worker: takes queued jobs, runs each search through a `Runner`, reports and proposes.

`slots` threads, one job each: one for the local runner (a host's GPU times one candidate at a
time anyway), more when jobs wait on self-hosted runners elsewhere. A job shows
itself on GitHub as a check run whose text follows the search, and, when a comment asked for it,
by editing that comment's answer. Jobs left `running` by a stopped bot are queued again.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import git
from kevolve.bot.archive import Keeping, StateArchive
from kevolve.bot.background import PollingThread
from kevolve.bot.checkrun import check_name
from kevolve.bot.github import GitHub, GitHubError
from kevolve.bot.joboutcome import JobOutcome, ProposalRecord
from kevolve.bot.jobrecord import Job, JobStatus, op_kernels
from kevolve.bot.messages import Messages
from kevolve.bot.modelchoice import ModelChoice, load_model_choice
from kevolve.bot.proposals import Proposed, PullRequests
from kevolve.bot.publisher import PublishError
from kevolve.bot.repoconfig import load_settings
from kevolve.bot.storage import Storage
from kevolve.harness.search.campaign import LLM_SHARE
from kevolve.harness.search.store import evaluated_count
from kevolve.harness.spec.checks import did_you_mean
from kevolve.harness.spec.load import SpecError, load_problems
from kevolve.runners.intake import AST_LOCK, CheckedResult
from kevolve.runners.job import JobSpec
from kevolve.runners.runner import Runner, RunnerError

log = logging.getLogger(__name__)

ClientFor = Callable[[int | None], GitHub]  # installation id -> its GitHub client
ProposerFor = Callable[[GitHub], PullRequests]
RunnerFor = Callable[[GitHub, Job], Runner]  # where a job runs, with its installation's client

_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")  # an owner or repository name


@dataclass(frozen=True)
class JobSettings:
    """How jobs run on this host."""

    workdir: Path  # checkouts and search state live under it
    cache_dir: Path  # measured device ceilings
    device: str = "auto"
    minutes: float | None = None  # per op; None: the budget alone bounds a search
    progress_every_s: float = 10.0
    llm_base_url: str | None = None  # the jobs' LLM; None: the tuner alone proposes
    llm_model: str | None = None
    llm_max_usd: float | None = None  # per op
    llm_prices: tuple[tuple[str, float, float], ...] = ()  # USD per million tokens, per model
    keeping: Keeping = field(default_factory=Keeping)  # finished jobs' state kept for the dashboard


class JobCancelled(Exception):
    """The job was stopped by `/kevolve stop`."""


class JobWorker:
    """Runs queued jobs one at a time on a background thread."""

    def __init__(
        self,
        storage: Storage,
        runner_for: RunnerFor,
        client_for: ClientFor,
        proposer_for: ProposerFor,
        messages: Messages,
        settings: JobSettings,
        poll_seconds: float = 2.0,
        slots: int = 1,
    ) -> None:
        self._storage, self._runner_for = storage, runner_for
        self._client_for, self._proposer_for = client_for, proposer_for
        self._messages, self._settings = messages, settings
        self._threads = [
            PollingThread(f"kevolve-jobs-{i}", self.run_pending, poll_seconds)
            for i in range(max(1, slots))
        ]
        self._stop = threading.Event()  # shared: every slot's job sees the worker stopping
        self._archive = StateArchive(settings.workdir, settings.keeping)

    def start(self) -> None:
        """Start the threads; jobs a stopped worker left running are queued again first, and
        kept state files past their time are removed."""
        if self._threads[0].running:
            return
        self._storage.requeue_running()
        self._archive.prune()
        self._stop.clear()
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.stop(timeout)

    def wake(self) -> None:
        """Every idle slot looks for a job (the claim is atomic: one takes each)."""
        for thread in self._threads:
            thread.wake()

    def run_pending(self) -> int:
        """Run every queued job now, on this thread; how many ran (for tests and one-shot use)."""
        ran = 0
        while not self._stop.is_set() and (job := self._storage.claim_job()) is not None:
            self.execute(job)
            ran += 1
        return ran

    def execute(self, job: Job) -> None:
        """Run one claimed job to done, failed or cancelled; never raises."""
        github = self._client_for(job.installation_id)
        run = _JobRun(job, github, self._storage, self._messages, self._settings, self._stop)
        try:
            run.start()
            proposer = self._proposer_for(github)
            runner = self._runner_for(github, job)
            for op in run.ops():
                result = runner.run(run.spec(op), run.cancelled)
                # Vetted at the commit the search ran on, not wherever a branch name points now.
                searched = replace(run.job, sha=run.sha)
                run.record(op, result, proposer.propose(searched, op, result))
            run.finish()
        except JobCancelled:
            run.end(JobStatus.CANCELLED, "cancelled", self._messages.job_cancelled())
        except (RunnerError, SpecError, GitHubError, PublishError) as exc:
            if self._stop.is_set():  # the bot is shutting down: the job resumes on restart
                self._storage.set_job_status(job.id, JobStatus.QUEUED)
            elif run.was_cancelled():
                run.end(JobStatus.CANCELLED, "cancelled", self._messages.job_cancelled())
            else:
                run.end(JobStatus.FAILED, "failure", self._messages.job_failed(str(exc)))
        except Exception as exc:  # a bug must not stop the worker; the job says what broke
            log.exception("job %s failed", job.id)
            summary = self._messages.job_failed(str(exc), bug=type(exc).__name__)
            run.end(JobStatus.FAILED, "failure", summary)


class _JobRun:
    """One job's execution: its checkout, check run, results and proposals."""

    def __init__(
        self,
        job: Job,
        github: GitHub,
        storage: Storage,
        messages: Messages,
        cfg: JobSettings,
        stopping: threading.Event,
    ) -> None:
        self._stopping = stopping
        self.job, self.github, self.storage = job, github, storage
        self.messages, self.cfg = messages, cfg
        self.root = cfg.workdir / f"job-{job.id}"
        self.checkout = self.root / "repo"
        self.sha = job.sha
        self.check_id = job.check_id
        self.results: dict[str, CheckedResult] = {}
        self.proposals: list[ProposalRecord] = []
        self._state: Path | None = None
        self.executor = "local"
        self.choice = ModelChoice()
        self.archive = StateArchive(cfg.workdir, cfg.keeping)
        self._last_progress = 0.0

    def start(self) -> None:
        """Clone the repo at the job's commit and show the job as in progress. The clone's token
        goes to git per command: no file of the checkout, which repo code can read, holds it."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not (self.checkout / ".git").exists():
            remote = self.github.clone_url(self.job.repo)
            try:
                git.Repo.clone_from(remote.url, self.checkout, env=remote.env())
            except git.GitCommandError as exc:
                raise RunnerError(
                    f"cannot clone {self.job.repo}: {remote.redact(str(exc))}"
                ) from None
        repo = git.Repo(self.checkout)
        ref = self.job.sha
        if ref.startswith("refs/heads/"):
            ref = "origin/" + ref.removeprefix("refs/heads/")
        repo.git.checkout("--quiet", "--detach", ref)
        self.sha = repo.head.commit.hexsha
        self.executor = load_settings(self.checkout).executor  # the repo's choice, e.g. "ray"
        self.choice = load_model_choice(self.checkout)  # its models and cost cap, no keys
        title, summary = self._progress_text(0)
        if self.check_id is None:
            name = check_name(self.job.op, self.job.hardware)
            self.check_id = self.github.start_check(self.job.repo, self.sha, name, title, summary)
            self.storage.link_job(self.job.id, check_id=self.check_id)
        else:
            self.github.update_check(self.job.repo, self.check_id, title, summary)
        self.answer(JobStatus.RUNNING)
        self._fix_kernels()

    def _fix_kernels(self) -> None:
        """Record what a job queued without them (on a branch name, or by an earlier version)
        is about, from the config at the commit it now runs at: every op of it for "*", else
        its own op; a SpecError when that config does not load or declares no such op."""
        if self.job.kernels is not None:
            return
        with AST_LOCK:  # the config's modules are parsed: one AST at a time (see runners.intake)
            problems = load_problems(self.checkout)
        names = [p.name for p in problems]
        if self.job.op not in ("*", *names):
            declared = f"declares no op '{self.job.op}' (declared: {', '.join(names)})"
            fix = f"{did_you_mean(self.job.op, names)}ask for one of those"
            raise SpecError(
                Path(self.job.repo), None, f"its config at {self.sha[:7]} {declared}", fix
            )
        kernels = op_kernels(p for p in problems if self.job.op in ("*", p.name))
        self.storage.record_kernels(self.job.id, kernels)
        self.job = replace(self.job, kernels=kernels)

    def ops(self) -> list[str]:
        """The ops this job searches: those it recorded when it was queued or started."""
        return [kernel.op for kernel in self.job.kernels or ()]

    def spec(self, op: str) -> JobSpec:
        """The runner's job for one op; the state path makes a requeued job resume."""
        self._state = self.root / "state" / f"{op}.sqlite"
        return JobSpec(
            job_id=self.job.id,
            checkout=str(self.checkout),
            op=op,
            hardware=self.job.hardware,
            budget=self.job.trigger.evaluations(self.job.budget),
            state=str(self._state),
            cache_dir=str(self.cfg.cache_dir),
            device=self.cfg.device,
            minutes=self.cfg.minutes,
            repo=self.job.repo,
            sha=self.sha,
            executor=self.executor,
            llm_base_url=self.cfg.llm_base_url,
            llm_model=self.choice.model_text(self.cfg.llm_model),
            llm_max_usd=self.choice.cap(self.cfg.llm_max_usd),
            llm_prices=[list(p) for p in self.cfg.llm_prices] or None,
            lessons=self._lessons(),
            llm_share=LLM_SHARE if self.choice.share is None else self.choice.share,
        )

    def _lessons(self) -> str | None:
        """What this repo's searches learned, kept for its later ones: its own file, or with
        `lessons = "installation"` the pool every opted-in repo of its installation shares;
        None for a name that is no plain owner/name path."""
        parts = self.job.repo.split("/")
        if len(parts) != 2 or not all(_NAME.fullmatch(p) and p not in (".", "..") for p in parts):
            return None
        lessons = self.cfg.workdir / "lessons"
        if self.choice.lessons == "installation" and self.job.installation_id is not None:
            return str(lessons / "installations" / str(self.job.installation_id) / "lessons.sqlite")
        return str(lessons / parts[0] / parts[1] / "lessons.sqlite")

    def was_cancelled(self) -> bool:
        current = self.storage.job(self.job.id)
        return current is not None and current.status is JobStatus.CANCELLED

    def cancelled(self) -> bool:
        """Polled by the runner: True stops the search. Also refreshes the check run's text."""
        if self._stopping.is_set() or self.was_cancelled():
            return True
        now = time.monotonic()
        if self.check_id is not None and now - self._last_progress >= self.cfg.progress_every_s:
            self._last_progress = now
            done = evaluated_count(self._state) if self._state else 0
            title, summary = self._progress_text(done)
            try:
                self.github.update_check(self.job.repo, self.check_id, title, summary)
            except Exception:  # progress text is best effort; the search goes on
                log.warning("job %s: cannot update its check run", self.job.id, exc_info=True)
        return False

    def record(self, op: str, result: CheckedResult, proposed: Proposed) -> None:
        """Keep one op's result and what proposing it did."""
        self.results[op] = result
        pull = proposed.pull
        self.proposals.append(
            ProposalRecord(
                op,
                proposed.status,
                proposed.reason,
                pull.number if pull else None,
                pull.url if pull else None,
                result.best.id if result.best else None,
            )
        )
        if self.was_cancelled():
            raise JobCancelled

    def finish(self) -> None:
        """Done: the check run carries the outcome, the answer comment the links."""
        summary = self.messages.job_done(list(self.results.values()), self.proposals)
        self.end(JobStatus.DONE, "success", summary)

    def end(self, status: JobStatus, conclusion: str, summary: str) -> None:
        """Store the outcome (with the summary as the reason of a job that did not finish),
        show it on the check run and the answer comment, keep the search state for the
        dashboard and remove the job's directory (a job requeued for a restart keeps it, to
        resume from its state)."""
        results = {op: result.to_dict() for op, result in self.results.items()}
        record = JobOutcome(self.sha, results, tuple(self.proposals)).to_dict()
        try:
            self.archive.keep(self.job.id, self.root / "state")
        except OSError as exc:  # the outcome stands; the dashboard shows what the result keeps
            log.warning("job %s: cannot keep its search state: %s", self.job.id, exc)
        reason = None if status is JobStatus.DONE else summary
        self.storage.set_job_status(self.job.id, status, record, reason=reason)
        shutil.rmtree(self.root, onerror=_undeleted)
        title = self.messages.job_ended_title(self.job.op, self.job.hardware, status)
        if self.check_id is not None:
            try:
                self.github.finish_check(self.job.repo, self.check_id, conclusion, title, summary)
            except Exception:
                log.warning("job %s: cannot finish its check run", self.job.id, exc_info=True)
        self.answer(status)

    def answer(self, status: JobStatus) -> None:
        """Edit the comment that answered the command, if a comment asked for this job."""
        if self.job.comment_id is None:
            return
        view = {
            "op": self.job.op,
            "hardware": self.job.hardware,
            "status": status,
            "trigger": self.job.trigger,
            "budget": self.job.budget,
            "evaluated": sum(r.evaluated for r in self.results.values()),
            "url": next((p.url for p in self.proposals if p.url), None),
        }
        try:
            body = self.messages.status_comment([view])
            self.github.edit_comment(self.job.repo, self.job.comment_id, body)
        except Exception:  # the answer is a courtesy; the check run carries the outcome
            log.warning("job %s: cannot edit its answer comment", self.job.id, exc_info=True)

    def _progress_text(self, evaluated: int) -> tuple[str, str]:
        job = self.job
        budget = job.trigger.evaluations(job.budget)
        return self.messages.job_running(job.id, job.op, job.hardware, self.sha, evaluated, budget)


def _undeleted(_function: Callable[..., Any], path: str, error: tuple[Any, ...]) -> None:
    """Log what of a finished job's directory could not be removed; the job's outcome stands."""
    if not isinstance(error[1], FileNotFoundError):
        log.warning("cannot remove %s of a finished job: %s", path, error[1])
