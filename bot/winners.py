"""Per-hardware winners of an op: gathered from earlier jobs, merged into one module, each checked.

Branches stay one per op and hardware (`kevolve/<op>/<hardware>`), and each one's module carries
every hardware's current winner, with the repo's kernel for any other GPU. A maintainer merges
whichever of them they reviewed and every kind of GPU gets its kernel; the rest of the bot keeps
its meaning: a pull request's benchmark is one GPU's, `/kevolve stop` and `recreate` act on one
hardware, and closing one pull request unmerged rejects that hardware's kernel alone. One branch
per op would give a single pull request to review, but its body would mix benchmarks from several
machines and a rejection could not say which kernel was refused.
"""

from __future__ import annotations

import pwd
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from kevolve.bot.joboutcome import job_outcome
from kevolve.bot.jobrecord import Job
from kevolve.bot.messages import shown
from kevolve.bot.variants import VariantError, combine, matches, tag
from kevolve.harness.evaluate import EvalOptions, HarnessError, evaluate
from kevolve.harness.evaluation import Verdict
from kevolve.harness.sandbox.confine import Confinement
from kevolve.harness.screen import screen
from kevolve.harness.spec.problem import Problem
from kevolve.runners.fieldread import IntakeError
from kevolve.runners.intake import AST_LOCK, CheckedResult

_NOTE_CHARS = 300  # of the harness's reason, in a note


@dataclass(frozen=True)
class Winner:
    """One hardware's best kernel for an op, and where it came from."""

    label: str  # the hardware label its search ran on
    gpu: str | None  # the GPU it was timed on; None when nothing was timed
    source: str
    candidate: str
    speedup: float | None
    job: int | None = None  # the earlier job that found it; None for the one proposed now
    pr: int | None = None

    @property
    def key(self) -> str:
        """What the dispatcher looks for in a GPU's name: the label, or else the GPU's name."""
        # A runner label like "gpu-large" is no part of any GPU's name and would never match.
        return self.gpu if self.gpu and not matches(self.label, self.gpu) else self.label


def winner(
    label: str, result: CheckedResult, job: int | None = None, pr: int | None = None
) -> Winner:
    """The winner a checked result with a best candidate holds."""
    best = result.best
    if best is None:
        raise ValueError(f"{result.problem}: the result has no best candidate")
    gpu = result.machine.name if result.timed else None
    return Winner(label, gpu, best.source, best.id, result.speedup(), job, pr)


def other_winners(
    jobs: Sequence[Job], rejected: Collection[tuple[str, str]], op: str, hardware: str
) -> list[Winner]:
    """The latest proposed winner of `op` on each other hardware, less those whose pull request
    closed unmerged (`rejected`: their hardware and candidate, `bot.pull_store`).

    A proposal counts whatever way its job ended: its pull request holds the kernel. Each one
    is checked again as a variant of the module proposed now before it joins it.
    """
    latest: dict[str, Winner] = {}
    for job in jobs:  # in the order they were added: a later winner replaces an earlier one
        found = _proposed(job, op) if job.hardware != hardware else None
        if found is not None:
            latest[job.hardware] = winner(job.hardware, found[0], job.id, found[1])
    return [w for w in latest.values() if (w.label, w.candidate) not in rejected]


def _proposed(job: Job, op: str) -> tuple[CheckedResult, int | None] | None:
    """The job's result for `op` and its pull request number, when it proposed that result."""
    outcome = job_outcome(job)
    try:
        result = outcome.result(op)
    except IntakeError:
        return None
    if result is None or result.best is None:
        return None
    best = result.best
    for proposal in outcome.proposals or ():
        if proposal.op == op and proposal.candidate == best.id and proposal.status.proposed:
            return result, proposal.pr
    return None


class ModuleCheck(Protocol):
    """Checks a module as a candidate for a problem: None when correct, else why not."""

    def check(self, problem: Problem, source: str) -> str | None: ...


@dataclass(frozen=True)
class HarnessCheck:
    """The harness, nothing timed, under the judge's confinement: screened, then checked on a
    GPU when the bot's host has one, else on the check shapes through Triton's interpreter."""

    confinement: Confinement = field(default_factory=Confinement)
    device: str = "auto"  # the judge picks: the first GPU, or the CPU
    timeout: float = 120.0

    def check(self, problem: Problem, source: str) -> str | None:
        user = self.confinement.user
        if user is not None and not _exists(user):
            return (
                f"the judge's OS user {user!r} (KEVOLVE_JOB_USER) does not exist: create it "
                f"(useradd --system --no-create-home --shell /usr/sbin/nologin {user})"
            )
        with AST_LOCK:  # screened here first, one AST at a time (see runners.intake)
            findings = screen(source, problem.allowed_imports)
        if findings:
            first = findings[0]
            return f"rejected: line {first.line}: {first.message}"
        options = EvalOptions(
            device=self.device, time=False, timeout=self.timeout, confinement=self.confinement
        )
        try:  # evaluate screens the source again: under the lock too, one check at a time
            with AST_LOCK, _readable(problem, user) as seen:
                ev = evaluate(seen, source, options)
        except HarnessError as exc:  # the repo's own code failed: nothing is vouched for
            return f"the harness could not check it: {exc}"
        return None if ev.verdict is Verdict.CORRECT else f"{ev.verdict.value}: {ev.reason}"


@contextmanager
def _readable(problem: Problem, user: str | None) -> Iterator[Problem]:
    """The problem in a copy of its tree that `user` can read (the bot's checkouts are its
    own alone), without .git and with links copied as links; the problem itself for none."""
    if user is None:
        yield problem
        return
    scratch = Path(tempfile.mkdtemp(prefix="kevolve-recheck-"))
    try:
        scratch.chmod(0o755)
        root = scratch / "repo"
        shutil.copytree(problem.root, root, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        for path in [root, *root.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() else 0o644)
        yield replace(problem, root=root)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _exists(user: str) -> bool:
    """Whether the OS has a user of that name."""
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


@dataclass(frozen=True)
class Merged:
    """The module to publish, its winners (the proposed one first) and what was left out."""

    source: str
    winners: tuple[Winner, ...]
    notes: tuple[str, ...] = ()
    commit: str | None = None  # where the fallback (the repo's kernel) was read

    def view(self) -> dict[str, Any] | None:
        """What the templates show of it; None when only the proposed winner was ever in play."""
        if len(self.winners) == 1 and not self.notes:
            return None
        variants = [_row(w) for w in self.winners] if len(self.winners) > 1 else []
        return {"variants": variants, "notes": self.notes, "commit": self.commit}


def _row(w: Winner) -> dict[str, Any]:
    """A winner as a row of the pull request's table of kernels."""
    return {
        "label": w.label,
        "match": tag(w.key),
        "gpu": w.gpu,
        "speedup": w.speedup,
        "job": w.job,
        "pr": w.pr,
    }


def alone(current: Winner, notes: Sequence[str] = ()) -> Merged:
    """The proposed winner as the whole module, as without other hardware."""
    return Merged(current.source, (current,), tuple(notes))


def merge(
    problem: Problem,
    original: str,
    current: Winner,
    others: Sequence[Winner],
    check: Callable[[str], str | None],
) -> Merged:
    """Each winner checked as the variant run on CPU beside the original, then all of them."""
    kept: list[Winner] = []
    notes: list[str] = []
    for w in [current, *others]:
        why = _variant_fails(problem.entry, original, w, kept, check)
        if why is None:
            kept.append(w)
        elif w is current:
            note = f"{_named(w)} could not be merged ({_brief(why)}); it is proposed alone"
            return alone(current, [note])
        else:
            notes.append(f"{_named(w)} was left out: {_brief(why)}")
    if len(kept) == 1:
        return alone(current, notes)
    try:
        with AST_LOCK:
            source = combine(problem.entry, original, {w.key: w.source for w in kept})
        why = check(source)
    except VariantError as exc:
        source, why = "", str(exc)
    if why is not None:
        return alone(current, [*notes, f"the merged module failed the harness ({_brief(why)})"])
    return Merged(source, tuple(kept), tuple(notes))


def _variant_fails(
    entry: str, original: str, w: Winner, kept: Sequence[Winner], check: Callable[[str], str | None]
) -> str | None:
    """Why `w` cannot join `kept`: it runs on the same GPUs as one of them, or fails its check."""
    same = [k.label for k in kept if tag(k.key) == tag(w.key)]
    if same:
        return f"it would run on the same GPUs as {same[0]}'s (`{tag(w.key)}`)"
    try:
        with AST_LOCK:
            module = combine(entry, original, {w.key: w.source}, default=w.key)
    except VariantError as exc:
        return str(exc)
    return check(module)


def _named(w: Winner) -> str:
    """How a note names a winner."""
    return f"`{w.label}`'s kernel" + (f" (job {w.job})" if w.job is not None else "")


def _brief(why: str) -> str:
    """A reason cut to a note's length and escaped: it can quote what a candidate printed."""
    return shown(why, _NOTE_CHARS)
