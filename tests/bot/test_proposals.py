"""Proposing a job's result: one pull request per op and hardware, caps, recreate, refusals,
and one module holding each kind of GPU's kernel when an op has winners on several."""

from __future__ import annotations

import importlib.util
import shutil
import types
from datetime import timedelta
from pathlib import Path
from typing import Any

import git
import pytest
import torch

from bot.messages import Messages, repro_command
from bot.proposals import Caps, Proposer, target
from bot.publisher import Outcome, Publication, Publisher
from bot.remote import GitRemote
from bot.storage import Job, Storage
from bot.winners import other_winners
from tests.bot.conftest import CLOCK
from tests.bot.fixtures import BEST_ID, timed_result, untimed_result
from tests.fakes.github import FakeGitHub, LocalGitHub
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


# Per-hardware kernels merged into one module, through the real publisher on a real git repo.

DEMO = ROOT / "examples" / "demo"
KERNEL = "demo_kernels/bias_gelu.py"
ORIGINAL = (DEMO / KERNEL).read_text()
H100 = ORIGINAL.replace("BLOCK = 1024", "BLOCK = 4096")
A10G = ORIGINAL.replace("BLOCK = 1024", "BLOCK = 512")
WRONG = ORIGINAL.replace("BLOCK = 1024", "BLOCK = 256").replace("y = 0.5 * z", "y = 0.6 * z")
H100_GPU, A10G_GPU = "NVIDIA H100 80GB HBM3", "NVIDIA A10G"


class GitPublisher(Publisher):
    """The real publisher, telling the fake GitHub where each branch it pushed now points."""

    def __init__(self, github: FakeGitHub, workdir: Path) -> None:
        super().__init__(workdir)
        self.github = github

    def publish(self, remote: GitRemote, pub: Publication) -> Outcome:
        outcome = super().publish(remote, pub)
        if outcome.sha:
            self.github.push(REPO, pub.branch, outcome.sha)
        return outcome


@pytest.fixture
def demo(tmp_path: Path) -> LocalGitHub:
    """The fake GitHub over a bare repo whose main holds the demo kernels."""
    shutil.copytree(DEMO, tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    work = git.Repo.init(tmp_path / "src", initial_branch="main")
    work.git.add("-A")
    author = git.Actor("Alice", "alice@example.com")
    work.index.commit("demo kernels", author=author, committer=author)
    bare = work.clone(tmp_path / "bare.git", bare=True)
    github = LocalGitHub(Path(bare.git_dir))
    github.push(REPO, "main", bare.head.commit.hexsha)
    return github


def winning(source: str, gpu: str, candidate: str) -> dict[str, Any]:
    """A timed result for bias_gelu whose best is `source`, measured on `gpu`."""
    data = timed_result()
    data["problem"] = "bias_gelu"
    data["best"] = {**data["best"], "id": candidate, "source": source}
    data["hardware"] = {**data["hardware"], "name": gpu}
    data["job"] = {"id": 1, "hardware": "?", "kernel": KERNEL}
    return data


def earlier(
    storage: Storage, hardware: str, result: dict[str, Any], status: str = "opened", pr: int = 7
) -> int:
    """A finished job on `hardware` that proposed `result` (or did `status` with it)."""
    job_id = storage.add_job(REPO, "a" * 40, "bias_gelu", hardware, "push", 10, status="running")
    proposal = {"op": "bias_gelu", "status": status, "reason": "pushed", "pr": pr, "url": None}
    record = {"sha": "a" * 40, "results": {"bias_gelu": result}, "proposals": []}
    record["proposals"] = [{**proposal, "candidate": result["best"]["id"]}]
    storage.set_job_status(job_id, "done", record)
    return job_id


def propose_h100(github: LocalGitHub, storage: Storage, tmp_path: Path) -> tuple[str, str, str]:
    """Propose the H100 winner; the pull request's body, its branch's module and commit message."""
    make = Proposer(
        github, GitPublisher(github, tmp_path / "work"), MESSAGES, storage, Caps(), lambda: NOW
    )
    job_id = storage.add_job(REPO, "refs/heads/main", "bias_gelu", "h100", "push", 10)
    current = storage.job(job_id)
    assert current is not None
    done = make.propose(current, "bias_gelu", winning(H100, H100_GPU, BEST_ID))
    assert done.status == "opened" and done.pull is not None
    assert done.pull.head == "kevolve/bias_gelu/h100"  # each hardware keeps its own branch
    bare = git.Repo(github.bare)
    commit = bare.commit(done.pull.head)
    assert [p.hexsha for p in commit.parents] == [bare.commit("main").hexsha]
    module = bare.git.show(f"{done.pull.head}:{KERNEL}")
    return github.pulls[-1].body, module + "\n", str(commit.message)


def load(source: str, where: Path) -> types.ModuleType:
    """Import a kernel module from a file (Triton reads a kernel's source from its file)."""
    path = where / "published_kernels.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("published_kernels", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_winners_on_two_kinds_of_gpu_become_one_module_that_picks_by_device(
    demo: LocalGitHub, storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a10g_job = earlier(storage, "a10g", winning(A10G, A10G_GPU, "a10a10a10a10"))
    body, source, message = propose_h100(demo, storage, tmp_path)
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # read as the module's kernels are decorated
    module = load(source, tmp_path)
    assert (module.BLOCK__original, module.BLOCK__h100, module.BLOCK__a10g) == (1024, 4096, 512)
    for gpu, chosen in [
        (H100_GPU, "bias_gelu__h100"),
        (A10G_GPU, "bias_gelu__a10g"),
        ("NVIDIA H200", "bias_gelu__original"),  # no winner for it: the repo's kernel
    ]:
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device, gpu=gpu: gpu)
        assert module._pick(torch.device("cuda", 0)).__name__ == chosen
    x, bias = torch.randn(3, 17), torch.randn(17)  # on CPU: the repo's kernel, interpreted
    torch.testing.assert_close(module.bias_gelu(x, bias), torch.nn.functional.gelu(x + bias))

    main = git.Repo(demo.bare).commit("main").hexsha[:7]
    assert "## One kernel per GPU kind" in body
    assert f"| `h100` | `h100` | {H100_GPU} | 1.31x | this search |" in body
    assert f"| `a10g` | `a10g` | {A10G_GPU} | 1.31x | job {a10g_job}, #7 |" in body
    assert f"| the repo's kernel | any other GPU, and the CPU | — | — | `{main}` |" in body
    assert "The sections below are about the `h100` kernel" in body
    assert "picked by the GPU's name: h100, a10g; any other GPU runs the current kernel" in message


def test_one_kind_of_gpu_publishes_its_winner_as_it_is(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    earlier(storage, "h100", winning(A10G, H100_GPU, "olderh100000"))  # same hardware: replaced
    earlier(storage, "a10g", winning(A10G, A10G_GPU, "skippeda10g0"), status="skipped")
    body, source, message = propose_h100(demo, storage, tmp_path)
    assert source == H100
    assert "One kernel per GPU kind" not in body and "GPU's name" not in message


def test_a_variant_that_fails_the_harness_is_left_out_with_a_note(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    a10g_job = earlier(storage, "a10g", winning(WRONG, A10G_GPU, "wronga10g000"))
    body, source, _ = propose_h100(demo, storage, tmp_path)
    assert source == H100
    assert "carries the `bias_gelu` kernel found here alone" in body
    assert f"- `a10g`'s kernel (job {a10g_job}) was left out: incorrect: " in body


def test_a_winner_closed_unmerged_is_not_merged_again(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    earlier(storage, "a10g", winning(A10G, A10G_GPU, "a10a10a10a10"))
    storage.add_job(
        REPO, "c" * 40, "bias_gelu", "a10g", "rejected", 0, status="done", candidate="a10a10a10a10"
    )
    body, source, _ = propose_h100(demo, storage, tmp_path)
    assert source == H100 and "One kernel per GPU kind" not in body


def test_other_winners_are_each_hardware_latest_proposed_one(storage: Storage) -> None:
    earlier(storage, "a10g", winning(A10G, A10G_GPU, "a10gfirst000"))
    earlier(storage, "a10g", winning(A10G, A10G_GPU, "a10glatest00"), status="updated", pr=3)
    earlier(storage, "l4", winning(A10G, "NVIDIA L4", "l4blocked000"), status="blocked")
    earlier(storage, "a100", winning(A10G, "NVIDIA A100-SXM4-80GB", "a100rejected"))
    storage.add_job(REPO, "c" * 40, "bias_gelu", "a100", "rejected", 0, candidate="a100rejected")
    moved = winning(A10G, "NVIDIA H200", "otherkernel0")
    moved["job"]["kernel"] = "demo_kernels/old_bias_gelu.py"
    earlier(storage, "h200", moved)
    earlier(storage, "gpu-large", winning(A10G, "NVIDIA RTX 6000 Ada Generation", "rtx600000000"))
    found = other_winners(storage.jobs(REPO), "bias_gelu", "h100", KERNEL)
    assert [(w.label, w.candidate, w.pr) for w in found] == [
        ("a10g", "a10glatest00", 3),
        ("gpu-large", "rtx600000000", 7),
    ]
    # A label that is no part of its GPU's name would never be picked: the GPU's name is used.
    assert [w.key for w in found] == ["a10g", "NVIDIA RTX 6000 Ada Generation"]
