"""Jobs on self-hosted runners, end to end on loopback: a signed push reaches the service, which
dispatches the repo's search workflow on the GitHub stand-in; the stand-in's Actions hands the run
to a runner labelled for the job, whose machine plays the workflow's own steps (a real
`kevolve run-job` posting the result back with the dispatch's token); `workflow_run` and
`workflow_job` webhooks tell the bot how the run goes; the PR opens. The token never shows in the
run's log and posts once; runs named like the job's from elsewhere move nothing. A runner that
vanishes costs a retry, then the job fails on its check run."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import git
import httpx
import pytest
from kevolve.bot.board import RunBoard
from kevolve.bot.service.assembly import build
from kevolve.bot.settings import bot_settings
from kevolve.bot.storage import Storage
from kevolve.bot.tokens import key_for, verify

from tests.bot.loopback import client_for, serving
from tests.bot.processes import eventually
from tests.ports import free_port
from tests.standin import auth, gitrepo, payloads
from tests.standin.actions import Actions, RunnerHost, StepStandIn, play_steps
from tests.standin.fixtures import World, git_env
from tests.standin.state import WorkflowRun

SECRET = "actions-path-secret"
KERNEL = "demo_kernels/softmax.py"
WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "kevolve-search.yml"


@dataclass
class Service:
    """The running service, the stand-in's Actions, and what the test needs to drive them."""

    url: str
    storage: Storage
    world: World
    actions: Actions
    scratch: Path

    def push_change(self, line: str) -> str:
        """Commit a kernel change on main and send its push webhook; the new sha."""
        repo = self.world.repo
        before = gitrepo.branch_sha(repo.git_dir, "main") or ""
        after = _commit(self.world, self.scratch / f"push-{time.monotonic_ns()}", line)
        body = payloads.push(repo.full_name, self.world.installation.id, before, after, [KERNEL])
        raw, headers = payloads.signed(SECRET, body, "push")
        answer = httpx.post(f"{self.url}/webhook", content=raw, headers=headers, timeout=30)
        assert answer.status_code == 202
        return after

    def wait_jobs_done(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = self.storage.jobs()
            if jobs and all(j.status not in ("new", "queued", "running") for j in jobs):
                return
            time.sleep(0.2)
        pytest.fail(f"jobs did not finish: {[(j.id, j.status) for j in self.storage.jobs()]}")

    def check(self, sha: str) -> tuple[str | None, str]:
        """The conclusion and summary of the job's check run on `sha`, once it completed (the
        job's status is stored just before its check run is finished on GitHub)."""
        [run] = [c for c in self.world.standin.state.check_runs.values() if c.head_sha == sha]
        assert eventually(lambda: run.status == "completed"), run.status
        return run.conclusion, str(run.output.get("summary", ""))


def _commit(world: World, into: Path, line: str) -> str:
    """Clone, change the kernel (adopting the search workflow on the way), push main."""
    token = auth.issue_token(world.standin.state, world.installation).value
    clone = git.Repo.clone_from(world.standin.clone_url(world.repo, token), into, env=git_env())
    clone.git.update_environment(**git_env())
    workflow = into / ".github" / "workflows" / "kevolve-search.yml"
    workflow.parent.mkdir(parents=True, exist_ok=True)
    workflow.write_text(WORKFLOW.read_text())
    kernel = into / KERNEL
    kernel.write_text(kernel.read_text() + f"# {line}\n")
    clone.index.add([KERNEL, str(workflow.relative_to(into))])
    alice = git.Actor("Alice", "alice@example.com")
    sha = clone.index.commit(line, author=alice, committer=alice).hexsha
    clone.git.push("origin", "HEAD:refs/heads/main")
    return sha


INSTALL = "Install the pinned kevolve on the host's torch and triton"


def search_machine(world: World) -> Callable[[WorkflowRun, RunnerHost], str]:
    """A GPU host's runner playing kevolve-search.yml's own steps, on CPU: the steps that reach
    beyond the machine (the checkout action, pip, the artifact upload) are played here."""

    def checkout(host: RunnerHost, given: Mapping[str, str], env: Mapping[str, str]) -> bool:
        token = auth.issue_token(world.standin.state, world.installation).value
        url = world.standin.clone_url(world.repo, token)
        clone = git.Repo.clone_from(url, host.workspace, env=git_env())
        clone.git.checkout("--quiet", "--detach", given["ref"])
        return True

    def install(host: RunnerHost, given: Mapping[str, str], env: Mapping[str, str]) -> bool:
        """This checkout's kevolve, as the pinned wheel would be, at the path the step makes."""
        kevolve = host.temp / "kevolve" / "bin" / "kevolve"
        kevolve.parent.mkdir(parents=True)
        entry = "import sys; from kevolve.bot.commands.cli import main; sys.exit(main())"
        kevolve.write_text(f'#!/bin/sh\nexec {sys.executable} -c "{entry}" "$@"\n')
        kevolve.chmod(0o755)
        return True

    def keep(host: RunnerHost, given: Mapping[str, str], env: Mapping[str, str]) -> bool:
        found = Path(given["path"])
        if found.exists():
            (host.root / "artifact.json").write_bytes(found.read_bytes())
        return True

    stand_ins: dict[str, StepStandIn] = {
        "actions/checkout@v4": checkout,
        INSTALL: install,
        "actions/upload-artifact@v4": keep,
    }
    return lambda run, host: play_steps(host, stand_ins)


@pytest.fixture
def start(github_standin: World, tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Start the service with the actions runner; keyword arguments are extra settings."""
    with ExitStack() as stack:

        def run(**extra: str) -> Service:
            key = tmp_path / "app.pem"
            key.write_text(github_standin.app.private_key)
            port = free_port()
            url = f"http://127.0.0.1:{port}"  # the bot's URL is a setting, so the port comes first
            env = {
                "KEVOLVE_WEBHOOK_SECRET": SECRET,
                "KEVOLVE_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
                "KEVOLVE_GITHUB_APP_ID": str(github_standin.app.app_id),
                "KEVOLVE_GITHUB_PRIVATE_KEY_PATH": str(key),
                "KEVOLVE_GITHUB_API_URL": github_standin.standin.urls.api,
                "KEVOLVE_HARDWARE": "h100",
                "KEVOLVE_BUDGET": "2",
                "KEVOLVE_WORKDIR": str(tmp_path / "work"),
                "KEVOLVE_PUBLISH_UNTIMED": "1",
                "KEVOLVE_RUNNER": "actions",
                "KEVOLVE_BOT_URL": url,
                **extra,
            }
            storage = Storage(env["KEVOLVE_DATABASE_URL"])
            stack.callback(storage.close)
            clients = client_for(github_standin)
            app, _worker = build(bot_settings(env), client_for=clients, storage=storage)
            stack.enter_context(serving(app, port))
            actions = Actions(
                github_standin.standin,
                github_standin.installation.id,
                f"{url}/webhook",
                SECRET,
                tmp_path / "machines",
                {**os.environ, "TRITON_INTERPRET": "1"},
            )
            return Service(url, storage, github_standin, actions, tmp_path)

        yield run


def test_a_push_runs_on_the_labelled_runner_and_its_posted_result_becomes_the_pull_request(
    start: Callable[..., Service],
) -> None:
    service = start()
    world = service.world
    service.actions.machine = search_machine(world)
    sha = service.push_change("search on the runner")
    service.wait_jobs_done()
    service.actions.join()

    [job] = service.storage.jobs()
    assert (job.op, job.hardware, job.status) == ("softmax", "h100", "done")
    [run] = service.actions.runs()
    assert (run.workflow, run.ref, run.status, run.conclusion) == (
        "kevolve-search.yml",
        "main",
        "completed",
        "success",
    )
    inputs = run.inputs
    assert (inputs["job_id"], inputs["op"], inputs["hardware"]) == (str(job.id), "softmax", "h100")
    assert (inputs["sha"], inputs["attempt"], inputs["bot_url"]) == (sha, "1", service.url)
    grant = verify(key_for(SECRET), inputs["token"], job.id, time.time())  # the job's, unexpired
    assert (grant.op, grant.attempt) == ("softmax", 1)

    # The workflow_job webhooks reached the board: the run, on its runner, completed.
    board = RunBoard(service.storage.engine, service.storage.now)
    [use] = board.token_uses(job.id)
    assert (use.op, use.attempt, use.replays) == ("softmax", 1, 0) and use.spent_at is not None
    state = board.state(job.id, "softmax")
    assert state is not None
    assert (state.run_id, state.status, state.conclusion, state.runner_name) == (
        run.id,
        "completed",
        "success",
        "gpu-1",
    )

    # The posted result is the job's, and its winner is on the pull request's branch.
    assert job.result is not None
    result = job.result["results"]["softmax"]
    assert result == state.result and result["job"]["hardware"] == "h100"
    [pull] = [p for p in world.standin.state.pulls_of(world.repo) if p.state == "open"]
    assert pull.head == "kevolve/softmax/h100"
    head = gitrepo.branch_sha(world.repo.git_dir, pull.head)
    assert head is not None
    published = gitrepo.git("show", f"{head}:{KERNEL}", cwd=world.repo.git_dir)
    assert published == result["best"]["source"]
    conclusion, summary = service.check(sha)
    assert conclusion == "success" and f"#{pull.number}" in summary


def test_a_runner_that_vanishes_is_retried_then_the_job_fails_on_its_check_run(
    start: Callable[..., Service],
) -> None:
    service = start(KEVOLVE_RUNNER_ATTEMPTS="2", KEVOLVE_RUNNER_GRACE_S="0.5")
    service.actions.machine = lambda run, host: "failure"  # the host went away mid-job
    sha = service.push_change("the runner vanishes")
    service.wait_jobs_done(timeout=60)

    [job] = service.storage.jobs()
    assert job.status == "failed"
    runs = service.actions.runs()
    assert [r.inputs["attempt"] for r in runs] == ["1", "2"]
    assert all((r.status, r.conclusion) == ("completed", "failure") for r in runs)
    conclusion, summary = service.check(sha)
    assert conclusion == "failure"
    assert "no result for softmax on runner label 'h100' after 2 attempts" in summary
    assert f"run {runs[0].id} ended (failure) on runner 'gpu-1' without posting" in summary
    assert not [p for p in service.world.standin.state.pulls_of(service.world.repo)]


def test_a_run_no_runner_picks_up_is_cancelled_and_retried_then_fails(
    start: Callable[..., Service],
) -> None:
    service = start(
        KEVOLVE_HARDWARE="a100", KEVOLVE_RUNNER_ATTEMPTS="2", KEVOLVE_RUNNER_PICKUP_S="1"
    )
    sha = service.push_change("nobody serves a100")
    service.wait_jobs_done(timeout=60)

    runs = service.actions.runs()
    assert [r.inputs["attempt"] for r in runs] == ["1", "2"]
    assert all(r.status == "queued" and r.cancel_requested for r in runs)
    conclusion, summary = service.check(sha)
    assert conclusion == "failure"
    assert "no runner labelled 'a100' picked the run up within 1 s" in summary


def test_the_token_never_shows_in_the_runs_log_and_posts_once(
    start: Callable[..., Service],
) -> None:
    """The runner prints each step's script and env before the step runs; the token is in
    neither, the step that reads it masks it first, and its file is gone after the search."""
    service = start()
    service.actions.machine = search_machine(service.world)
    service.push_change("watch the log")
    service.wait_jobs_done()
    service.actions.join()
    [job] = service.storage.jobs()
    assert job.status == "done"
    [run] = service.actions.runs()
    host = service.actions.hosts[run.id]
    log = host.log.text()
    token = run.inputs["token"]
    assert "kevolve run-job: posted to" in log and "##[group]Run Take the token" in log
    assert token not in log
    assert token.split(".")[-1] not in log  # not even its signature
    assert not (host.temp / "kevolve-job-token").exists()
    # The judge's compile cache is this repository's own on a machine shared between repos.
    assert [p.name for p in (host.tool_cache / "kevolve").iterdir()] == ["acme"]

    # A second post with the same token is refused, says why, and the board counts it.
    result = json.loads((host.root / "artifact.json").read_text())
    replay = httpx.post(
        f"{service.url}/jobs/{job.id}/result",
        json=result,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert replay.status_code == 409 and replay.json()["spent"] is True
    assert "used already" in replay.json()["error"]
    board = RunBoard(service.storage.engine, service.storage.now)
    [use] = board.token_uses(job.id)
    assert use.replays == 1


def test_runs_named_like_the_jobs_from_elsewhere_move_nothing(
    start: Callable[..., Service],
) -> None:
    """While the real run goes, a fork's CI job and a pull request's run carry the job's run name
    (the tag copied from the real run's title too), and fail; the job goes on, on the real run."""
    service = start(KEVOLVE_RUNNER_GRACE_S="2")
    real = search_machine(service.world)
    forged_ids: list[int] = []

    def machine(run: WorkflowRun, host: RunnerHost) -> str:
        inputs = run.inputs
        plain = f"kevolve job {inputs['job_id']} {inputs['op']} #{inputs['attempt']}"
        tagged = f"{plain} {inputs['tag']}"
        deliveries = []
        for name, path, event in [
            (plain, ".github/workflows/ci.yml", "pull_request"),  # a PR titled so
            (tagged, ".github/workflows/ci.yml", "workflow_dispatch"),  # another workflow
            (tagged, ".github/workflows/kevolve-search.yml", "pull_request"),  # a fork's PR
        ]:
            fake = replace(run, id=service.world.standin.state.next_id(), name=name)
            fake.status, fake.conclusion = "completed", "failure"
            forged_ids.append(fake.id)
            deliveries.append(service.actions.send_job(fake, "completed", "evil", "failure"))
            deliveries.append(service.actions.send_run(fake, "completed", name, path, event))
        assert eventually(lambda: all(_handled(service.storage, d) for d in deliveries), timeout=60)
        return real(run, host)

    service.actions.machine = machine
    sha = service.push_change("impostors")
    service.wait_jobs_done()
    service.actions.join()

    [job] = service.storage.jobs()
    assert job.status == "done"
    [run] = service.actions.runs()  # one dispatch: no attempt was lost to an impostor
    state = RunBoard(service.storage.engine, service.storage.now).state(job.id, "softmax")
    assert state is not None
    assert (state.run_id, state.conclusion, state.runner_name) == (run.id, "success", "gpu-1")
    assert state.run_id not in forged_ids
    conclusion, _summary = service.check(sha)
    assert conclusion == "success"


def _handled(storage: Storage, delivery_id: str) -> bool:
    delivery = storage.delivery(delivery_id)
    return delivery is not None and delivery.status == "done"
