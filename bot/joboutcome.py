"""A job's outcome as its record keeps it: each op's stored result and what proposing it did.

The job worker (`bot.jobs`) builds a `JobOutcome` as a job ends and stores its `to_dict()`
(`{"sha", "results", "proposals"}`, the layout records have always had); `job_outcome` reads a
stored record back as data for every reader. A stored result stays as it was kept until it is
asked for, and is then read through `runners.intake.read_result` like a posted one. The record
is the bot's own writing, but rows outlive versions: a part that does not fit is left out rather
than failing a page, and a record kept without proposals says so (`proposals` is None) rather
than claiming that nothing was proposed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from kevolve.bot.jobrecord import Job
from kevolve.runners.intake import CheckedResult, read_result


class ProposalStatus(StrEnum):
    """What proposing one op's result did (`bot.proposals.Proposed.status`)."""

    OPENED = "opened"
    UPDATED = "updated"
    BLOCKED = "blocked"  # its branch holds a person's commits: nothing was pushed over them
    SKIPPED = "skipped"  # refused: a cap, the publish gate or the bot's own check said no

    @property
    def proposed(self) -> bool:
        """Whether a pull request carries the result."""
        return self in (ProposalStatus.OPENED, ProposalStatus.UPDATED)


@dataclass(frozen=True)
class ProposalRecord:
    """One op's proposal as the job recorded it."""

    op: str
    status: ProposalStatus
    reason: str = ""  # why, in the words of the job's check run
    pr: int | None = None  # the pull request opened, updated or blocked
    url: str | None = None
    candidate: str | None = None  # the kernel proposed

    def __post_init__(self) -> None:
        # Its text is taken too (a ValueError names any other): a record always holds a member.
        object.__setattr__(self, "status", ProposalStatus(self.status))

    def to_dict(self) -> dict[str, object]:
        """The entry as the job's record stores it; `job_outcome` reads it back."""
        return {
            "op": self.op,
            "status": self.status.value,
            "reason": self.reason,
            "pr": self.pr,
            "url": self.url,
            "candidate": self.candidate,
        }


@dataclass(frozen=True)
class JobOutcome:
    """What a job's record keeps."""

    sha: str | None = None  # the commit it ran at
    results: Mapping[str, object] = field(default_factory=dict)  # op -> the result, as stored
    proposals: tuple[ProposalRecord, ...] | None = None  # None: the record keeps none

    @property
    def ops(self) -> tuple[str, ...]:
        """The ops it holds a result for, in the order they were searched."""
        return tuple(self.results)

    def result(self, op: str) -> CheckedResult | None:
        """The stored result for `op`, read and checked; None when it holds none; IntakeError
        when the stored one does not fit a `SearchResult`."""
        stored = self.results.get(op)
        return None if stored is None else read_result(stored)

    def proposal(self, op: str) -> ProposalRecord | None:
        """What proposing `op`'s result did (the last word on it); None when nothing was
        recorded for it."""
        return next((p for p in reversed(self.proposals or ()) if p.op == op), None)

    def to_dict(self) -> dict[str, object]:
        """The record as the job worker stores it; a part this outcome does not know (no sha,
        no proposals kept) is left out, as an older record leaves it out."""
        record: dict[str, object] = {} if self.sha is None else {"sha": self.sha}
        record["results"] = dict(self.results)
        if self.proposals is not None:
            record["proposals"] = [p.to_dict() for p in self.proposals]
        return record


def job_outcome(job: Job) -> JobOutcome:
    """The outcome a job's record keeps; an empty one before the job ended."""
    record = job.result
    if not isinstance(record, Mapping):
        return JobOutcome()
    sha = record.get("sha")
    results = record.get("results")
    proposals = record.get("proposals")
    return JobOutcome(
        sha if isinstance(sha, str) else None,
        {op: r for op, r in results.items() if isinstance(op, str)}
        if isinstance(results, Mapping)
        else {},
        tuple(p for p in map(_proposal, proposals) if p is not None)
        if isinstance(proposals, list)
        else None,
    )


def _proposal(value: object) -> ProposalRecord | None:
    """One recorded proposal; None for an entry that is none."""
    if not isinstance(value, Mapping):
        return None
    op, status = value.get("op"), value.get("status")
    if not isinstance(op, str) or status not in {s.value for s in ProposalStatus}:
        return None
    reason, pr = value.get("reason"), value.get("pr")
    url, candidate = value.get("url"), value.get("candidate")
    return ProposalRecord(
        op,
        ProposalStatus(status),
        reason if isinstance(reason, str) else "",
        pr if isinstance(pr, int) and not isinstance(pr, bool) else None,
        url if isinstance(url, str) else None,
        candidate if isinstance(candidate, str) else None,
    )
