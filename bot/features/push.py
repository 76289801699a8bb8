"""Pushes to the default branch: a job per changed op and hardware label, each with a check run.

The labels are the config's `hardware` list, the bot's own (KEVOLVE_HARDWARE) when it names
none, or with "auto" the GPU labels of the runners the repo may use at the time of the push.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

from kevolve.bot.checkrun import CHECK_NAME, check_name
from kevolve.bot.features.context import FeatureContext, FeatureTable, installation_of
from kevolve.bot.github import GitHub
from kevolve.bot.jobrecord import JobStatus, Trigger, op_kernels
from kevolve.bot.quotas import Admitted, JobOrder
from kevolve.bot.repoconfig import AUTO, RepoConfig
from kevolve.bot.storage import Delivery
from kevolve.harness.spec.load import SpecError
from kevolve.harness.spec.problem import Problem

# (client, repo, sha) -> what the repo's config declares there, read through that client
LoadConfig = Callable[[GitHub, str, str], RepoConfig]
CONFIG_FILES = frozenset({"pyproject.toml", "kevolve.toml"})


def register(table: FeatureTable, load_config: LoadConfig) -> None:
    """Pushes, whatever their action (GitHub sends none)."""
    table.add("push", None, partial(handle, load_config))


def handle(load_config: LoadConfig, ctx: FeatureContext, delivery: Delivery) -> None:
    """Queue jobs for the ops a default-branch push changed; a broken config fails a check."""
    payload = delivery.payload
    repo, sha = payload["repository"]["full_name"], str(payload.get("after", ""))
    files = changed_files(payload.get("commits", []))
    if not on_default_branch(payload) or not files:
        return
    try:
        config = load_config(ctx.github, repo, sha)
    except SpecError as error:
        title, summary = ctx.messages.config_broken(error)
        check = ctx.github.start_check(repo, sha, CHECK_NAME, title, str(error))
        ctx.github.finish_check(repo, check, "failure", title, summary)
        return
    labels = hardware_labels(ctx, repo, config)
    refused: list[tuple[str, str, Admitted]] = []
    for problem in changed_ops(config.ops, files):
        for hardware in labels:
            admitted = ctx.quotas().admit(_order(payload, delivery, problem, hardware, ctx))
            if admitted.job_id is None:
                refused.append((problem.name, hardware, admitted))
            elif admitted.decision == "queued" or _unfinished(ctx, admitted.job_id, delivery):
                _show(ctx, repo, sha, problem.name, hardware, admitted.job_id)
            # else: the same commit pushed again, and its job is already there
    if refused:
        summary = ctx.messages.render("admissions", rows=refused, limits=ctx.limits)
        title = ctx.messages.queue_full_title(len(refused))
        check = ctx.github.start_check(repo, sha, CHECK_NAME, title, summary)
        ctx.github.finish_check(repo, check, "neutral", title, summary)


def _order(
    payload: Mapping[str, Any],
    delivery: Delivery,
    problem: Problem,
    hardware: str,
    ctx: FeatureContext,
) -> JobOrder:
    """The job a push asks for, on behalf of whoever pushed, with the op's kernel file as the
    config at the pushed commit names it."""
    sender = payload.get("sender") or {}
    return JobOrder(
        repo=payload["repository"]["full_name"],
        sha=str(payload.get("after", "")),
        op=problem.name,
        hardware=hardware,
        trigger=Trigger.PUSH,
        budget=ctx.budget,
        delivery_id=delivery.delivery_id,
        requester=str(sender.get("login") or ""),
        installation_id=installation_of(payload),
        comment_id=None,
        status=JobStatus.NEW,  # not claimable until its check run exists
        kernels=op_kernels([problem]),
    )


def _show(ctx: FeatureContext, repo: str, sha: str, op: str, hardware: str, job_id: int) -> None:
    """Give a new job its check run, then queue it."""
    title, summary = ctx.messages.job_queued(job_id, op, hardware, sha)
    check_id = ctx.github.start_check(repo, sha, check_name(op, hardware), title, summary)
    ctx.storage.set_job_status(job_id, JobStatus.QUEUED, check_id=check_id)


def _unfinished(ctx: FeatureContext, job_id: int, delivery: Delivery) -> bool:
    """Whether the job is this delivery's own, left before its check run (a retried delivery)."""
    job = ctx.storage.job(job_id)
    return (
        job is not None and job.status is JobStatus.NEW and job.delivery_id == delivery.delivery_id
    )


def hardware_labels(ctx: FeatureContext, repo: str, config: RepoConfig) -> tuple[str, ...]:
    """The labels a repo's jobs run on now (the runners are listed only for "auto")."""
    auto = config.settings.hardware == AUTO
    listed = [label for r in ctx.github.runners(repo) for label in r.labels] if auto else []
    return config.settings.labels(ctx.hardware, listed)


def on_default_branch(payload: Mapping[str, Any]) -> bool:
    """True for a push that updates the default branch of a repo that is not a fork."""
    repository = payload["repository"]
    default = "refs/heads/" + str(repository.get("default_branch", ""))
    return (
        payload.get("ref") == default and not repository.get("fork") and not payload.get("deleted")
    )


def changed_files(commits: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every path the pushed commits added, modified or removed."""
    return {
        path
        for commit in commits
        for kind in ("added", "modified", "removed")
        for path in commit.get(kind, [])
    }


def op_files(problem: Problem) -> set[str]:
    """The repo paths an op depends on: its kernel, reference, inputs, FLOPs and config files."""
    specs = [problem.kernel, problem.reference, problem.inputs, problem.flops]
    paths = {spec.split(":", 1)[0] for spec in specs if spec}
    if problem.source is not None and problem.source.is_relative_to(problem.root):
        paths.add(problem.source.relative_to(problem.root).as_posix())
    return paths


def changed_ops(problems: Iterable[Problem], files: set[str]) -> list[Problem]:
    """The ops whose files or config the push touched; every op when the config changed."""
    problems = list(problems)
    if files & CONFIG_FILES:
        return problems
    return [p for p in problems if op_files(p) & files]
