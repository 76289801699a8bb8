"""The whole bot on loopback: a signed push from GitHub's own example payload reaches `kevolve
serve`'s app, a job searches (correctness only, on CPU), and a pull request appears on the GitHub
stand-in; a second run updates it; a person's commit on the branch stops the bot from pushing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import git
import httpx
import pytest
from kevolve.bot.jobs import JobWorker
from kevolve.bot.reproduce import BASELINE_FILE
from kevolve.bot.service.assembly import build
from kevolve.bot.settings import bot_settings
from kevolve.bot.storage import Storage

from tests.bot.loopback import client_for, serving
from tests.bot.processes import eventually
from tests.jobuser import ensure_job_user, reachable_dir
from tests.standin import auth, gitrepo, payloads
from tests.standin.fixtures import World, git_env
from tests.standin.state import Pull

SECRET = "full-path-secret"
KERNEL = "demo_kernels/softmax.py"
BRANCH = "kevolve/softmax/cpu"


@dataclass
class Service:
    """The running service and what the test needs to drive it."""

    url: str
    storage: Storage
    worker: JobWorker
    world: World
    clones: Path

    def push_change(self, line: str) -> str:
        """Commit a change to the softmax kernel on main, send its push webhook; the new sha."""
        repo = self.world.repo
        before = gitrepo.branch_sha(repo.git_dir, "main") or ""
        into = self.clones / f"push-{time.monotonic_ns()}"
        clone = git.Repo.clone_from(clone_url(self.world), into, env=git_env())
        clone.git.update_environment(**git_env())
        path = into / KERNEL
        path.write_text(path.read_text() + f"# {line}\n")
        clone.index.add([KERNEL])
        alice = git.Actor("Alice", "alice@example.com")
        after = clone.index.commit(line, author=alice, committer=alice).hexsha
        clone.git.push("origin", "HEAD:refs/heads/main")
        body = payloads.push(repo.full_name, self.world.installation.id, before, after, [KERNEL])
        assert self.deliver(body, "push").status_code == 202
        return after

    def deliver(self, body: dict[str, object], event: str) -> httpx.Response:
        raw, headers = payloads.signed(SECRET, body, event)
        return httpx.post(f"{self.url}/webhook", content=raw, headers=headers, timeout=30)

    def wait_jobs_done(self, count: int, timeout: float = 240) -> None:
        """Wait until `count` jobs exist and none is queued or running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = self.storage.jobs()
            if len(jobs) >= count and all(
                j.status not in ("new", "queued", "running") for j in jobs
            ):
                return
            time.sleep(0.2)
        pytest.fail(f"jobs did not finish: {[(j.id, j.status) for j in self.storage.jobs()]}")

    def open_pulls(self) -> list[Pull]:
        return [p for p in self.world.standin.state.pulls_of(self.world.repo) if p.state == "open"]


def clone_url(world: World) -> str:
    token = auth.issue_token(world.standin.state, world.installation).value
    return world.standin.clone_url(world.repo, token)


@pytest.fixture
def service(github_standin: World, tmp_path: Path) -> Iterator[Service]:
    with reachable_dir("kevolve-full-path-") as work:
        yield from _service(github_standin, tmp_path, work)


def _service(github_standin: World, tmp_path: Path, work: Path) -> Iterator[Service]:
    """The bot on loopback, its jobs as the job user in `work` (pytest's own dirs are 0700)."""
    key = tmp_path / "app.pem"
    key.write_text(github_standin.app.private_key)
    settings = bot_settings(
        {
            "KEVOLVE_WEBHOOK_SECRET": SECRET,
            "KEVOLVE_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
            "KEVOLVE_GITHUB_APP_ID": str(github_standin.app.app_id),
            "KEVOLVE_GITHUB_PRIVATE_KEY_PATH": str(key),
            "KEVOLVE_GITHUB_API_URL": github_standin.standin.urls.api,
            "KEVOLVE_HARDWARE": "cpu",
            "KEVOLVE_BUDGET": "2",
            "KEVOLVE_DEVICE": "cpu",
            "KEVOLVE_WORKDIR": str(work / "work"),
            "KEVOLVE_JOB_USER": ensure_job_user(),
            "KEVOLVE_PUBLISH_UNTIMED": "1",
        }
    )
    storage = Storage(settings.database_url)
    app, worker = build(settings, client_for=client_for(github_standin), storage=storage)
    try:
        with serving(app) as url:
            yield Service(url, storage, worker, github_standin, tmp_path)
    finally:
        storage.close()


def test_a_push_becomes_one_pull_request_that_later_runs_update_and_people_are_not_overwritten(
    service: Service,
) -> None:
    world = service.world
    sha = service.push_change("first change")
    service.wait_jobs_done(1)
    [job] = service.storage.jobs()
    assert (job.op, job.hardware, job.trigger, job.status) == ("softmax", "cpu", "push", "done")

    # The pull request: the deterministic branch, one bot commit on main's head, the body.
    [pull] = service.open_pulls()
    assert (pull.head, pull.base) == (BRANCH, "main")
    assert pull.title == "kevolve: new softmax kernel (correctness only, not timed)"
    body = pull.body or ""
    assert "Nothing was timed" in body and "## Correctness" in body
    assert "| 8192x8192 |" not in body  # production shapes are not checked on CPU
    # The reproduce section checks the candidate against the baseline the job started from.
    assert f"--candidate {KERNEL} --baseline {BASELINE_FILE} --dtype " in body
    assert body.count("--device cpu --no-time") == 1
    head = gitrepo.branch_sha(world.repo.git_dir, BRANCH)
    assert head is not None
    info = gitrepo.commit_info(world.repo.git_dir, head)
    assert info.parents == [sha] and info.author_name == "kevolve[bot]"
    published = gitrepo.git("show", f"{head}:{KERNEL}", cwd=world.repo.git_dir)
    assert published == job.result["results"]["softmax"]["best"]["source"]

    # The job's check run on the pushed commit finished with the outcome.
    [check] = [c for c in world.standin.state.check_runs.values() if c.head_sha == sha]
    assert eventually(lambda: check.status == "completed")  # finished just after the job is
    assert (check.name, check.status, check.conclusion) == (
        "kevolve: softmax on cpu",
        "completed",
        "success",
    )
    assert f"#{pull.number}" in check.output["summary"]

    # A second push: the same pull request is updated, none opened.
    second = service.push_change("second change")
    service.wait_jobs_done(2)
    assert [p.number for p in service.open_pulls()] == [pull.number]
    moved = gitrepo.branch_sha(world.repo.git_dir, BRANCH)
    assert moved is not None and gitrepo.commit_info(world.repo.git_dir, moved).parents == [second]
    assert service.storage.jobs()[-1].result["proposals"][0]["status"] == "updated"

    # A person commits on the branch: the next run does not push over it and says so.
    human = _human_commit(service, moved)
    service.push_change("third change")
    service.wait_jobs_done(3)
    assert gitrepo.branch_sha(world.repo.git_dir, BRANCH) == human
    last = service.storage.jobs()[-1].result["proposals"][0]
    assert last["status"] == "blocked" and human[:7] in last["reason"]
    comments = [
        c.body for c in world.standin.state.comments.values() if c.issue_number == pull.number
    ]
    assert any("never force-pushes over a person's work" in c for c in comments)
    assert [p.number for p in service.open_pulls()] == [pull.number]


def test_a_replayed_push_queues_no_second_job(service: Service) -> None:
    world = service.world
    before = gitrepo.branch_sha(world.repo.git_dir, "main") or ""
    body = payloads.push(world.repo.full_name, world.installation.id, before, before, [KERNEL])
    raw, headers = payloads.signed(SECRET, body, "push")
    url = f"{service.url}/webhook"
    first = httpx.post(url, content=raw, headers=headers, timeout=30)
    again = httpx.post(url, content=raw, headers=headers, timeout=30)
    assert (first.status_code, again.status_code) == (202, 200)
    delivery = headers["X-GitHub-Delivery"]

    def handled() -> bool:
        stored = service.storage.delivery(delivery)
        return stored is not None and stored.status != "pending"

    # Once the one stored delivery is handled, every job it makes exists; the replay stored none.
    assert eventually(handled, timeout=60)
    service.worker.stop()  # the search itself is not what this test is about
    assert service.storage.delivery(delivery).status == "done"  # type: ignore[union-attr]
    assert len(service.storage.jobs()) == 1


def _human_commit(service: Service, branch_head: str) -> str:
    """Alice pushes a commit onto the kevolve branch; its sha."""
    into = service.clones / "human"
    clone = git.Repo.clone_from(clone_url(service.world), into, branch=BRANCH, env=git_env())
    clone.git.update_environment(**git_env())
    assert clone.head.commit.hexsha == branch_head
    (into / "NOTES.md").write_text("tuned by hand\n")
    clone.index.add(["NOTES.md"])
    alice = git.Actor("Alice", "alice@example.com")
    sha = clone.index.commit("Hand tuning", author=alice, committer=alice).hexsha
    clone.git.push("origin", f"HEAD:refs/heads/{BRANCH}")
    return sha
