"""Proposals: a job's winning kernel as one pull request per op and hardware, within caps.

A normal run updates the open pull request of its op and hardware (or opens one); `recreate`
opens a new one on a fresh branch and closes the older with a link. A branch that holds a
person's commits is never pushed over: the bot comments instead. When the op has winners on other
hardware too, the module proposed holds each one's kernel, picked from the GPU at run time
(`bot.winners` says why each hardware keeps its own branch).

A result is data from code the bot does not trust: its runner read it through `runners.intake`,
it is vetted on the bot's side (`bot.vetting`: the kernel path the job recorded, as the config
names it, gate recomputed, winner checked again), and every text is rendered before anything is
pushed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

from jinja2 import TemplateError
from kevolve.bot.github import GitHub, PullRef
from kevolve.bot.joboutcome import ProposalStatus, job_outcome
from kevolve.bot.jobrecord import Job, Trigger
from kevolve.bot.messages import Messages
from kevolve.bot.publisher import Publication, PushOutcome, Tree, branch_name
from kevolve.bot.pull_store import PullStore, rejected_kernels
from kevolve.bot.remote import GitRemote
from kevolve.bot.reproduce import Checkout
from kevolve.bot.storage import Storage
from kevolve.bot.vetting import Unfit, Vetted, vet
from kevolve.bot.winners import (
    HarnessCheck,
    Merged,
    ModuleCheck,
    alone,
    merge,
    other_winners,
    winner,
)
from kevolve.runners.intake import CheckedResult

PREFIX = "kevolve/"
_RECREATED = re.compile(r"-r\d+$")  # kevolve/<op>/<hardware>-r<job>: a recreated proposal


class Publishing(Protocol):
    """Writes a publication to its branch (`bot.publisher.Publisher`, or the tests' fake)."""

    def publish(self, remote: GitRemote, pub: Publication) -> PushOutcome: ...

    def checkout(self, remote: GitRemote, commit: str) -> AbstractContextManager[Tree]: ...


@dataclass(frozen=True)
class Caps:
    """Limits on how much kevolve proposes to one repo."""

    open_prs: int = 5  # open kevolve pull requests per repo
    per_hour: int = 3  # pull requests opened per repo in any hour
    publish_untimed: bool = False  # propose correctness-only results (dry runs, demos)


@dataclass(frozen=True)
class Proposed:
    """What happened: opened, updated, blocked or skipped, why, and the pull request."""

    status: ProposalStatus
    reason: str
    pull: PullRef | None = None


@dataclass(frozen=True)
class PullRequests:
    """Everything proposing needs, composed once."""

    github: GitHub
    publisher: Publishing
    messages: Messages
    storage: Storage
    caps: Caps
    clock: Callable[[], datetime]
    judge: ModuleCheck = field(default_factory=HarnessCheck)  # checks the winner before it goes

    def propose(self, job: Job, op: str, data: CheckedResult) -> Proposed:
        """Publish `data`'s best kernel for `op` unless a rule says not to; what happened."""
        refusal = self._refusal(job, op, data)
        if refusal:
            return Proposed(ProposalStatus.SKIPPED, refusal)
        repo = job.repo
        open_pulls = self.github.open_pulls(repo, PREFIX)
        current = _current(open_pulls, op, job.hardware)
        if current is None and (cap := self._capped(repo, len(open_pulls))):
            return Proposed(ProposalStatus.SKIPPED, cap)
        recreate = job.trigger is Trigger.RECREATE and current is not None
        branch = branch_name(op, job.hardware)
        if current is not None and not recreate:
            branch = current.head
        elif recreate:
            branch = f"{branch}-r{job.id}"
        base = self.github.default_branch(repo)
        remote = self.github.clone_url(repo)
        try:
            with self.publisher.checkout(remote, job.sha) as tree:
                untimed = self.caps.publish_untimed
                vetted = vet(tree, op, data, self.judge, untimed, job.kernel(op))
                module = self._module(job, op, tree, vetted, data)
            where = Checkout(vetted.kernel, branch, job.sha, remote.url)
            title, body, message = self._texts(job, data, vetted, module, where)
        except Unfit as exc:
            return Proposed(ProposalStatus.SKIPPED, str(exc))
        except (TemplateError, ValueError) as exc:  # nothing is pushed without its text
            why = f"the pull request's text could not be rendered: {exc}"
            return Proposed(ProposalStatus.SKIPPED, why)
        publication = Publication(branch, {vetted.kernel: module.source}, message, base)
        outcome = self.publisher.publish(self.github.clone_url(repo, write=True), publication)
        if outcome.status == "blocked":
            if current is not None:
                self.github.comment(repo, current.number, self.messages.human_commits(branch))
            why = outcome.reason or "the branch has a person's commits"
            return Proposed(ProposalStatus.BLOCKED, why, current)
        if current is not None and not recreate:
            self.github.update_pull(repo, current.number, title, body)
            return Proposed(ProposalStatus.UPDATED, outcome.status, current)
        pull = self.github.open_pull(repo, branch, base, title, body)
        if current is not None:
            self.github.close_pull(repo, current.number, self.messages.superseded(pull.url))
        return Proposed(ProposalStatus.OPENED, outcome.status, pull)

    def _module(self, job: Job, op: str, tree: Tree, vetted: Vetted, data: CheckedResult) -> Merged:
        """The kernel module to publish: the winner, merged with other hardware's when there are."""
        current = winner(job.hardware, data)
        rejected = self._rejected(job.repo, op)
        others = other_winners(self.storage.jobs(job.repo), rejected, op, job.hardware)
        if not others:
            return alone(current)
        check = partial(self.judge.check, vetted.problem)
        merged = merge(vetted.problem, vetted.original, current, others, check)
        return replace(merged, commit=tree.sha)

    def _texts(
        self, job: Job, data: CheckedResult, vetted: Vetted, module: Merged, where: Checkout
    ) -> tuple[str, str, str]:
        """The pull request's title and body and the commit message, from what the bot read."""
        variants = module.view()
        title = self.messages.pr_title(data, job.hardware)
        body = self.messages.pr_body(data, where, variants, vetted.gate, vetted.original)
        message = self.messages.commit_message(data, variants, job.hardware)
        return title, body, message

    def _refusal(self, job: Job, op: str, data: CheckedResult) -> str | None:
        """Why this result must not be proposed, before any checkout; None when it may go on."""
        if data.job_id not in (None, job.id):
            return f"the result is job {data.job_id}'s, not job {job.id}'s"
        if data.problem != op:
            return f"the result is for op {data.problem!r}, not {op!r}"
        if job.kernels is not None and job.kernel(op) is None:
            about = ", ".join(kernel.op for kernel in job.kernels) or "no op"
            return f"job {job.id} is about {about}, not {op!r}"
        if data.best is None:
            return "no correct candidate was found"
        if (job.hardware, data.best.id) in self._rejected(job.repo, op):
            return "this kernel's pull request was closed unmerged; it is not proposed again"
        return None

    def _rejected(self, repo: str, op: str) -> set[tuple[str, str]]:
        """The (hardware, candidate) of the op's kernels whose pull requests closed unmerged."""
        return rejected_kernels(PullStore(self.storage.engine).closed(repo), op)

    def _capped(self, repo: str, open_count: int) -> str | None:
        """Why no new pull request may be opened in `repo` now, or None."""
        if open_count >= self.caps.open_prs:
            return f"{open_count} kevolve pull requests are open (cap {self.caps.open_prs})"
        since = self.clock() - timedelta(hours=1)
        opened = sum(
            opened_by(j) for j in self.storage.jobs(repo) if j.updated_at and j.updated_at >= since
        )
        if opened >= self.caps.per_hour:
            cap = self.caps.per_hour
            return f"{opened} pull requests were opened in the last hour (cap {cap})"
        return None


def _current(open_pulls: list[PullRef], op: str, hardware: str) -> PullRef | None:
    """The open kevolve pull request of this op and hardware, if any (the newest)."""
    mine = [p for p in open_pulls if target(p.head) == (op, hardware)]
    return max(mine, key=lambda p: p.number) if mine else None


def opened_by(job: Job) -> int:
    """How many pull requests a finished job opened (its result records each proposal)."""
    proposals = job_outcome(job).proposals or ()
    return sum(1 for p in proposals if p.status is ProposalStatus.OPENED)


def target(branch: str) -> tuple[str, str] | None:
    """The (op, hardware) of a `kevolve/<op>/<hardware>[-r<job>]` branch; None otherwise."""
    if not branch.startswith(PREFIX):
        return None
    parts = branch[len(PREFIX) :].split("/")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], _RECREATED.sub("", parts[1])
