"""Pushes to the default branch: a job per changed op and hardware label, each with a check run.

The labels are the config's `hardware` list, the bot's own (KEVOLVE_HARDWARE) when it names
none, or with "auto" the GPU labels of the runners the repo may use at the time of the push.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from bot.features.context import FeatureContext, installation_of
from bot.storage import Delivery
from harness.problem import Problem
from harness.repo_config import AUTO, RepoConfig
from harness.spec import SpecError

LoadConfig = Callable[[str, str], RepoConfig]  # (repo, sha) -> what its config declares there
CONFIG_FILES = frozenset({"pyproject.toml", "kevolve.toml"})
CHECK_NAME = "kevolve"


def handle(ctx: FeatureContext, load_config: LoadConfig, delivery: Delivery) -> None:
    """Queue jobs for the ops a default-branch push changed; a broken config fails a check."""
    payload = delivery.payload
    repo, sha = payload["repository"]["full_name"], str(payload.get("after", ""))
    files = changed_files(payload.get("commits", []))
    if not on_default_branch(payload) or not files:
        return
    try:
        config = load_config(repo, sha)
    except SpecError as error:
        check = ctx.github.start_check(repo, sha, CHECK_NAME, broken_title(), str(error))
        ctx.github.finish_check(repo, check, "failure", broken_title(), broken_summary(error))
        return
    labels = hardware_labels(ctx, repo, config)
    for problem in changed_ops(config.ops, files):
        for hardware in labels:
            op = problem.name
            job_id, new = ctx.storage.place_job(
                repo,
                sha,
                op,
                hardware,
                "push",
                ctx.budget,
                delivery.delivery_id,
                status="new",  # not claimable until its check run exists
                installation_id=installation_of(payload),
            )
            if not new and not _unfinished(ctx, job_id, delivery.delivery_id):
                continue  # the same commit pushed again: its job is already there
            title, summary = job_check(job_id, op, hardware, sha)
            name = check_name(op, hardware)
            check_id = ctx.github.start_check(repo, sha, name, title, summary)
            ctx.storage.set_job_status(job_id, "queued", check_id=check_id)


def _unfinished(ctx: FeatureContext, job_id: int, delivery_id: str) -> bool:
    """Whether the job is this delivery's own, left before its check run (a retried delivery)."""
    job = ctx.storage.job(job_id)
    return job is not None and job.status == "new" and job.delivery_id == delivery_id


def hardware_labels(ctx: FeatureContext, repo: str, config: RepoConfig) -> tuple[str, ...]:
    """The labels a repo's jobs run on now (the runners are listed only for "auto")."""
    auto = config.settings.hardware == AUTO
    listed = [label for r in ctx.github.runners(repo) for label in r.labels] if auto else []
    return config.settings.labels(ctx.hardware, listed)


def check_name(op: str, hardware: str) -> str:
    """The check run of a job: one per op and hardware label."""
    return f"{CHECK_NAME}: {op} on {hardware}"


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


def broken_title() -> str:
    """The check-run title for a config that cannot be read."""
    return "kevolve config is broken: no jobs were queued"


def broken_summary(error: SpecError) -> str:
    """The check-run summary naming the file, the field, what is wrong and the fix."""
    return (
        f"kevolve could not read its config, so nothing was queued.\n\n"
        f"- **File:** `{error.path}`\n"
        f"- **Field:** `{error.field or '(whole file)'}`\n"
        f"- **Problem:** {error.problem}\n"
        f"- **Fix:** {error.fix}\n"
    )


def job_check(job_id: int, op: str, hardware: str, sha: str) -> tuple[str, str]:
    """The title and summary of a queued job's check run."""
    title = f"Job #{job_id} queued: {op} on {hardware}"
    summary = f"kevolve job #{job_id} will search for a faster `{op}` on `{hardware}` at `{sha}`."
    return title, summary
