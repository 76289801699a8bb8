"""Closed kevolve pull requests: merged is the new baseline, unmerged is not proposed again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kevolve.bot.features.context import FeatureContext, FeatureTable
from kevolve.bot.joboutcome import job_outcome
from kevolve.bot.jobrecord import Job
from kevolve.bot.proposals import target
from kevolve.bot.pull_store import ClosedPull, PullOutcome
from kevolve.bot.storage import Delivery


def register(table: FeatureTable) -> None:
    """Pull requests as they close; opened, edited and the rest are not this feature's."""
    table.add("pull_request", "closed", handle)


def handle(ctx: FeatureContext, delivery: Delivery) -> None:
    """Record a closed kevolve pull request, and the kernel it proposed last."""
    payload = delivery.payload
    repo = payload["repository"]["full_name"]
    pull = payload["pull_request"]
    head = pull["head"]
    found = target(str(head.get("ref", "")))
    if found is None or _head_repo(head) != repo:
        return
    op, hardware = found
    number = int(pull["number"])
    closed = ClosedPull(
        repo=repo,
        number=number,
        op=op,
        hardware=hardware,
        sha=str(head["sha"]),
        candidate=proposed_candidate(ctx.storage.jobs(repo), number),
        outcome=outcome(pull),
        closed_at=ctx.storage.now(),
        delivery_id=delivery.delivery_id,
    )
    ctx.pulls().record(closed)


def proposed_candidate(jobs: list[Job], number: int) -> str | None:
    """The kernel id last proposed in pull request `number`, from the jobs' recorded proposals."""
    for job in reversed(jobs):
        for proposal in job_outcome(job).proposals or ():
            if proposal.pr == number and proposal.candidate:
                return proposal.candidate
    return None


def outcome(pull: Mapping[str, Any]) -> PullOutcome:
    """Merged (the new baseline) or rejected (not to be proposed again)."""
    return PullOutcome.MERGED if pull.get("merged") else PullOutcome.REJECTED


def _head_repo(head: Mapping[str, Any]) -> str | None:
    """The full name of the repo the head branch lives in."""
    repo = head.get("repo") or {}
    name = repo.get("full_name")
    return str(name) if name else None
