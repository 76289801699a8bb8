"""Closed kevolve pull requests: merged is the new baseline, unmerged is not proposed again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.features.context import FeatureContext
from bot.storage import Delivery

BRANCH_PREFIX = "kevolve/"


def handle(ctx: FeatureContext, delivery: Delivery) -> None:
    """Record the outcome of a closed `kevolve/<op>/<hardware>` pull request as a done job."""
    payload = delivery.payload
    if payload.get("action") != "closed":
        return
    repo = payload["repository"]["full_name"]
    pull = payload["pull_request"]
    head = pull["head"]
    target = branch_target(str(head.get("ref", "")))
    if target is None or _head_repo(head) != repo:
        return
    op, hardware = target
    trigger = outcome(pull)
    ctx.storage.add_job(
        repo, head["sha"], op, hardware, trigger, 0, delivery.delivery_id, status="done"
    )


def branch_target(branch: str) -> tuple[str, str] | None:
    """The (op, hardware) of a `kevolve/<op>/<hardware>` branch; None for any other branch."""
    if not branch.startswith(BRANCH_PREFIX):
        return None
    parts = branch[len(BRANCH_PREFIX) :].split("/")
    return (parts[0], parts[1]) if len(parts) == 2 and all(parts) else None


def outcome(pull: Mapping[str, Any]) -> str:
    """ "merged" (the new baseline) or "rejected" (not to be proposed again)."""
    return "merged" if pull.get("merged") else "rejected"


def _head_repo(head: Mapping[str, Any]) -> str | None:
    """The full name of the repo the head branch lives in."""
    repo = head.get("repo") or {}
    name = repo.get("full_name")
    return str(name) if name else None
