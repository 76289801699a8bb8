"""Caps with clear answers: comments from people reach the feature handlers with the app's real
client (PyGithub) against the GitHub stand-in, jobs land in a real database (SQLite and
PostgreSQL), and each flood gets one answer and nothing more queued."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kevolve.bot.features import FeatureContext, feature_table
from kevolve.bot.github import AppClient
from kevolve.bot.messages import Messages
from kevolve.bot.quotas import JobOrder, QuotaLimits
from kevolve.bot.repoconfig import load_config
from kevolve.bot.storage import Delivery, Storage

from tests.standin import gitrepo, payloads
from tests.standin.fixtures import DEMO, World, add_collaborator, open_issue
from tests.standin.state import Comment, Issue, Pull

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = Messages(ROOT / "templates" / "github")
BOT = "kevolve[bot]"
NOW = datetime(2026, 1, 2, tzinfo=UTC)
_ids = itertools.count(1)
TABLE = feature_table(lambda _github, _repo, _sha: load_config(DEMO))


@dataclass
class Tenant:
    """The bot's features on one installed repo of the stand-in, with real storage."""

    world: World
    storage: Storage
    ctx: FeatureContext
    issue: Issue

    def comment(self, login: str, body: str) -> None:
        """`login` comments `body` on the issue; the bot handles the `issue_comment` delivery."""
        state, repo = self.world.standin.state, self.world.repo
        note = Comment(state.next_id(), repo, self.issue.number, state.add_user(login), body)
        state.comments[note.id] = note
        payload = payloads.aim(
            payloads.example("issue_comment", action="created"),
            repo.full_name,
            self.world.installation.id,
        )
        payload["issue"]["number"] = self.issue.number
        payload["comment"].update(id=note.id, body=body, user={"login": login, "type": "User"})
        payload["sender"] = {"login": login, "type": "User"}
        self.deliver("issue_comment", payload)

    def deliver(self, event: str, payload: dict[str, Any]) -> None:
        """Hand one delivery to the handler the dispatcher would pick."""
        delivery = Delivery(
            f"d-{next(_ids)}", event, payload.get("action"), payload, NOW, "pending", 0, None
        )
        handler = TABLE.lookup(event, delivery.action)
        assert handler is not None, f"no feature takes {event} {delivery.action}"
        handler(self.ctx, delivery)

    def answers(self) -> list[str]:
        """The bodies of the bot's comments on the issue, oldest first."""
        state = self.world.standin.state
        return [
            c.body
            for c in state.comments.values()
            if c.issue_number == self.issue.number and c.user.login == BOT
        ]


@pytest.fixture
def tenant(github_standin: World, database_url: str) -> Iterator[Tenant]:
    """The stand-in's repo (bob may write, carol may read), a real database, default limits."""
    world = github_standin
    add_collaborator(world.standin, world.repo, "dave", "write")
    client = AppClient(
        world.app.app_id,
        world.app.private_key,
        world.installation.id,
        world.standin.urls.api,
        throttle=False,
    )
    storage = Storage(database_url)
    storage.create_all()
    ctx = FeatureContext(client, storage, MESSAGES, BOT, ("h100",), 200, QuotaLimits())
    yield Tenant(world, storage, ctx, open_issue(world.standin, world.repo, "bob"))
    storage.close()


def test_one_comment_with_200_optimize_lines_runs_5_and_answers_once(tenant: Tenant) -> None:
    body = "\n".join(f"/kevolve optimize op{n}" for n in range(200))
    tenant.comment("bob", body)
    [answer] = tenant.answers()
    jobs = tenant.storage.jobs()
    assert [j.op for j in jobs] == [f"op{n}" for n in range(5)]
    assert all(j.requester == "bob" and j.comment_id is not None for j in jobs)
    assert "195 more `/kevolve` commands were ignored" in answer
    assert "kevolve runs the first 5 commands of a comment" in answer
    assert "Fix: put the rest in another comment, at most 5 each." in answer
    assert answer.count("queued as job #") == 5


def test_a_budget_over_the_cap_queues_nothing_and_says_the_cap_and_the_fix(
    tenant: Tenant,
) -> None:
    for n in range(50):
        tenant.comment("bob", f"/kevolve optimize op{n} --budget 10000")
    answers = tenant.answers()
    assert len(answers) == 50
    assert tenant.storage.jobs() == []
    assert answers[0] == (
        "`/kevolve optimize op0 --budget 10000` was not run: `--budget 10000` is over this "
        "bot's cap of 1000 evaluations per command. Fix: ask for `--budget 1000` or less (the "
        "bot's operator sets the cap with `KEVOLVE_MAX_BUDGET`).\n"
    )


def test_queued_jobs_are_capped_per_person_and_per_repo_with_the_fix(tenant: Tenant) -> None:
    for n in range(12):
        tenant.comment("bob", f"/kevolve optimize bob{n}")
    for n in range(12):
        tenant.comment("dave", f"/kevolve optimize dave{n}")
    answers = tenant.answers()
    jobs = tenant.storage.jobs()
    assert [j.op for j in jobs] == [f"bob{n}" for n in range(10)] + [f"dave{n}" for n in range(10)]
    assert "You already have 10 kevolve jobs queued or running" in answers[10]
    assert "Fix: wait for some to finish (`/kevolve status`)" in answers[10]
    tenant.comment("alice", "/kevolve optimize alice0")
    assert "This repository already has 20 kevolve jobs queued or running" in tenant.answers()[-1]
    assert len(tenant.storage.jobs()) == 20


def test_the_same_request_while_its_job_is_queued_joins_it(tenant: Tenant) -> None:
    tenant.comment("bob", "/kevolve optimize softmax")
    tenant.comment("dave", "/kevolve optimize softmax")
    [job] = tenant.storage.jobs()
    assert (
        f"job #{job.id} for the same op, hardware and commit is already queued"
        in (tenant.answers()[1])
    )


def test_five_pushes_of_one_commit_give_one_job_per_op_and_hardware(tenant: Tenant) -> None:
    repo, installation = tenant.world.repo, tenant.world.installation
    sha = gitrepo.branch_sha(repo.git_dir, "main") or ""
    for _ in range(5):
        body = payloads.push(repo.full_name, installation.id, "e" * 40, sha, ["pyproject.toml"])
        tenant.deliver("push", body)
    jobs = tenant.storage.jobs()
    ops = [p.name for p in load_config(DEMO).ops]
    assert sorted((j.op, j.hardware) for j in jobs) == sorted((op, "h100") for op in ops)
    assert all(j.status == "queued" and j.check_id is not None for j in jobs)
    assert len(tenant.world.standin.state.check_runs) == len(ops)


def test_a_push_past_the_repo_cap_queues_up_to_it_and_says_so_on_a_check(
    tenant: Tenant,
) -> None:
    tenant.ctx = replace(tenant.ctx, limits=QuotaLimits(queued_per_repo=2))
    repo, installation = tenant.world.repo, tenant.world.installation
    sha = gitrepo.branch_sha(repo.git_dir, "main") or ""
    body = payloads.push(repo.full_name, installation.id, "e" * 40, sha, ["pyproject.toml"])
    tenant.deliver("push", body)
    assert len(tenant.storage.jobs()) == 2
    checks = list(tenant.world.standin.state.check_runs.values())
    [full] = [c for c in checks if c.name == "kevolve"]
    ops = len(load_config(DEMO).ops)
    title = f"kevolve queue is full: {ops - 2} jobs not queued"
    assert (full.conclusion, full.output["title"]) == ("neutral", title)
    assert "This repository already has 2 kevolve jobs queued or running" in full.output["summary"]


def test_a_readers_30_commands_get_one_refusal_and_the_rest_are_recorded(
    tenant: Tenant,
) -> None:
    for n in range(30):
        tenant.comment("carol", f"/kevolve optimize op{n}")
    [refusal] = tenant.answers()
    assert refusal.startswith("@carol, only people with write, maintain or admin permission")
    assert tenant.storage.jobs() == []
    assert tenant.ctx.quotas().refusals("carol") == (1, 30)


def test_recreate_queues_each_open_proposal_on_its_hardware(tenant: Tenant) -> None:
    state, repo = tenant.world.standin.state, tenant.world.repo
    for head in ("kevolve/softmax/h100", "kevolve/rmsnorm/a10g-r7", "feature/mine"):
        number = state.next_issue_number(repo)
        pull = Pull(
            state.next_id(),
            number,
            repo,
            state.add_user(BOT, "Bot"),
            "t",
            "",
            head,
            "main",
        )
        state.pulls.append(pull)
    tenant.comment("bob", "/kevolve recreate")
    jobs = tenant.storage.jobs()
    assert sorted((j.op, j.hardware, j.trigger) for j in jobs) == [
        ("rmsnorm", "a10g", "recreate"),
        ("softmax", "h100", "recreate"),
    ]
    [answer] = tenant.answers()
    assert answer.startswith("Rebuilding this pull request")


def test_merging_is_atomic_when_dispatchers_race(tenant: Tenant) -> None:
    quotas = tenant.ctx.quotas()
    order = JobOrder(
        "acme/kernels", "refs/heads/main", "softmax", "h100", "comment", 10, "d", "bob", None, None
    )
    start = threading.Barrier(8)
    decided: list[str] = []

    def admit() -> None:
        start.wait()
        decided.append(quotas.admit(order).decision)

    threads = [threading.Thread(target=admit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(decided) == ["merged"] * 7 + ["queued"]
    assert len(tenant.storage.jobs()) == 1
