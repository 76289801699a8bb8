"""Feature handlers: hand-built events dispatched against the one fake GitHub and real storage."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kevolve.bot.features import FeatureContext, feature_table
from kevolve.bot.github import SelfHostedRunner
from kevolve.bot.jobrecord import JobStatus, OpKernel, Trigger
from kevolve.bot.messages import Messages
from kevolve.bot.pull_store import ClosedPull, PullOutcome
from kevolve.bot.repoconfig import load_config
from kevolve.bot.storage import Delivery, Storage

from tests.bot.conftest import CLOCK
from tests.fakes.github import FakeGitHub

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"
REPO = "octo/kernels"
SHA = "c" * 40
HARDWARE = ("h100", "a10g")
BOT = "kevolve[bot]"
MESSAGES = Messages(ROOT / "templates" / "github")
NOW = datetime(2025, 1, 2, tzinfo=UTC)
USAGE = (
    "Usage: `/kevolve optimize [OP...] [--hardware LABEL] [--budget N]`, `/kevolve status`, "
    "`/kevolve benchmark [OP]`, `/kevolve stop`, `/kevolve recreate [OP...]` or "
    "`/kevolve help`, each on a line of its own."
)


@pytest.fixture
def github() -> FakeGitHub:
    fake = FakeGitHub()
    fake.roles[(REPO, "alice")] = "write"
    fake.roles[(REPO, "rita")] = "read"
    return fake


@pytest.fixture
def ctx(github: FakeGitHub, storage: Storage) -> FeatureContext:
    return FeatureContext(github, storage, MESSAGES, BOT, HARDWARE)


def dispatch(ctx: FeatureContext, event: str, payload: dict[str, Any], spec: Path = DEMO) -> None:
    """Hand one delivery to the handler the dispatcher would pick, if any takes it."""
    action = payload.get("action")
    delivery = Delivery("d-1", event, action, payload, NOW, "pending", 0, None)
    handler = feature_table(lambda _github, _repo, _sha: load_config(spec)).lookup(event, action)
    if handler is not None:
        handler(ctx, delivery)


def answers(github: FakeGitHub, event: dict[str, Any]) -> list[str]:
    """The bodies of the comments the bot posted, the command comment left out."""
    command_id = event["comment"]["id"]
    return [c.body for key, c in github.comments.items() if key != command_id]


def comment_event(
    github: FakeGitHub, body: str, user: str = "alice", kind: str = "User"
) -> dict[str, Any]:
    """A person's comment, posted on the fake; its `issue_comment` `created` payload."""
    comment_id = github.comment(REPO, 7, body)
    return {
        "action": "created",
        "issue": {"number": 7, "title": "Faster softmax?"},
        "comment": {"id": comment_id, "body": body, "user": {"login": user, "type": kind}},
        "repository": {"full_name": REPO, "default_branch": "main"},
        "sender": {"login": user, "type": kind},
    }


def push_event(ref: str = "refs/heads/main", modified: tuple[str, ...] = ()) -> dict[str, Any]:
    """A `push` payload with one commit modifying `modified`."""
    commit = {"id": SHA, "added": [], "modified": list(modified), "removed": []}
    return {
        "ref": ref,
        "after": SHA,
        "deleted": False,
        "commits": [commit],
        "repository": {"full_name": REPO, "default_branch": "main", "fork": False},
        "sender": {"login": "alice", "type": "User"},
    }


def closed_event(merged: bool, branch: str = "kevolve/softmax/h100") -> dict[str, Any]:
    """A `pull_request` `closed` payload from a branch of the repo itself."""
    head = {"ref": branch, "sha": SHA, "repo": {"full_name": REPO}}
    pull = {"number": 3, "merged": merged, "head": head, "base": {"ref": "main"}}
    return {"action": "closed", "pull_request": pull, "repository": {"full_name": REPO}}


def test_a_writer_optimize_reacts_answers_once_and_queues_jobs(
    ctx: FeatureContext, github: FakeGitHub, storage: Storage
) -> None:
    event = comment_event(github, "Please\n/kevolve optimize softmax rmsnorm --budget 30")
    dispatch(ctx, "issue_comment", event)
    assert github.comments[event["comment"]["id"]].reactions == ["eyes"]
    [answer] = answers(github, event)
    assert answer.startswith("Queued `/kevolve optimize softmax rmsnorm --budget 30`")
    jobs = storage.jobs(REPO)
    assert [(j.op, j.hardware, j.trigger, j.budget) for j in jobs] == [
        ("softmax", "h100", "comment", 30),
        ("softmax", "a10g", "comment", 30),
        ("rmsnorm", "h100", "comment", 30),
        ("rmsnorm", "a10g", "comment", 30),
    ]
    answer_id = max(github.comments)
    assert all(j.status == "queued" and j.comment_id == answer_id for j in jobs)
    assert {j.sha for j in jobs} == {"refs/heads/main"}


def test_optimize_without_ops_queues_every_op_on_the_named_hardware(
    ctx: FeatureContext, github: FakeGitHub, storage: Storage
) -> None:
    dispatch(ctx, "issue_comment", comment_event(github, "/kevolve optimize --hardware l4"))
    assert [(j.op, j.hardware, j.budget) for j in storage.jobs(REPO)] == [("*", "l4", ctx.budget)]


def test_a_reader_is_refused_once_and_nothing_runs(
    ctx: FeatureContext, github: FakeGitHub, storage: Storage
) -> None:
    event = comment_event(github, "/kevolve optimize softmax", user="rita")
    dispatch(ctx, "issue_comment", event)
    assert answers(github, event) == [MESSAGES.refusal("rita", "read")]
    assert github.comments[event["comment"]["id"]].reactions == []
    assert storage.jobs() == []


@pytest.mark.parametrize(("user", "kind"), [("dependabot[bot]", "Bot"), (BOT, "User")])
def test_bot_comments_are_ignored(
    ctx: FeatureContext, github: FakeGitHub, storage: Storage, user: str, kind: str
) -> None:
    github.roles[(REPO, user)] = "admin"
    event = comment_event(github, "/kevolve optimize", user=user, kind=kind)
    dispatch(ctx, "issue_comment", event)
    assert answers(github, event) == []
    assert storage.jobs() == []


def test_a_comment_without_a_command_is_ignored(
    ctx: FeatureContext, github: FakeGitHub, storage: Storage
) -> None:
    event = comment_event(github, "kevolve is neat; see `/kevolve` docs\n> /kevolve stop")
    dispatch(ctx, "issue_comment", event)
    assert answers(github, event) == [] and storage.jobs() == []


def test_a_bad_command_gets_one_comment_with_the_error(
    ctx: FeatureContext, github: FakeGitHub, storage: Storage
) -> None:
    event = comment_event(github, "/kevolve optimize --budget lots")
    dispatch(ctx, "issue_comment", event)
    [answer] = answers(github, event)
    assert answer == (
        "I could not run `/kevolve optimize --budget lots`: `--budget` must be a whole number "
        f"from 1 to 10000, not `lots`. {USAGE}"
    )
    assert storage.jobs() == []


def test_optimize_without_a_hardware_label_anywhere_says_to_pass_one(
    github: FakeGitHub, storage: Storage
) -> None:
    ctx = FeatureContext(github, storage, MESSAGES, BOT, ())
    event = comment_event(github, "/kevolve optimize softmax")
    dispatch(ctx, "issue_comment", event)
    [answer] = answers(github, event)
    assert answer == (
        "I could not run `/kevolve optimize softmax`: no hardware label is configured; "
        f"pass `--hardware`. {USAGE}\n"
    )
    assert storage.jobs() == []


def test_status_lists_the_repo_queued_and_running_jobs(
    ctx: FeatureContext, github: FakeGitHub, storage: Storage
) -> None:
    storage.add_job(REPO, SHA, "softmax", "h100", "push", 50)
    done = storage.add_job(REPO, SHA, "rmsnorm", "h100", "push", 50)
    storage.set_job_status(done, "done")
    storage.add_job("someone/else", SHA, "gemm", "h100", "push", 50)
    event = comment_event(github, "/kevolve status")
    dispatch(ctx, "issue_comment", event)
    [answer] = answers(github, event)
    assert "| `softmax` | `h100` | queued | 0/50 | push |" in answer
    assert "rmsnorm" not in answer and "gemm" not in answer


def test_stop_cancels_queued_and_running_jobs_and_says_which(
    ctx: FeatureContext, github: FakeGitHub, storage: Storage
) -> None:
    queued = storage.add_job(REPO, SHA, "softmax", "h100", "push", 50)
    running = storage.add_job(REPO, SHA, "rmsnorm", "a10g", "push", 50)
    storage.set_job_status(running, "running")
    finished = storage.add_job(REPO, SHA, "bias_gelu", "h100", "push", 50)
    storage.set_job_status(finished, "done")
    event = comment_event(github, "/kevolve stop")
    dispatch(ctx, "issue_comment", event)
    statuses = {j.id: j.status for j in storage.jobs(REPO)}
    assert statuses == {queued: "cancelled", running: "cancelled", finished: "done"}
    [answer] = answers(github, event)
    assert "| `softmax` | `h100` | cancelled |" in answer
    assert "| `rmsnorm` | `a10g` | cancelled |" in answer and "bias_gelu" not in answer


def test_benchmark_and_recreate_are_queued_and_answered_in_one_comment(
    ctx: FeatureContext, github: FakeGitHub, storage: Storage
) -> None:
    github.push(REPO, "main", SHA)
    for branch in ("kevolve/softmax/h100", "kevolve/rmsnorm/a10g-r4"):
        github.push(REPO, branch, SHA)
        github.open_pull(REPO, branch, "main", "Faster", "")
    event = comment_event(github, "/kevolve benchmark softmax\n/kevolve recreate")
    dispatch(ctx, "issue_comment", event)
    [answer] = answers(github, event)
    assert answer.startswith("Queued `/kevolve benchmark softmax`")
    assert "Rebuilding this pull request" in answer
    # A benchmark judges the current kernel alone; a recreated pull request comes from a
    # fresh search with the bot's default budget.
    assert sorted((j.op, j.hardware, j.trigger, j.budget) for j in storage.jobs(REPO)) == [
        ("rmsnorm", "a10g", Trigger.RECREATE, ctx.budget),
        ("softmax", "a10g", Trigger.BENCHMARK, 1),
        ("softmax", "h100", Trigger.BENCHMARK, 1),
        ("softmax", "h100", Trigger.RECREATE, ctx.budget),
    ]


def test_recreate_names_ops_and_says_when_there_is_nothing_to_recreate(
    ctx: FeatureContext, github: FakeGitHub, storage: Storage
) -> None:
    github.push(REPO, "main", SHA)
    github.push(REPO, "kevolve/softmax/h100", SHA)
    github.open_pull(REPO, "kevolve/softmax/h100", "main", "Faster", "")
    event = comment_event(github, "/kevolve recreate rmsnorm")
    dispatch(ctx, "issue_comment", event)
    [answer] = answers(github, event)
    assert "`/kevolve recreate rmsnorm` found no open kevolve pull request to recreate" in answer
    assert storage.jobs(REPO) == []
    dispatch(ctx, "issue_comment", comment_event(github, "/kevolve recreate softmax"))
    assert [(j.op, j.hardware) for j in storage.jobs(REPO)] == [("softmax", "h100")]


def test_help_answers_with_the_command_table(ctx: FeatureContext, github: FakeGitHub) -> None:
    event = comment_event(github, "/kevolve help")
    dispatch(ctx, "issue_comment", event)
    assert answers(github, event) == [MESSAGES.help_text()]


def test_a_push_changing_the_softmax_kernel_queues_a_job_per_label_with_checks(
    ctx: FeatureContext, github: FakeGitHub, storage: Storage
) -> None:
    dispatch(ctx, "push", push_event(modified=("demo_kernels/softmax.py", "README.md")))
    jobs = storage.jobs(REPO)
    assert [(j.op, j.hardware, j.trigger, j.sha) for j in jobs] == [
        ("softmax", "h100", "push", SHA),
        ("softmax", "a10g", "push", SHA),
    ]
    checks = list(github.checks.values())
    assert [(c.sha, c.name, c.status) for c in checks] == [
        (SHA, "kevolve: softmax on h100", "in_progress"),
        (SHA, "kevolve: softmax on a10g", "in_progress"),
    ]
    assert [c.title for c in checks] == [
        f"Job #{jobs[0].id} queued: softmax on h100",
        f"Job #{jobs[1].id} queued: softmax on a10g",
    ]


def test_a_job_queued_from_a_push_records_its_ops_kernel_file_from_the_pushed_config(
    ctx: FeatureContext, storage: Storage, tmp_path: Path
) -> None:
    dispatch(ctx, "push", push_event(modified=("demo_kernels/softmax.py",)))
    softmax = (OpKernel("softmax", "demo_kernels/softmax.py"),)
    assert [j.kernels for j in storage.jobs(REPO)] == [softmax, softmax]
    # The config at the pushed commit names another file: the job records that one.
    repo = tmp_path / "repo"
    shutil.copytree(DEMO, repo)
    (repo / "demo_kernels" / "rmsnorm.py").rename(repo / "demo_kernels" / "rms.py")
    config = repo / "pyproject.toml"
    config.write_text(config.read_text().replace("demo_kernels/rmsnorm.py", "demo_kernels/rms.py"))
    dispatch(ctx, "push", push_event(modified=("demo_kernels/rms.py",)), spec=repo)
    [rmsnorm] = [j for j in storage.jobs(REPO) if j.op == "rmsnorm" and j.hardware == "h100"]
    assert rmsnorm.kernels == (OpKernel("rmsnorm", "demo_kernels/rms.py"),)
    assert rmsnorm.kernel("rmsnorm") == "demo_kernels/rms.py"


def test_a_push_changing_the_reference_or_config_queues_every_op_using_it(
    ctx: FeatureContext, storage: Storage
) -> None:
    dispatch(ctx, "push", push_event(modified=("pyproject.toml",)))
    assert len(storage.jobs(REPO)) == 4 * len(HARDWARE)


@pytest.mark.parametrize(
    "event",
    [
        push_event(ref="refs/heads/feature", modified=("demo_kernels/softmax.py",)),
        push_event(modified=("README.md",)),
        {
            **push_event(modified=("demo_kernels/softmax.py",)),
            "repository": {"full_name": REPO, "default_branch": "main", "fork": True},
        },
    ],
    ids=["other-branch", "unrelated-file", "fork"],
)
def test_pushes_that_change_no_op_on_the_default_branch_do_nothing(
    ctx: FeatureContext, github: FakeGitHub, storage: Storage, event: dict[str, Any]
) -> None:
    dispatch(ctx, "push", event)
    assert storage.jobs() == [] and github.checks == {}


def test_a_push_with_a_broken_config_fails_a_check_naming_the_field(
    ctx: FeatureContext, github: FakeGitHub, storage: Storage, tmp_path: Path
) -> None:
    broken = tmp_path / "demo"
    shutil.copytree(DEMO, broken)
    config = broken / "pyproject.toml"
    config.write_text(config.read_text().replace('entry = "softmax"\n', "", 1))
    dispatch(ctx, "push", push_event(modified=("pyproject.toml",)), spec=broken)
    assert storage.jobs() == []
    [check] = github.checks.values()
    assert (check.status, check.conclusion) == ("completed", "failure")
    assert f"- **File:** `{config}`" in check.summary
    assert "- **Field:** `tool.kevolve.ops.softmax.entry`" in check.summary
    assert '- **Fix:** add entry = "softmax"' in check.summary


@pytest.mark.parametrize(
    ("merged", "outcome"), [(True, PullOutcome.MERGED), (False, PullOutcome.REJECTED)]
)
def test_a_closed_kevolve_pull_request_is_recorded_with_its_kernel_and_no_job(
    ctx: FeatureContext, storage: Storage, merged: bool, outcome: PullOutcome
) -> None:
    proposals = [{"op": "softmax", "status": "opened", "pr": 3, "candidate": "k1"}]
    proposer = storage.add_job(REPO, SHA, "softmax", "h100", Trigger.PUSH, 5)
    storage.set_job_status(proposer, JobStatus.DONE, {"proposals": proposals})
    dispatch(ctx, "pull_request", closed_event(merged, branch="kevolve/softmax/h100-r4"))
    assert [job.id for job in storage.jobs()] == [proposer]
    [closed] = ctx.pulls().closed(REPO)
    assert closed == ClosedPull(REPO, 3, "softmax", "h100", SHA, "k1", outcome, CLOCK, "d-1")


def test_other_closed_pull_requests_are_not_recorded(ctx: FeatureContext, storage: Storage) -> None:
    dispatch(ctx, "pull_request", closed_event(True, branch="feature/faster"))
    dispatch(ctx, "pull_request", {**closed_event(True), "action": "opened"})
    assert storage.jobs() == [] and ctx.pulls().closed() == []


@pytest.mark.parametrize(
    ("setting", "runners", "labels"),
    [
        ('hardware = ["a10g", "l4"]', [], ["a10g", "l4"]),
        (
            'hardware = "auto"',
            [("self-hosted", "Linux", "X64", "l40s"), ("self-hosted", "h200")],
            ["h200", "l40s"],
        ),
        ('hardware = "auto"', [("self-hosted", "Linux", "X64")], []),
    ],
    ids=["listed", "auto", "auto-no-gpu"],
)
def test_a_push_queues_on_the_hardware_the_repo_config_names(
    ctx: FeatureContext,
    github: FakeGitHub,
    storage: Storage,
    tmp_path: Path,
    setting: str,
    runners: list[tuple[str, ...]],
    labels: list[str],
) -> None:
    repo = tmp_path / "demo"
    shutil.copytree(DEMO, repo)
    config = repo / "pyproject.toml"
    config.write_text(config.read_text() + f"\n[tool.kevolve]\n{setting}\n")
    github.runners_of[REPO] = [SelfHostedRunner(f"r{i}", r, True) for i, r in enumerate(runners)]
    dispatch(ctx, "push", push_event(modified=("demo_kernels/softmax.py",)), spec=repo)
    assert [(j.op, j.hardware) for j in storage.jobs(REPO)] == [("softmax", h) for h in labels]
