"""The repos page: each repo's ops by hardware, from the bot's jobs and their results.

Per op and hardware label: the newest result's best kernel against the repo's current kernel,
eager PyTorch and torch.compile (where they were timed), its trend over earlier results, the
pull request it led to (merged or rejected once it closed), what the bot did with it (proposed,
or refused and why: the repo's own `min_speedup` decided, not the default), and the newest job
whatever its outcome. Per repo: its schedule, and when the next scheduled run comes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from kevolve.bot.fleet_store import ScheduleMark
from kevolve.bot.joboutcome import JobOutcome, ProposalStatus, job_outcome
from kevolve.bot.jobrecord import Job, JobStatus
from kevolve.bot.pull_store import ClosedPull
from kevolve.bot.schedule import next_tick
from kevolve.harness.evaluation import CaseTiming, Evaluation, geometric_mean
from kevolve.harness.evaluation import with_seed_compile as borrow_compile
from kevolve.harness.search.result import MIN_SPEEDUP, GateResult
from kevolve.runners.fieldread import IntakeError
from kevolve.runners.intake import CheckedResult


@dataclass(frozen=True)
class PullLink:
    """The pull request a result led to (as last known to the bot)."""

    number: int
    url: str | None
    status: str  # opened, updated, blocked, ...; merged or rejected once it closed


@dataclass(frozen=True)
class CaseRow:
    """One timed case of a best kernel: its time against the current kernel and PyTorch's."""

    shape: tuple[int, ...]
    dtype: str
    best_ms: float
    current_ms: float | None
    eager_ms: float | None
    compile_ms: float | None
    speedup: float | None


@dataclass
class OpCell:
    """One op on one hardware label."""

    op: str
    hardware: str
    newest: Job  # the newest job that searched it, whatever its outcome
    result_job: Job | None = None  # the newest finished job with a result for it
    timed: bool = False
    speedup: float | None = None  # best vs the current kernel, geometric mean over cases
    vs_eager: float | None = None
    vs_compile: float | None = None
    cases: list[CaseRow] = field(default_factory=list)
    trend: list[float] = field(default_factory=list)  # speedups of finished results, oldest first
    pull: PullLink | None = None
    gate: str = ""  # what the bot did with the newest result: proposed, refused and why
    unreadable: str = ""  # why the newest result cannot be read, when it cannot


@dataclass
class RepoRow:
    """A repo and its ops."""

    repo: str
    cells: list[OpCell]
    active: int  # jobs new, queued or running
    failed: int
    last: datetime


@dataclass(frozen=True)
class SchedulePlan:
    """A repo's schedule as its pages show it."""

    cron: str | None  # None: its config has no schedule, or the fleet poller never read it
    checked: datetime | None  # when the fleet poller last checked it
    next_at: datetime | None  # the next tick; None before the first check
    due: bool  # the next tick has come: the poller's next pass queues its searches


def schedule_plan(mark: ScheduleMark, now: datetime) -> SchedulePlan:
    """What a repo's pages say of its schedule at `now`."""
    upcoming = next_tick(mark.cron, mark.checked)
    return SchedulePlan(mark.cron, mark.checked, upcoming, upcoming is not None and upcoming <= now)


def overview(
    jobs: Iterable[Job], repos: set[str] | None = None, closed: Iterable[ClosedPull] = ()
) -> list[RepoRow]:
    """Every repo with jobs (or those in `repos`), its ops by hardware, repo by repo; a pull
    request among the `closed` ones shows how it closed."""
    by_repo: dict[str, list[Job]] = {}
    for job in jobs:
        if repos is None or job.repo in repos:
            by_repo.setdefault(job.repo, []).append(job)
    ends: dict[str, dict[int, str]] = {}
    for pull in closed:
        ends.setdefault(pull.repo, {})[pull.number] = pull.outcome
    return [_repo(name, by_repo[name], ends.get(name, {})) for name in sorted(by_repo)]


def _repo(name: str, jobs: Sequence[Job], ends: Mapping[int, str]) -> RepoRow:
    """One repo's row from its jobs (oldest first) and how its closed pull requests ended."""
    cells: dict[tuple[str, str], OpCell] = {}
    for job in jobs:
        outcome = job_outcome(job)
        for op in outcome.ops or ([job.op] if job.op != "*" else []):
            cell = cells.setdefault((op, job.hardware), OpCell(op, job.hardware, job))
            cell.newest = job
            if job.status is JobStatus.DONE and op in outcome.results:
                _take(cell, job, outcome)
    for cell in cells.values():
        if cell.pull is not None and cell.pull.number in ends:
            cell.pull = replace(cell.pull, status=ends[cell.pull.number])
    return RepoRow(
        name,
        [cells[k] for k in sorted(cells)],
        sum(1 for j in jobs if j.status.active),
        sum(1 for j in jobs if j.status is JobStatus.FAILED),
        max(j.updated_at or j.created_at for j in jobs),
    )


def _take(cell: OpCell, job: Job, outcome: JobOutcome) -> None:
    """Fold a finished job's outcome for the cell's op into it (newer results replace); a
    result that does not fit a `SearchResult` is shown as such."""
    cell.result_job = job
    try:
        result = outcome.result(cell.op)
        cell.unreadable = ""
    except IntakeError as exc:
        result, cell.unreadable = None, f"the stored result cannot be read: {exc}"[:300]
    ev = result.best.evaluation if result and result.best else None
    seed = result.baseline if result else None
    cell.timed = bool(ev and ev.timed)
    cell.cases = _cases(ev, seed) if ev and ev.timed else []
    cell.speedup = _mean([c.speedup for c in cell.cases])
    timings = borrow_compile(ev.timings, seed) if ev else []
    cell.vs_eager = _mean([t.speedup_vs_reference for t in timings])
    cell.vs_compile = _mean([_vs_compile(t) for t in timings])
    if cell.speedup is not None:
        cell.trend.append(cell.speedup)
    cell.gate = _judged(outcome, cell.op, result)[:300]
    cell.pull = _pull(outcome, cell.op) or cell.pull


def _judged(outcome: JobOutcome, op: str, result: CheckedResult | None) -> str:
    """What the bot did with the op's result, as its cell says it: proposed, blocked or refused
    (with the reason its check run gave), or not judged; for a record kept without proposals,
    the publish gate recomputed at the default `min_speedup`, labelled so."""
    if outcome.proposals is None:
        return _recomputed(result.gate()) if result else ""
    proposal = outcome.proposal(op)
    if proposal is None:
        return "not judged: the job recorded no proposal for this op"
    if proposal.status.proposed:
        return "proposed" + (f" as PR #{proposal.pr}" if proposal.pr is not None else "")
    if proposal.status is ProposalStatus.BLOCKED:
        return f"blocked: {proposal.reason}"
    return f"refused: {proposal.reason}"


def _recomputed(gate: GateResult) -> str:
    """The publish gate recomputed here, and said to be: passed, or why not."""
    verdict = "passed" if gate.passed else "; ".join(gate.reasons)
    return f"recomputed at the default min_speedup ({MIN_SPEEDUP:.2f}): {verdict}"


def _cases(ev: Evaluation, seed: Evaluation | None) -> list[CaseRow]:
    """The best kernel's timed cases, with the current kernel's and PyTorch's times."""
    rows = []
    for t in borrow_compile(ev.timings, seed):
        fastest = t.fastest_compiled()
        rows.append(
            CaseRow(
                tuple(t.shape),
                t.dtype,
                t.candidate.median_ms,
                t.baseline.median_ms if t.baseline else None,
                t.reference.median_ms if t.reference else None,
                fastest.timing.median_ms if fastest and fastest.timing else None,
                t.speedup,
            )
        )
    return rows


def _vs_compile(t: CaseTiming) -> float | None:
    """The candidate's speedup over the fastest torch.compile mode on a case, if timed."""
    fastest = t.fastest_compiled()
    if fastest is None or fastest.timing is None or t.candidate.median_ms <= 0:
        return None
    return fastest.timing.median_ms / t.candidate.median_ms


def _mean(values: Sequence[float | None]) -> float | None:
    """The geometric mean of the positive values; None when there is none."""
    return geometric_mean([v for v in values if v is not None and v > 0])


def _pull(outcome: JobOutcome, op: str) -> PullLink | None:
    """The pull request a job's proposal for `op` opened, updated or found blocked, if any."""
    proposal = outcome.proposal(op)
    if proposal is None or proposal.pr is None:
        return None
    url = proposal.url
    safe = url if url and url.startswith(("https://", "http://")) else None
    return PullLink(proposal.pr, safe, proposal.status.value)
