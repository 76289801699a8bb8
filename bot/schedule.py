"""Schedule ticks: which ops to search again, on which hardware, when a repo's cron fires.

At a tick, for each op and each label the repo's jobs run on, a "schedule" job is due when:

- nothing searched that op on that label within `stale_days`, or ever; or
- the runner's torch or triton changed since the op's newest result. The runner listing
  carries no versions, so they come from finished jobs: each result records the fingerprint of
  the machine that ran it. The label's newest finished result, whatever its op, tells what its
  runners have now; an op whose own newest result ran on other versions is out of date.

An op and label with a job waiting or running is left alone. A result without versions never
counts as a change (nothing is known), and a benchmark tells versions but is not a search.

`next_tick` says when the next tick comes, for the dashboard.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from kevolve.bot.cron import CronError, parse_cron
from kevolve.bot.joboutcome import JobOutcome, job_outcome
from kevolve.bot.jobrecord import Job, JobStatus
from kevolve.runners.fieldread import IntakeError

Versions = tuple[str | None, str | None]  # torch, triton


@dataclass(frozen=True)
class Rerun:
    """One op to search again on one label, and why (shown on its check run)."""

    op: str
    label: str
    reason: str


@dataclass(frozen=True)
class _Result:
    """One op's result in a finished job."""

    op: str
    label: str
    at: datetime
    search: bool
    outcome: JobOutcome  # its job's record, where the result is read from

    @cached_property
    def versions(self) -> Versions | None:
        """The torch and triton versions its fingerprint records; None when it records neither
        or the stored result does not read (nothing is known). Read when first asked: a tick
        needs the newest few of a label's results, not every one."""
        try:
            result = self.outcome.result(self.op)
        except IntakeError:
            return None
        machine = result.machine if result else None
        if machine is None or not (machine.torch or machine.triton):
            return None
        return machine.torch, machine.triton


def reruns(
    ops: Sequence[str], labels: Sequence[str], jobs: Iterable[Job], now: datetime, stale_days: float
) -> list[Rerun]:
    """The searches a tick at `now` queues, op by op, label by label."""
    jobs = list(jobs)
    busy = {(job.op, job.hardware) for job in jobs if job.status.active}
    results = sorted(_results(jobs), key=lambda r: r.at)
    due = []
    for label in labels:
        here = [r for r in results if r.label == label]
        current = next((r.versions for r in reversed(here) if r.versions), None)
        for op in ops:
            if (op, label) in busy or ("*", label) in busy:
                continue
            reason = _reason(op, here, current, now, stale_days)
            if reason:
                due.append(Rerun(op, label, reason))
    return due


def next_tick(cron: str | None, checked: datetime | None) -> datetime | None:
    """The first firing of `cron` after the fleet poller's last check (`checked`): the tick
    whose searches its next pass after that moment queues. None without a schedule, before the
    first check (which only starts the count), or for an expression that does not parse."""
    if cron is None or checked is None:
        return None
    try:
        return parse_cron(cron).next_after(checked)
    except CronError:
        return None


def _reason(
    op: str, here: list[_Result], current: Versions | None, now: datetime, stale_days: float
) -> str | None:
    """Why `op` is due on this label, or None when its newest result is fresh and current."""
    searched = [r for r in here if r.op == op and r.search]
    if not searched:
        return "it was never searched on this hardware"
    last = searched[-1]
    age = now - last.at
    if age > timedelta(days=stale_days):
        return f"its newest search is {age.days} days old (stale after {stale_days:g})"
    if current and last.versions and last.versions != current:
        return (
            f"the runner now has {_show(current)}; the newest search ran on {_show(last.versions)}"
        )
    return None


def _results(jobs: Iterable[Job]) -> Iterable[_Result]:
    """Each op result of the done jobs, finished when the job was last updated."""
    for job in jobs:
        if job.status is not JobStatus.DONE:
            continue
        outcome = job_outcome(job)
        for op in outcome.ops:
            at = job.updated_at or job.created_at
            yield _Result(op, job.hardware, at, job.trigger.searches, outcome)


def _show(versions: Versions) -> str:
    """ "torch 2.5.1, triton 3.1.0"."""
    torch, triton = versions
    return f"torch {torch or '?'}, triton {triton or '?'}"
