"""The fleet poller: new runner labels and schedule ticks become re-optimization jobs.

A background thread of the worker process. Each pass visits every repo kevolve has run jobs for
(stored jobs name the repo and the installation to act through; listing every installed repo
instead would read configs of repos that never asked for kevolve, on the app's own JWT). For
each, it lists the self-hosted runners the repo may use (its own and its organization's) and
reads the config at the default branch's head (read again only when that head moves):

- New hardware. A label seen on the repo for the first time that the config's `hardware` wants
  (listed, or "auto" and a GPU label: see `bot.repoconfig`) gets one "hardware" job per op,
  unless the repo already has jobs on it: kevolve then optimized for it before the poller saw it
  (a push for a listed label, or jobs from before the poller ran). So on a repo's first listing,
  its existing labels count as new only where nothing ran on them. A label is recorded together
  with its jobs in one transaction: a second poller or a restart never queues them again.
- Schedule. When the config's `schedule` fired since the repo's last check, `bot.schedule`
  picks the stale or outdated searches. The first check only starts the count; claiming the
  tick moves a stored mark, so one tick queues its jobs once. The expression is stored too,
  so that the dashboard (another process) can say when the next tick comes.

A broken config queues nothing and is logged once per head commit; when new GPU labels wait on
it, a failed check run on that commit says what to fix, as a push with a broken config does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from kevolve.bot.background import PollingThread
from kevolve.bot.checkrun import CHECK_NAME, check_name
from kevolve.bot.fleet_store import FleetStore
from kevolve.bot.github import GitHub, GitHubError
from kevolve.bot.jobrecord import JobStatus, Trigger, op_kernels
from kevolve.bot.messages import Messages
from kevolve.bot.repoconfig import RepoConfig, is_gpu_label
from kevolve.bot.schedule import Rerun, reruns
from kevolve.bot.storage import Storage
from kevolve.harness.spec.load import SpecError

log = logging.getLogger(__name__)

ClientFor = Callable[[int | None], GitHub]
HeadOf = Callable[[GitHub, str], str]  # (github, repo) -> the default branch's head sha
ReadConfig = Callable[[GitHub, str, str], RepoConfig]  # (github, repo, sha) -> its config
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class FleetSettings:
    """What the poller needs of the bot's settings."""

    hardware: tuple[str, ...]  # the bot's labels, for repos whose config names none
    budget: int  # candidates per search
    poll_s: float = 300.0


@dataclass(frozen=True)
class _Repo:
    """One repo in one pass: where to act, and what its config says at its head."""

    name: str
    github: GitHub
    installation: int
    sha: str
    config: RepoConfig


class FleetPoller:
    """Polls runner labels and schedules on a background thread; `poll` runs one pass."""

    def __init__(
        self,
        storage: Storage,
        client_for: ClientFor,
        head_of: HeadOf,
        read_config: ReadConfig,
        settings: FleetSettings,
        messages: Messages,
        clock: Clock,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._storage, self._client_for = storage, client_for
        self._messages = messages
        self._fleet = FleetStore(storage.engine, storage.now)
        self._head_of, self._read_config = head_of, read_config
        self._settings, self._clock, self._wake = settings, clock, wake
        self._configs: dict[str, tuple[str, RepoConfig | SpecError]] = {}  # repo -> sha, config
        self._warned: set[tuple[str, str]] = set()  # (repo, sha) of broken configs logged
        self._thread = PollingThread("kevolve-fleet", self.poll, settings.poll_s)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._thread.stop(timeout)

    def poll(self) -> list[int]:
        """One pass over every known repo; the ids of the jobs it queued."""
        queued: list[int] = []
        for name, installation in self._fleet.fleet_repos():
            if self._thread.stopping.is_set():
                break
            try:
                queued += self._poll_repo(name, installation)
            except (GitHubError, RuntimeError) as exc:  # the next pass tries again
                log.warning("fleet: cannot poll %s: %s", name, exc)
            except Exception:  # one repo's bug must not starve the others
                log.exception("fleet: polling %s failed", name)
        if queued:
            self._wake()
        return queued

    def _poll_repo(self, name: str, installation: int) -> list[int]:
        """New labels' and due schedule jobs of one repo."""
        github = self._client_for(installation)
        listed = {label for runner in github.runners(name) for label in runner.labels}
        new = listed - self._fleet.runner_labels(name)
        sha = self._head_of(github, name)
        config = self._config(github, name, sha)
        if isinstance(config, SpecError):
            self._broken(github, name, sha, config, new)
            return []
        repo = _Repo(name, github, installation, sha, config)
        return self._new_labels(repo, new) + self._scheduled(repo, listed)

    def _config(self, github: GitHub, repo: str, sha: str) -> RepoConfig | SpecError:
        """The repo's config at `sha`, or what is wrong with it; read once per head commit."""
        cached = self._configs.get(repo)
        if cached is None or cached[0] != sha:
            try:
                config: RepoConfig | SpecError = self._read_config(github, repo, sha)
            except SpecError as error:
                config = error
            cached = self._configs[repo] = (sha, config)
        return cached[1]

    def _new_labels(self, repo: _Repo, new: set[str]) -> list[int]:
        """Record labels seen for the first time; queue each wanted one's jobs once."""
        ran = self._fleet.job_labels(repo.name)
        settings, budget = repo.config.settings, self._settings.budget
        queued = []
        for label in sorted(new):
            wanted = settings.wants(label, self._settings.hardware) and label not in ran
            ops = [op for op in repo.config.ops if wanted]
            jobs = [(repo.sha, op.name, Trigger.HARDWARE, budget, op_kernels([op])) for op in ops]
            ids = self._fleet.add_runner_label(repo.name, label, jobs, repo.installation)
            if not ids:
                continue  # not wanted, or another poller recorded it first
            log.info("fleet: %s has a new runner label %s: %d jobs", repo.name, label, len(ids))
            reason = f"a runner with the new label `{label}` joined the fleet"
            why = [Rerun(op.name, label, reason) for op in ops]
            queued += self._show(repo, list(zip(ids, why, strict=True)))
        return queued

    def _scheduled(self, repo: _Repo, listed: set[str]) -> list[int]:
        """The searches due at a schedule tick, if the repo's cron fired since its last check."""
        cron, now = repo.config.settings.schedule, self._clock()
        self._fleet.note_schedule(repo.name, None if cron is None else cron.text)
        if cron is None:
            return []
        last = self._fleet.schedule_checked(repo.name)
        if last is not None and not cron.fired(last, now):
            return []
        if not self._fleet.claim_schedule(repo.name, last, now) or last is None:
            return []  # another poller took this tick, or this is the first look: count from now
        settings = repo.config.settings
        labels = settings.labels(self._settings.hardware, listed)
        ops = [op.name for op in repo.config.ops]
        due = reruns(ops, labels, self._storage.jobs(repo.name), now, settings.stale_days)
        log.info("fleet: %s schedule fired: %d searches due", repo.name, len(due))
        jobs = [(self._add(repo, rerun), rerun) for rerun in due]
        return self._show(repo, jobs)

    def _add(self, repo: _Repo, rerun: Rerun) -> int:
        """Store one schedule job, not claimable until `_show` gives it its check run, with the
        op's kernel file from the config at the head it runs at."""
        return self._storage.add_job(
            repo.name,
            repo.sha,
            rerun.op,
            rerun.label,
            Trigger.SCHEDULE,
            self._settings.budget,
            status=JobStatus.NEW,
            kernels=op_kernels(op for op in repo.config.ops if op.name == rerun.op),
            installation_id=repo.installation,
        )

    def _show(self, repo: _Repo, jobs: Sequence[tuple[int, Rerun]]) -> list[int]:
        """Give each new job its check run and queue it; a job whose check run cannot be
        created is queued anyway (the job worker creates it when the job starts)."""
        for job_id, rerun in jobs:
            title, summary = self._messages.job_queued(
                job_id, rerun.op, rerun.label, repo.sha, reason=rerun.reason
            )
            name = check_name(rerun.op, rerun.label)
            check: int | None = None
            try:
                check = repo.github.start_check(repo.name, repo.sha, name, title, summary)
            except GitHubError as exc:
                log.warning("fleet: job %d: cannot create its check run: %s", job_id, exc)
            self._storage.set_job_status(job_id, JobStatus.QUEUED, check_id=check)
        return [job_id for job_id, _ in jobs]

    def _broken(self, github: GitHub, repo: str, sha: str, error: SpecError, new: set[str]) -> None:
        """Log a broken config once per head; show it on the commit when new GPU labels wait."""
        if (repo, sha) not in self._warned:
            self._warned.add((repo, sha))
            log.warning("fleet: %s: the kevolve config at %s is broken: %s", repo, sha, error)
        gpus = sorted(label for label in new if is_gpu_label(label))
        if not gpus or self._fleet.shown_broken(repo) == sha:
            return
        title, summary = self._messages.config_broken(error, waiting=gpus)
        check = github.start_check(repo, sha, CHECK_NAME, title, summary)
        github.finish_check(repo, check, "failure", title, summary)
        self._fleet.show_broken(repo, sha)
