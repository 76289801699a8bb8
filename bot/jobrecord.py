"""The job record: one stored optimization job, with the words for its status and its trigger,
and the kernel files it is about.

Both words are `StrEnum`s whose values are the text the database has always held, so that a
database an earlier version wrote reads unchanged and a status compares equal to its text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from kevolve.harness.spec.problem import Problem


class JobStatus(StrEnum):
    """Where a job stands."""

    NEW = "new"  # stored, not claimable until its check run exists
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"  # by `/kevolve stop`

    @property
    def active(self) -> bool:
        """Whether a job in this status may still run."""
        return self in ACTIVE_JOBS


ACTIVE_JOBS = (JobStatus.NEW, JobStatus.QUEUED, JobStatus.RUNNING)


class Trigger(StrEnum):
    """What asked for a job."""

    PUSH = "push"  # a push to the default branch changed an op
    COMMENT = "comment"  # `/kevolve optimize`
    BENCHMARK = "benchmark"  # `/kevolve benchmark`: the current kernel timed, nothing searched
    RECREATE = "recreate"  # `/kevolve recreate`: a fresh search for a new pull request
    SCHEDULE = "schedule"  # the repo's schedule fired
    HARDWARE = "hardware"  # a runner with a new hardware label joined the fleet

    @property
    def searches(self) -> bool:
        """Whether the job searches for a faster kernel (a benchmark only times the current)."""
        return self is not Trigger.BENCHMARK

    def evaluations(self, budget: int) -> int:
        """How many candidates a job of this trigger and budget judges: a benchmark judges the
        current kernel alone, whatever budget it was given."""
        return max(1, budget) if self.searches else 1


@dataclass(frozen=True)
class OpKernel:
    """One op a job is about and its kernel file, as the config at the job's commit names it."""

    op: str
    path: str  # relative to the repo's root


def op_kernels(problems: Iterable[Problem]) -> tuple[OpKernel, ...]:
    """The (op, kernel file) of each problem with a kernel file in its repo (every repo op)."""
    return tuple(OpKernel(p.name, p.kernel) for p in problems if p.kernel is not None)


@dataclass(frozen=True)
class Job:
    """One optimization job: an op of a repo at a commit, on one hardware label."""

    id: int
    repo: str
    sha: str
    op: str
    hardware: str
    trigger: Trigger
    budget: int
    status: JobStatus
    created_at: datetime
    delivery_id: str | None
    result: Mapping[str, Any] | None
    installation_id: int | None = None
    comment_id: int | None = None
    check_id: int | None = None
    pr_number: int | None = None
    candidate: str | None = None
    updated_at: datetime | None = None
    requester: str | None = None
    reason: str | None = None  # why it failed or was stopped, as its check run says
    # What it is about, fixed from the config at its commit when queued (or, for a job queued on
    # a branch name, when it starts); None: not recorded (a row an earlier version stored).
    kernels: tuple[OpKernel, ...] | None = None

    def __post_init__(self) -> None:
        # Their text is taken too (a ValueError names any other): a job always holds members.
        object.__setattr__(self, "trigger", Trigger(self.trigger))
        object.__setattr__(self, "status", JobStatus(self.status))

    def kernel(self, op: str) -> str | None:
        """The kernel file recorded for `op`; None when the job recorded none for it."""
        return next((k.path for k in self.kernels or () if k.op == op), None)
