"""`/kevolve` comments: check permission, react, answer with one comment, queue or stop jobs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.features.context import FeatureContext, installation_of
from bot.slash import Command, CommandError, command_lines, parse_comment
from bot.storage import Delivery, Job

RUNNERS = frozenset({"write", "maintain", "admin"})  # roles that may run commands
ACTIVE = ("queued", "running")
REACTION = "eyes"
_TRIGGERS = {"optimize": "comment", "benchmark": "benchmark", "recreate": "recreate"}


@dataclass(frozen=True)
class Request:
    """Where a command came from: the repo, issue or PR, comment and author."""

    repo: str
    issue: int
    comment_id: int
    user: str
    ref: str  # jobs from comments run on the default branch, never on fork code
    delivery_id: str
    installation_id: int | None


def handle(ctx: FeatureContext, delivery: Delivery) -> None:
    """Answer a new `/kevolve` comment from a person; ignore bots and other comments."""
    payload = delivery.payload
    body = str(payload.get("comment", {}).get("body") or "")
    if payload.get("action") != "created" or is_bot(payload, ctx.bot_login):
        return
    if not command_lines(body):
        return
    req = request(payload, delivery.delivery_id)
    role = ctx.github.permission(req.repo, req.user)
    if role not in RUNNERS:
        ctx.github.comment(req.repo, req.issue, ctx.messages.refusal(req.user, role))
        return
    ctx.github.react(req.repo, req.comment_id, REACTION)
    try:
        commands = parse_comment(body) or []
        for command in commands:
            _run(ctx, req, command)
    except CommandError as error:
        ctx.github.comment(req.repo, req.issue, error.message)


def is_bot(payload: Mapping[str, Any], bot_login: str) -> bool:
    """True when the comment's sender is a bot account or this app itself."""
    sender = payload.get("sender", {})
    return bool(sender.get("type") == "Bot" or sender.get("login") == bot_login)


def request(payload: Mapping[str, Any], delivery_id: str) -> Request:
    """The `Request` of an `issue_comment` payload."""
    repository = payload["repository"]
    return Request(
        repo=repository["full_name"],
        issue=int(payload["issue"]["number"]),
        comment_id=int(payload["comment"]["id"]),
        user=payload["comment"]["user"]["login"],
        ref="refs/heads/" + repository.get("default_branch", "main"),
        delivery_id=delivery_id,
        installation_id=installation_of(payload),
    )


def job_view(job: Job) -> dict[str, Any]:
    """A job as the status template shows it."""
    fields = ("op", "hardware", "status", "trigger", "budget")
    return {name: getattr(job, name) for name in fields}


def _run(ctx: FeatureContext, req: Request, command: Command) -> None:
    """Carry out one command, answering with one comment."""
    github, messages = ctx.github, ctx.messages
    if command.name == "help":
        github.comment(req.repo, req.issue, messages.help_text())
    elif command.name == "status":
        active = [job_view(j) for j in ctx.storage.jobs(req.repo) if j.status in ACTIVE]
        github.comment(req.repo, req.issue, messages.status_comment(active))
    elif command.name == "stop":
        answer = github.comment(req.repo, req.issue, messages.command_ack(command))
        github.edit_comment(req.repo, answer, messages.status_comment(_stop(ctx, req.repo)))
    else:
        targets = _targets(ctx, command)
        answer = github.comment(req.repo, req.issue, messages.command_ack(command))
        for op, hardware in targets:
            _queue(ctx, req, command, op, hardware, answer)


def _targets(ctx: FeatureContext, command: Command) -> list[tuple[str, str]]:
    """The (op, hardware) pairs a command asks for; "*" stands for every op."""
    if command.name == "recreate":
        return [("*", "*")]
    labels = (command.hardware,) if command.hardware else ctx.hardware
    if not labels:
        raise CommandError(command.text(), "no hardware label is configured; pass `--hardware`.")
    return [(op, label) for op in command.ops or ("*",) for label in labels]


def _queue(
    ctx: FeatureContext, req: Request, command: Command, op: str, hardware: str, answer: int
) -> None:
    """Store one job, remembering the answer comment that its progress edits."""
    budget = command.budget or (ctx.budget if command.name == "optimize" else 0)
    trigger = _TRIGGERS[command.name]
    ctx.storage.add_job(
        req.repo,
        req.ref,
        op,
        hardware,
        trigger,
        budget,
        req.delivery_id,
        installation_id=req.installation_id,
        comment_id=answer,
    )


def _stop(ctx: FeatureContext, repo: str) -> list[dict[str, Any]]:
    """Cancel the repo's queued and running jobs; their views, as cancelled."""
    stopped = [j for j in ctx.storage.jobs(repo) if j.status in ACTIVE]
    for job in stopped:
        ctx.storage.set_job_status(job.id, "cancelled")
    return [{**job_view(j), "status": "cancelled"} for j in stopped]
