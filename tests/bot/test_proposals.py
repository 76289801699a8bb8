"""Proposing a job's result: one pull request per op and hardware, caps, recreate, refusals."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.messages import Messages, repro_command
from bot.proposals import Caps, Proposer, target
from bot.storage import Job, Storage
from tests.bot.conftest import CLOCK
from tests.bot.fixtures import BEST_ID, timed_result, untimed_result
from tests.fakes.github import FakeGitHub
from tests.fakes.publisher import FakePublisher

ROOT = Path(__file__).resolve().parents[2]
REPO = "octo/kernels"
NOW = CLOCK
MESSAGES = Messages(ROOT / "templates" / "github")


@pytest.fixture
def github() -> FakeGitHub:
    fake = FakeGitHub()
    fake.push(REPO, "main", "a" * 40)
    return fake


def proposer(github: FakeGitHub, storage: Storage, **caps: Any) -> tuple[Proposer, FakePublisher]:
    publisher = FakePublisher(github, REPO)
    made = Proposer(github, publisher, MESSAGES, storage, Caps(**caps), clock=lambda: NOW)
    return made, publisher


def job(storage: Storage, trigger: str = "push", hardware: str = "h100") -> Job:
    job_id = storage.add_job(REPO, "b" * 40, "softmax", hardware, trigger, 10, status="running")
    found = storage.job(job_id)
    assert found is not None
    return found


def result(timed: bool = True) -> dict[str, Any]:
    data = timed_result() if timed else untimed_result()
    data["job"] = {"id": 1, "hardware": "h100", "kernel": "kernels/softmax.py"}
    return data


def test_the_first_run_opens_a_pull_request_and_the_next_updates_it(
    github: FakeGitHub, storage: Storage
) -> None:
    make, publisher = proposer(github, storage)
    first = make.propose(job(storage), "softmax", result())
    assert first.status == "opened" and first.pull is not None
    [pull] = github.pulls
    assert (pull.head, pull.base) == ("kevolve/softmax/h100", "main")
    assert pull.title == "kevolve: softmax 1.31x faster on NVIDIA H100 80GB HBM3"
    assert repro_command("softmax", "kernels/softmax.py", result()) in pull.body
    assert publisher.published[0].files == {"kernels/softmax.py": result()["best"]["source"]}

    again = result()
    again["best"]["source"] += "\n# tuned again\n"
    second = make.propose(job(storage), "softmax", again)
    assert second.status == "updated" and second.pull == first.pull
    assert len(github.pulls) == 1 and len(publisher.published) == 2


def test_recreate_opens_a_successor_and_closes_the_older_with_a_link(
    github: FakeGitHub, storage: Storage
) -> None:
    make, _ = proposer(github, storage)
    older = make.propose(job(storage), "softmax", result()).pull
    assert older is not None
    recreate = job(storage, trigger="recreate")
    newer = make.propose(recreate, "softmax", result())
    assert newer.status == "opened" and newer.pull is not None
    assert newer.pull.head == f"kevolve/softmax/h100-r{recreate.id}"
    old, new = github.pulls
    assert (old.state, new.state) == ("closed", "open")
    closing = [c.body for c in github.comments.values() if c.issue == older.number]
    assert any(newer.pull.url in body for body in closing)
    assert target(newer.pull.head) == ("softmax", "h100")  # still the same op and hardware


def test_a_branch_with_a_person_commit_gets_a_comment_not_a_push(
    github: FakeGitHub, storage: Storage
) -> None:
    make, publisher = proposer(github, storage)
    pull = make.propose(job(storage), "softmax", result()).pull
    assert pull is not None
    publisher.human_branches.add(pull.head)
    blocked = make.propose(job(storage), "softmax", result())
    assert blocked.status == "blocked" and blocked.pull == pull
    [comment] = [c.body for c in github.comments.values() if c.issue == pull.number]
    assert "never force-pushes over a person's work" in comment
    assert len(publisher.published) == 1


def test_open_pull_request_cap_stops_new_ones_but_not_updates(
    github: FakeGitHub, storage: Storage
) -> None:
    make, _ = proposer(github, storage, open_prs=1)
    assert make.propose(job(storage, hardware="h100"), "softmax", result()).status == "opened"
    capped = make.propose(job(storage, hardware="a10g"), "softmax", result())
    assert (
        capped.status == "skipped" and "1 kevolve pull requests are open (cap 1)" in capped.reason
    )
    assert make.propose(job(storage, hardware="h100"), "softmax", result()).status == "updated"


def test_hourly_cap_counts_pull_requests_opened_in_the_last_hour(
    github: FakeGitHub, storage: Storage
) -> None:
    make, _ = proposer(github, storage, per_hour=1)
    recent = job(storage)
    storage.set_job_status(recent.id, "done", {"proposals": [{"status": "opened", "pr": 9}]})
    capped = make.propose(job(storage, hardware="a10g"), "softmax", result())
    assert capped.status == "skipped" and "opened in the last hour (cap 1)" in capped.reason

    later = Proposer(
        github,
        make.publisher,
        MESSAGES,
        storage,
        Caps(per_hour=1),
        lambda: NOW + timedelta(hours=2),
    )
    assert later.propose(job(storage, hardware="a10g"), "softmax", result()).status == "opened"


def test_a_result_whose_pull_request_was_closed_unmerged_is_not_proposed_again(
    github: FakeGitHub, storage: Storage
) -> None:
    make, publisher = proposer(github, storage)
    storage.add_job(
        REPO, "c" * 40, "softmax", "h100", "rejected", 0, status="done", candidate=BEST_ID
    )
    skipped = make.propose(job(storage), "softmax", result())
    assert skipped.status == "skipped" and "closed unmerged" in skipped.reason
    other = make.propose(job(storage, hardware="a10g"), "softmax", result())
    assert other.status == "opened"  # the rejection was for h100 only
    assert len(publisher.published) == 1


def test_untimed_results_are_proposed_only_when_dry_runs_may_publish(
    github: FakeGitHub, storage: Storage
) -> None:
    make, _ = proposer(github, storage)
    refused = make.propose(job(storage), "softmax", result(timed=False))
    assert refused.status == "skipped" and "nothing was timed" in refused.reason
    dry, _ = proposer(github, storage, publish_untimed=True)
    opened = dry.propose(job(storage), "softmax", result(timed=False))
    assert opened.status == "opened" and opened.pull is not None
    [pull] = github.pulls
    assert "Nothing was timed" in pull.body and "--device cpu --no-time" in pull.body


def test_no_correct_candidate_or_no_kernel_file_is_never_proposed(
    github: FakeGitHub, storage: Storage
) -> None:
    make, publisher = proposer(github, storage)
    empty = {**result(), "best": None}
    assert make.propose(job(storage), "softmax", empty).reason == "no correct candidate was found"
    kernelbench = {**result(), "job": {"id": 1, "hardware": "h100", "kernel": None}}
    assert "no kernel file" in make.propose(job(storage), "softmax", kernelbench).reason
    assert publisher.published == [] and github.pulls == []


@pytest.mark.parametrize(
    ("branch", "expected"),
    [
        ("kevolve/softmax/h100", ("softmax", "h100")),
        ("kevolve/softmax/h100-r12", ("softmax", "h100")),
        ("kevolve/softmax", None),
        ("feature/softmax/h100", None),
        ("kevolve//h100", None),
    ],
)
def test_branch_targets(branch: str, expected: tuple[str, str] | None) -> None:
    assert target(branch) == expected
