"""`/kevolve` comments: check permission, react, answer with one comment, queue or stop jobs.

Every comment gets at most one answer, whatever it holds: the first few commands run (the
rest are named as ignored), each queued job passes the quotas (merged into a job like it, or
refused with the cap and the fix), and a person without permission is answered once an hour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kevolve.bot.features.context import FeatureContext, FeatureTable, installation_of
from kevolve.bot.jobrecord import Job, JobStatus, Trigger
from kevolve.bot.proposals import PREFIX, target
from kevolve.bot.quotas import Admitted, JobOrder
from kevolve.bot.slash import Command, CommandError, command_lines, parse_line
from kevolve.bot.storage import Delivery

RUNNERS = frozenset({"write", "maintain", "admin"})  # roles that may run commands
LISTED = (JobStatus.QUEUED, JobStatus.RUNNING)  # what `status` lists and `stop` cancels
REACTION = "eyes"
QUEUEING = ("optimize", "benchmark", "recreate")
_TRIGGERS = {
    "optimize": Trigger.COMMENT,
    "benchmark": Trigger.BENCHMARK,
    "recreate": Trigger.RECREATE,
}


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


def register(table: FeatureTable) -> None:
    """New comments only: an edited or deleted command is not run again."""
    table.add("issue_comment", "created", handle)


def handle(ctx: FeatureContext, delivery: Delivery) -> None:
    """Answer a new `/kevolve` comment from a person; ignore bots and other comments."""
    payload = delivery.payload
    body = str(payload.get("comment", {}).get("body") or "")
    if is_bot(payload, ctx.bot_login):
        return
    lines = command_lines(body)
    if not lines:
        return
    req = request(payload, delivery.delivery_id)
    role = ctx.github.permission(req.repo, req.user)
    if role not in RUNNERS:
        reason = f"permission {role}"
        if ctx.quotas().answer_refusal(req.user, req.repo, req.delivery_id, reason):
            ctx.github.comment(req.repo, req.issue, ctx.messages.refusal(req.user, role))
        return
    ctx.github.react(req.repo, req.comment_id, REACTION)
    limit = ctx.limits.commands_per_comment
    try:
        commands = [parse_line(line) for line in lines[:limit]]
    except CommandError as error:
        ctx.github.comment(req.repo, req.issue, ctx.messages.command_error(error))
        return
    ignored = len(lines) - len(commands)
    answer = None
    if any(command.name in QUEUEING for command in commands):  # its jobs edit this answer
        answer = ctx.github.comment(req.repo, req.issue, _acks(ctx, commands))
    sections = [_run(ctx, req, command, answer) for command in commands]
    if ignored:
        sections.append(ctx.messages.render("cap", kind="commands", limit=limit, count=ignored))
    text = "\n\n".join(section.strip() for section in sections) + "\n"
    if answer is None:
        ctx.github.comment(req.repo, req.issue, text)
    else:
        ctx.github.edit_comment(req.repo, answer, text)


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


def _acks(ctx: FeatureContext, commands: list[Command]) -> str:
    """The first text of an answer that jobs will edit: what each command is about to do."""
    return "\n\n".join(ctx.messages.command_ack(c).strip() for c in commands) + "\n"


def _run(ctx: FeatureContext, req: Request, command: Command, answer: int | None) -> str:
    """Carry out one command; its section of the answer."""
    messages = ctx.messages
    if command.name == "help":
        return messages.help_text()
    if command.name == "status":
        active = [job_view(j) for j in ctx.storage.jobs(req.repo) if j.status in LISTED]
        return messages.status_comment(active)
    if command.name == "stop":
        return messages.status_comment(_stop(ctx, req.repo))
    limit = ctx.limits.budget
    if command.budget is not None and command.budget > limit:
        return messages.render(
            "cap", kind="budget", limit=limit, count=command.budget, command=command.text()
        )
    try:
        targets = _targets(ctx, req, command)
    except CommandError as error:
        return messages.command_error(error)
    if not targets:
        return messages.render("cap", kind="recreate", limit=0, count=0, command=command.text())
    admitted = [_queue(ctx, req, command, op, hardware, answer) for op, hardware in targets]
    rows = [(op, hw, a) for (op, hw), a in zip(targets, admitted, strict=True)]
    return messages.command_ack(command) + "\n" + _outcomes(ctx, rows)


def _outcomes(ctx: FeatureContext, rows: list[tuple[str, str, Admitted]]) -> str:
    """Each target's outcome: queued, merged or refused with the cap and the fix."""
    return ctx.messages.render("admissions", rows=rows, limits=ctx.limits)


def _targets(ctx: FeatureContext, req: Request, command: Command) -> list[tuple[str, str]]:
    """The (op, hardware) pairs a command asks for; "*" stands for every op.

    `recreate` asks for the open kevolve pull requests of its ops (default: all), each on the
    hardware label its branch names.
    """
    if command.name == "recreate":
        pulls = ctx.github.open_pulls(req.repo, PREFIX)
        found = [target(pull.head) for pull in pulls]
        pairs = [pair for pair in found if pair and (not command.ops or pair[0] in command.ops)]
        return list(dict.fromkeys(pairs))
    labels = (command.hardware,) if command.hardware else ctx.hardware
    if not labels:
        raise CommandError(command.text(), "no hardware label is configured; pass `--hardware`.")
    return [(op, label) for op in command.ops or ("*",) for label in labels]


def _queue(
    ctx: FeatureContext, req: Request, command: Command, op: str, hardware: str, answer: int | None
) -> Admitted:
    """Admit one job against the quotas, remembering the answer comment its progress edits.

    A search judges what the command asked for, else the bot's default (a recreated pull
    request comes from a fresh search too); a benchmark judges the current kernel alone."""
    trigger = _TRIGGERS[command.name]
    asked = command.budget or min(ctx.budget, ctx.limits.budget)
    order = JobOrder(
        repo=req.repo,
        sha=req.ref,
        op=op,
        hardware=hardware,
        trigger=trigger,
        budget=trigger.evaluations(asked),
        delivery_id=req.delivery_id,
        requester=req.user,
        installation_id=req.installation_id,
        comment_id=answer,
    )
    return ctx.quotas().admit(order)


def _stop(ctx: FeatureContext, repo: str) -> list[dict[str, Any]]:
    """Cancel the repo's queued and running jobs; their views, as cancelled."""
    stopped = [j for j in ctx.storage.jobs(repo) if j.status in LISTED]
    for job in stopped:
        ctx.storage.set_job_status(job.id, JobStatus.CANCELLED)
    return [{**job_view(j), "status": JobStatus.CANCELLED} for j in stopped]
