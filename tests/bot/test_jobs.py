"""The job worker: claims queued jobs, runs them through a runner, reports and proposes."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kevolve.bot.github import GitHub
from kevolve.bot.jobrecord import OpKernel
from kevolve.bot.jobs import JobSettings, JobWorker
from kevolve.bot.messages import Messages
from kevolve.bot.proposals import Caps, PullRequests
from kevolve.bot.storage import Storage
from kevolve.runners.intake import CheckedResult, read_result
from kevolve.runners.job import JobSpec
from kevolve.runners.runner import Cancelled, RunnerError

from tests.bot.conftest import CLOCK
from tests.bot.fixtures import DEMO, demo_result
from tests.bot.loopback import client_for
from tests.fakes.github import LocalGitHub
from tests.fakes.publisher import FakePublisher
from tests.standin.fixtures import World

ROOT = Path(__file__).resolve().parents[2]
REPO = "octo/kernels"
NOW = CLOCK
MESSAGES = Messages(ROOT / "templates" / "github")
OPS = ["softmax", "rmsnorm", "bias_gelu", "matmul_bias_relu"]


class ScriptedRunner:
    """Answers each job with a result for its op, or runs `action` instead."""

    def __init__(self, action: str = "result") -> None:
        self.action = action
        self.specs: list[JobSpec] = []

    def run(self, spec: JobSpec, cancelled: Cancelled) -> CheckedResult:
        self.specs.append(spec)
        if self.action == "fail":
            raise RunnerError(f"job {spec.job_id} failed (exit 1): boom")
        if self.action == "bug":
            raise KeyError("hardware")
        if self.action == "wait_cancel":
            while not cancelled():
                pass
            raise RunnerError(f"job {spec.job_id} was cancelled")
        # The demo's own kernel, retouched: the bot checks the winner again before proposing it.
        kernel = (DEMO / "demo_kernels" / f"{spec.op}.py").read_text() + "# tuned\n"
        return read_result(demo_result(spec.op, kernel, spec.job_id), spec.job_id)


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    """A bare repo whose main holds the demo repo."""
    return _bare(tmp_path, "")


def _bare(tmp_path: Path, extra_config: str) -> Path:
    """A bare repo of the demo, with `extra_config` appended to its pyproject.toml."""
    work = tmp_path / "src"
    shutil.copytree(ROOT / "examples" / "demo", work)
    config = work / "pyproject.toml"
    config.write_text(config.read_text() + extra_config)
    env = {"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "a"}
    env |= {"GIT_COMMITTER_EMAIL": "a@x", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "seed"]):
        subprocess.run(["git", *argv], cwd=work, env=env, check=True)
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(work), str(tmp_path / "bare.git")], check=True
    )
    return tmp_path / "bare.git"


def worker(github: LocalGitHub, storage: Storage, runner: ScriptedRunner, tmp: Path) -> JobWorker:
    publisher = FakePublisher(github, REPO)

    def proposer_for(client: GitHub) -> PullRequests:
        return PullRequests(client, publisher, MESSAGES, storage, Caps(), lambda: NOW)

    settings = JobSettings(workdir=tmp / "jobs", cache_dir=tmp / "cache", device="cpu")
    return JobWorker(
        storage, lambda _gh, _job: runner, lambda _id: github, proposer_for, MESSAGES, settings
    )


def test_a_comment_job_for_every_op_runs_each_proposes_each_and_answers(
    bare: Path, storage: Storage, tmp_path: Path
) -> None:
    github = LocalGitHub(bare)
    github.push(REPO, "main", "a" * 40)
    answer = github.comment(REPO, 7, "queued")
    storage.add_job(REPO, "refs/heads/main", "*", "h100", "comment", 5, comment_id=answer)
    bodies: list[str] = []

    class Watching(ScriptedRunner):
        def run(self, spec: JobSpec, cancelled: Cancelled) -> CheckedResult:
            bodies.append(github.comments[answer].body)  # what people see while it runs
            return super().run(spec, cancelled)

    runner = Watching()
    assert worker(github, storage, runner, tmp_path).run_pending() == 1
    assert "| `*` | `h100` | running |" in bodies[0]

    assert [s.op for s in runner.specs] == OPS
    assert {s.budget for s in runner.specs} == {5} and {s.device for s in runner.specs} == {"cpu"}
    [job] = storage.jobs()
    assert job.status == "done" and job.result is not None
    outcomes = [(p["status"], p["reason"]) for p in job.result["proposals"]]
    assert [status for status, _ in outcomes] == ["opened"] * 4, outcomes
    # Each op's result is kept as the bot read it, and reads back so, each history point with
    # its candidate (the dashboard shows them).
    kept = read_result(job.result["results"]["softmax"])
    posted = demo_result("softmax", "", job.id)["history"]
    assert [p.candidate for p in kept.history] == [p["candidate"] for p in posted]
    assert kept.history and all(p.candidate and p.verdict for p in kept.history)
    assert sorted(p.head for p in github.pulls) == sorted(f"kevolve/{op}/h100" for op in OPS)
    # A check run on the commit the job resolved, finished with the outcome of each op.
    [check] = github.checks.values()
    assert (check.name, check.status, check.conclusion) == (
        "kevolve: * on h100",
        "completed",
        "success",
    )
    assert len(check.sha) == 40 and check.sha == job.result["sha"]
    assert "`matmul_bias_relu`: opened" in check.summary
    # The command's answer now shows the job done with a link to a pull request.
    body = github.comments[answer].body
    assert "| `*` | `h100` | [done](" in body


def test_a_job_queued_on_a_branch_name_records_its_kernel_files_when_it_starts(
    bare: Path, storage: Storage, tmp_path: Path
) -> None:
    github = LocalGitHub(bare)
    github.push(REPO, "main", "a" * 40)
    every = storage.add_job(REPO, "refs/heads/main", "*", "h100", "comment", 5)
    one = storage.add_job(REPO, "refs/heads/main", "rmsnorm", "a10g", "benchmark", 1)
    runner = ScriptedRunner()
    assert worker(github, storage, runner, tmp_path).run_pending() == 2
    assert [s.op for s in runner.specs] == [*OPS, "rmsnorm"]
    jobs = {job.id: job for job in storage.jobs()}
    assert jobs[every].kernels == tuple(OpKernel(op, f"demo_kernels/{op}.py") for op in OPS)
    assert jobs[one].kernels == (OpKernel("rmsnorm", "demo_kernels/rmsnorm.py"),)


def test_a_job_searches_the_ops_it_recorded_when_it_was_queued(
    bare: Path, storage: Storage, tmp_path: Path
) -> None:
    github = LocalGitHub(bare)
    github.push(REPO, "main", "a" * 40)
    softmax = (OpKernel("softmax", "demo_kernels/softmax.py"),)
    storage.add_job(REPO, "refs/heads/main", "*", "h100", "schedule", 5, kernels=softmax)
    runner = ScriptedRunner()
    worker(github, storage, runner, tmp_path).run_pending()
    assert [s.op for s in runner.specs] == ["softmax"]
    [job] = storage.jobs()
    assert job.kernels == softmax and job.result is not None
    assert [p["status"] for p in job.result["proposals"]] == ["opened"]


def test_a_job_whose_config_names_another_kernel_file_than_it_recorded_proposes_nothing(
    bare: Path, storage: Storage, tmp_path: Path
) -> None:
    github = LocalGitHub(bare)
    github.push(REPO, "main", "a" * 40)
    recorded = (OpKernel("softmax", "demo_kernels/old_softmax.py"),)
    storage.add_job(REPO, "refs/heads/main", "softmax", "h100", "push", 5, kernels=recorded)
    worker(github, storage, ScriptedRunner(), tmp_path).run_pending()
    [job] = storage.jobs()
    assert job.status == "done" and job.result is not None and github.pulls == []
    [proposal] = job.result["proposals"]
    assert proposal["status"] == "skipped"
    assert proposal["reason"] == (
        "the job was queued for softmax's kernel file 'demo_kernels/old_softmax.py', but the "
        f"repo's config at {job.result['sha'][:7]} names 'demo_kernels/softmax.py'"
    )


def test_a_job_for_an_op_its_config_does_not_declare_fails_before_any_search(
    bare: Path, storage: Storage, tmp_path: Path
) -> None:
    github = LocalGitHub(bare)
    github.push(REPO, "main", "a" * 40)
    storage.add_job(REPO, "refs/heads/main", "softmaxx", "h100", "comment", 5)
    runner = ScriptedRunner()
    worker(github, storage, runner, tmp_path).run_pending()
    [job] = storage.jobs()
    assert runner.specs == [] and job.status == "failed" and job.kernels is None
    [check] = github.checks.values()
    assert check.conclusion == "failure" and check.summary == job.reason
    assert check.summary == (
        f"The job failed: {REPO}: its config at {check.sha[:7]} declares no op 'softmaxx' "
        f"(declared: {', '.join(OPS)}). Fix: did you mean 'softmax'? ask for one of those"
    )


def test_a_failed_run_fails_the_job_and_its_check_with_the_reason(
    bare: Path, storage: Storage, tmp_path: Path
) -> None:
    github = LocalGitHub(bare)
    check = github.start_check(REPO, "b" * 40, "kevolve: softmax on h100", "queued", "queued")
    storage.add_job(REPO, "refs/heads/main", "softmax", "h100", "push", 5, check_id=check)
    worker(github, storage, ScriptedRunner("fail"), tmp_path).run_pending()
    [job] = storage.jobs()
    assert job.status == "failed"
    assert github.checks[check].conclusion == "failure"
    assert github.checks[check].summary == f"The job failed: job {job.id} failed (exit 1): boom"
    assert job.reason == github.checks[check].summary


def test_a_bug_fails_the_job_with_the_exception_named_and_the_worker_goes_on(
    bare: Path, storage: Storage, tmp_path: Path
) -> None:
    github = LocalGitHub(bare)
    check = github.start_check(REPO, "b" * 40, "kevolve: softmax on h100", "queued", "queued")
    storage.add_job(REPO, "refs/heads/main", "softmax", "h100", "push", 5, check_id=check)
    storage.add_job(REPO, "refs/heads/main", "rmsnorm", "h100", "push", 5)
    assert worker(github, storage, ScriptedRunner("bug"), tmp_path).run_pending() == 2
    assert github.checks[check].conclusion == "failure"
    assert github.checks[check].summary == "kevolve failed: KeyError: 'hardware'"
    assert [job.status for job in storage.jobs()] == ["failed", "failed"]


def test_stop_cancels_a_running_job(bare: Path, storage: Storage, tmp_path: Path) -> None:
    github = LocalGitHub(bare)
    job_id = storage.add_job(REPO, "refs/heads/main", "softmax", "h100", "push", 5)

    class StoppedRunner(ScriptedRunner):
        def run(self, spec: JobSpec, cancelled: Cancelled) -> CheckedResult:
            assert not cancelled()
            storage.set_job_status(job_id, "cancelled")  # what `/kevolve stop` does meanwhile
            return super().run(spec, cancelled)

    worker(github, storage, StoppedRunner("wait_cancel"), tmp_path).run_pending()
    job = storage.job(job_id)
    assert job is not None and job.status == "cancelled"
    [check] = github.checks.values()
    assert check.conclusion == "cancelled"


def test_jobs_left_running_by_a_stopped_bot_run_again(
    bare: Path, storage: Storage, tmp_path: Path
) -> None:
    github = LocalGitHub(bare)
    github.push(REPO, "main", "a" * 40)
    job_id = storage.add_job(
        REPO, "refs/heads/main", "softmax", "h100", "push", 5, status="running"
    )
    assert storage.claim_job() is None  # running jobs are not claimable ...
    jobs = worker(github, storage, ScriptedRunner(), tmp_path)
    jobs.start()  # ... until a worker starts and queues them again
    try:
        deadline = time.monotonic() + 300
        while (j := storage.job(job_id)) is not None and j.status in ("queued", "running"):
            assert time.monotonic() < deadline, "the requeued job never ran"
            time.sleep(0.05)
    finally:
        jobs.stop()
    assert j is not None and j.status == "done"


def test_slots_run_jobs_side_by_side_and_each_job_once(
    bare: Path, storage: Storage, tmp_path: Path
) -> None:
    github = LocalGitHub(bare)
    github.push(REPO, "main", "a" * 40)
    both_running = threading.Barrier(2, timeout=30)

    class Meeting(ScriptedRunner):
        def run(self, spec: JobSpec, cancelled: Cancelled) -> CheckedResult:
            both_running.wait()  # returns only once two jobs are running at the same time
            return super().run(spec, cancelled)

    runner = Meeting()
    for op, hardware in (("softmax", "h100"), ("rmsnorm", "h200")):
        storage.add_job(REPO, "refs/heads/main", op, hardware, "comment", 5)
    settings = JobSettings(workdir=tmp_path / "jobs", cache_dir=tmp_path / "cache", device="cpu")
    publisher = FakePublisher(github, REPO)
    jobs = JobWorker(
        storage,
        lambda _gh, _job: runner,
        lambda _id: github,
        lambda client: PullRequests(client, publisher, MESSAGES, storage, Caps(), lambda: NOW),
        MESSAGES,
        settings,
        poll_seconds=0.05,
        slots=2,
    )
    jobs.start()
    try:
        # Generous: each job clones and re-judges its winner, slow on a loaded machine.
        deadline = time.monotonic() + 300
        while any(j.status != "done" for j in storage.jobs()) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        jobs.stop()
    assert [j.status for j in storage.jobs()] == ["done", "done"], [
        c.summary for c in github.checks.values()
    ]
    assert sorted(s.op for s in runner.specs) == ["rmsnorm", "softmax"]  # each job ran once


def test_the_repo_config_chooses_the_executor_its_searches_use(
    storage: Storage, tmp_path: Path
) -> None:
    github = LocalGitHub(_bare(tmp_path, '\n[tool.kevolve]\nexecutor = "ray"\n'))
    github.push(REPO, "main", "a" * 40)
    storage.add_job(REPO, "refs/heads/main", "softmax", "h100", "comment", 5)
    runner = ScriptedRunner()
    assert worker(github, storage, runner, tmp_path).run_pending() == 1
    assert [s.executor for s in runner.specs] == ["ray"]


def test_jobs_use_the_local_executor_when_the_repo_says_nothing(
    bare: Path, storage: Storage, tmp_path: Path
) -> None:
    github = LocalGitHub(bare)
    github.push(REPO, "main", "a" * 40)
    storage.add_job(REPO, "refs/heads/main", "softmax", "h100", "comment", 5)
    runner = ScriptedRunner()
    assert worker(github, storage, runner, tmp_path).run_pending() == 1
    assert [s.executor for s in runner.specs] == ["local"]


class ProbingRunner(ScriptedRunner):
    """Looks through the job's directory as repo code run by the job could, then acts."""

    def __init__(self, tokens: Callable[[], set[str]], action: str = "result") -> None:
        super().__init__(action)
        self.tokens = tokens
        self.found: list[Path] = []
        self.files = 0

    def run(self, spec: JobSpec, cancelled: Cancelled) -> CheckedResult:
        root = Path(spec.checkout).parent
        files = [path for path in root.rglob("*") if path.is_file()]
        self.files += len(files)
        secrets = [token.encode() for token in self.tokens()]
        self.found += [p for p in files if any(t in p.read_bytes() for t in secrets)]
        return super().run(spec, cancelled)


def test_a_job_clone_holds_no_token_and_the_job_directory_goes_when_the_job_ends(
    github_standin: World, storage: Storage, tmp_path: Path
) -> None:
    """Repo code reads the job's checkout: no token may be there (the clone URL carried one in
    `.git/config`), and a finished job leaves no directory behind."""
    world = github_standin
    runner = ProbingRunner(lambda: set(world.standin.state.tokens), "fail")
    settings = JobSettings(workdir=tmp_path / "jobs", cache_dir=tmp_path / "cache", device="cpu")
    client = client_for(world)
    jobs = JobWorker(
        storage,
        lambda _gh, _job: runner,
        client,
        lambda gh: PullRequests(
            gh, FakePublisher(LocalGitHub(tmp_path), REPO), MESSAGES, storage, Caps(), lambda: NOW
        ),
        MESSAGES,
        settings,
    )
    repo = world.repo.full_name
    job_id = storage.add_job(
        repo, "refs/heads/main", "softmax", "cpu", "push", 1, installation_id=world.installation.id
    )
    assert jobs.run_pending() == 1
    job = storage.job(job_id)
    assert job is not None and job.status == "failed"
    assert runner.files > 0 and runner.found == []  # the clone was there, with no token in it
    assert not (tmp_path / "jobs" / f"job-{job_id}").exists()


@pytest.mark.parametrize("action", ["result", "fail", "wait_cancel"])
def test_the_job_directory_is_removed_when_the_job_is_done_failed_or_cancelled(
    bare: Path, storage: Storage, tmp_path: Path, action: str
) -> None:
    github = LocalGitHub(bare)
    github.push(REPO, "main", "a" * 40)
    job_id = storage.add_job(REPO, "refs/heads/main", "softmax", "h100", "push", 5)

    class Running(ScriptedRunner):
        def run(self, spec: JobSpec, cancelled: Cancelled) -> CheckedResult:
            Path(spec.state).parent.mkdir(parents=True, exist_ok=True)
            Path(spec.state).write_text("search state")
            if self.action == "wait_cancel":
                storage.set_job_status(job_id, "cancelled")  # `/kevolve stop` meanwhile
            if self.action == "result":
                nothing = {"problem": spec.op, "device": "cpu", "timed": False, "evaluated": 0}
                return read_result(nothing, spec.job_id)  # no winner to propose: the job is done
            return super().run(spec, cancelled)

    worker(github, storage, Running(action), tmp_path).run_pending()
    job = storage.job(job_id)
    assert job is not None
    assert job.status == {"result": "done", "fail": "failed", "wait_cancel": "cancelled"}[action]
    assert not (tmp_path / "jobs" / f"job-{job_id}").exists()


def test_a_job_requeued_by_a_stopping_bot_keeps_its_directory_to_resume(
    bare: Path, storage: Storage, tmp_path: Path
) -> None:
    github = LocalGitHub(bare)
    github.push(REPO, "main", "a" * 40)
    job_id = storage.add_job(REPO, "refs/heads/main", "softmax", "h100", "push", 5)
    started = threading.Event()
    state: list[Path] = []

    class Resumable(ScriptedRunner):
        def run(self, spec: JobSpec, cancelled: Cancelled) -> CheckedResult:
            state.append(Path(spec.state))
            state[0].parent.mkdir(parents=True, exist_ok=True)
            state[0].write_text("search state")
            started.set()
            return super().run(spec, cancelled)

    jobs = worker(github, storage, Resumable("wait_cancel"), tmp_path)
    jobs.start()
    assert started.wait(60), "the job never started"
    jobs.stop(timeout=60)  # the runner sees the worker stopping and gives up the job
    job = storage.job(job_id)
    assert job is not None and job.status == "queued"
    assert state[0].read_text() == "search state"  # kept for the restarted worker to resume


def test_a_result_is_vetted_at_the_commit_its_search_ran_on_not_where_the_branch_moved(
    bare: Path, storage: Storage, tmp_path: Path
) -> None:
    github = LocalGitHub(bare)
    github.push(REPO, "main", "a" * 40)
    storage.add_job(REPO, "refs/heads/main", "softmax", "h100", "comment", 5)

    class Moving(ScriptedRunner):
        """While the search runs, someone moves the op's kernel to another file on main."""

        def run(self, spec: JobSpec, cancelled: Cancelled) -> CheckedResult:
            _move_softmax_on_main(bare, tmp_path / "mover")
            return super().run(spec, cancelled)

    worker(github, storage, Moving(), tmp_path).run_pending()
    [job] = storage.jobs()
    assert job.status == "done", [c.summary for c in github.checks.values()]
    assert job.result is not None
    [proposal] = job.result["proposals"]
    assert proposal["status"] == "opened", proposal["reason"]


def _move_softmax_on_main(bare: Path, work: Path) -> None:
    """Commit on main: the op softmax renamed softmax2, its kernel file too."""
    env = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b"}
    env |= {"GIT_COMMITTER_EMAIL": "b@x", "PATH": "/usr/bin:/bin", "HOME": str(work.parent)}
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], env=env, check=True)
    config = work / "pyproject.toml"
    text = config.read_text().replace("demo_kernels/softmax.py", "demo_kernels/sm.py")
    config.write_text(text.replace("ops.softmax]", "ops.softmax2]"))
    steps = (
        ["mv", "demo_kernels/softmax.py", "demo_kernels/sm.py"],
        ["commit", "-qam", "move softmax"],
        ["push", "-q", "origin", "main"],
    )
    for argv in steps:
        subprocess.run(["git", *argv], cwd=work, env=env, check=True)
