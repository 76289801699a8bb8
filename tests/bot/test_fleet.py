"""The fleet poller against the GitHub stand-in, through the real app client, git and storage."""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from kevolve.bot.configs import head_sha, read_config
from kevolve.bot.fleet import FleetPoller, FleetSettings
from kevolve.bot.fleet_store import FleetStore
from kevolve.bot.github import AppClient
from kevolve.bot.jobrecord import OpKernel
from kevolve.bot.messages import Messages
from kevolve.bot.storage import Job, Storage

from tests.bot.fixtures import timed_result
from tests.standin import gitrepo
from tests.standin.fixtures import DEMO, World, add_org_runner, add_runner, create_repo
from tests.standin.state import Repo

ROOT = Path(__file__).resolve().parents[2]
OPS = ["softmax", "rmsnorm", "bias_gelu", "matmul_bias_relu"]
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday
WEEKLY = 'schedule = "0 3 * * 1"'  # Mondays 03:00 UTC
_IDENTITY = {
    "GIT_AUTHOR_NAME": "Mona",
    "GIT_AUTHOR_EMAIL": "mona@example.com",
    "GIT_COMMITTER_NAME": "Mona",
    "GIT_COMMITTER_EMAIL": "mona@example.com",
}


class Clock:
    """A clock the test moves by hand; storage and poller read the same one."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(database_url: str, clock: Clock) -> Iterator[Storage]:
    """Real storage on SQLite and on PostgreSQL, on the test's clock."""
    storage = Storage(database_url, clock=clock)
    storage.create_all()
    yield storage
    storage.close()


def configured(world: World, tmp_path: Path, name: str, settings: str) -> Repo:
    """A repo of the demo ops whose [tool.kevolve] table also holds `settings`."""
    source = tmp_path / f"source-{name}"
    shutil.copytree(DEMO, source)
    config = source / "pyproject.toml"
    config.write_text(config.read_text() + f"\n[tool.kevolve]\n{settings}\n")
    return create_repo(world.standin, world.installation, name, source)


def known(store: Storage, world: World, repo: Repo, hardware: str = "local") -> None:
    """Make kevolve know the repo: a job (with no result) ran there, through the world's
    installation, on `hardware`."""
    store.add_job(
        repo.full_name,
        "0" * 40,
        "softmax",
        hardware,
        "push",
        5,
        status="done",
        installation_id=world.installation.id,
    )


def finished(store: Storage, repo: Repo, op: str, label: str, torch: str) -> None:
    """A done search of `op` on `label`, finished now, whose runner had `torch`."""
    job_id = store.add_job(repo.full_name, "0" * 40, op, label, "push", 5, status="running")
    result = timed_result()  # a whole result as a runner returns it: the schedule reads it typed
    result["problem"] = op
    result["hardware"].update(torch=torch, triton="3.1.0")
    store.set_job_status(job_id, "done", {"sha": "0" * 40, "results": {op: result}})


def poller(
    world: World,
    store: Storage,
    tmp_path: Path,
    clock: Clock,
    hardware: tuple[str, ...] = ("local",),
) -> FleetPoller:
    """A poller acting through a real app client of the world's installation."""
    app = world.app
    client = AppClient(
        app.app_id, app.private_key, world.installation.id, world.standin.urls.api, throttle=False
    )
    read = partial(read_config, tmp_path / "configs")
    settings = FleetSettings(hardware, budget=5)
    messages = Messages(ROOT / "templates" / "github")
    return FleetPoller(store, lambda _id: client, head_sha, read, settings, messages, clock)


def head(repo: Repo) -> str:
    sha = gitrepo.branch_sha(repo.git_dir, repo.default_branch)
    assert sha is not None
    return sha


def commit_config(repo: Repo, tmp_path: Path, old: str, new: str) -> str:
    """Replace `old` by `new` in the repo's pyproject.toml on its default branch; the new head."""
    work = tmp_path / f"edit-{head(repo)[:8]}"
    gitrepo.git("clone", "-q", str(repo.git_dir), str(work), cwd=tmp_path)
    config = work / "pyproject.toml"
    config.write_text(config.read_text().replace(old, new))
    gitrepo.git("commit", "-qam", "Fix the kevolve config", cwd=work, env=_IDENTITY)
    gitrepo.git("push", "-q", "origin", f"HEAD:{repo.default_branch}", cwd=work)
    return head(repo)


def jobs_by(store: Storage, repo: Repo, trigger: str) -> list[Job]:
    return [job for job in store.jobs(repo.full_name) if job.trigger == trigger]


def test_a_new_label_queues_every_op_exactly_once(
    github_standin: World, store: Storage, clock: Clock, tmp_path: Path
) -> None:
    world = github_standin
    repo = configured(world, tmp_path, "gpus", 'hardware = "auto"')
    add_runner(world.standin, repo, "gpu-1", ["self-hosted", "Linux", "X64", "h100"])
    known(store, world, repo)
    fleet = poller(world, store, tmp_path, clock)

    queued = fleet.poll()
    jobs = jobs_by(store, repo, "hardware")
    assert sorted(queued) == [job.id for job in jobs]
    assert [(j.op, j.hardware, j.status, j.sha, j.budget) for j in jobs] == [
        (op, "h100", "queued", head(repo), 5) for op in OPS
    ]
    assert [j.kernels for j in jobs] == [(OpKernel(op, f"demo_kernels/{op}.py"),) for op in OPS]
    checks = {c.id: c for c in world.standin.state.check_runs.values() if c.repo is repo}
    assert [(checks[j.check_id].name, checks[j.check_id].head_sha) for j in jobs if j.check_id] == [
        (f"kevolve: {op} on h100", head(repo)) for op in OPS
    ]
    summary = checks[jobs[0].check_id or 0].output["summary"]
    assert "because a runner with the new label `h100` joined the fleet" in summary

    assert fleet.poll() == []  # the same listing again
    add_runner(world.standin, repo, "gpu-2", ["self-hosted", "Linux", "ARM64", "gh200"])
    assert len(fleet.poll()) == len(OPS)
    restarted = poller(world, store, tmp_path, clock)
    assert restarted.poll() == [] and fleet.poll() == []
    assert sorted((j.hardware, j.op) for j in jobs_by(store, repo, "hardware")) == sorted(
        (label, op) for label in ("h100", "gh200") for op in OPS
    )


def test_two_pollers_at_once_queue_a_new_label_once(
    github_standin: World, store: Storage, clock: Clock, tmp_path: Path
) -> None:
    world = github_standin
    repo = configured(world, tmp_path, "gpus", 'hardware = "auto"')
    add_runner(world.standin, repo, "gpu-1", ["self-hosted", "h100"])
    known(store, world, repo)
    fleets = [poller(world, store, tmp_path / str(i), clock) for i in range(2)]
    start = threading.Barrier(2)
    queued: list[list[int]] = []

    def run(fleet: FleetPoller) -> None:
        start.wait()
        queued.append(fleet.poll())

    threads = [threading.Thread(target=run, args=(fleet,)) for fleet in fleets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(len(ids) for ids in queued) == [0, len(OPS)]
    assert len(jobs_by(store, repo, "hardware")) == len(OPS)


def test_labels_kevolve_already_ran_on_are_recorded_without_jobs(
    github_standin: World, store: Storage, clock: Clock, tmp_path: Path
) -> None:
    world = github_standin
    repo = configured(world, tmp_path, "gpus", 'hardware = "auto"')
    add_runner(world.standin, repo, "gpu-1", ["self-hosted", "h100", "a10g"])
    known(store, world, repo, hardware="h100")  # a push already searched on h100
    fleet = poller(world, store, tmp_path, clock)
    fleet.poll()
    assert [(j.hardware, j.op) for j in jobs_by(store, repo, "hardware")] == [
        ("a10g", op) for op in OPS
    ]
    seen = FleetStore(store.engine, store.now).runner_labels(repo.full_name)
    assert seen == {"self-hosted", "h100", "a10g"}


@pytest.mark.parametrize(
    ("settings", "bot_labels", "queued_on"),
    [
        ('hardware = "auto"', ("local",), ["a100", "h100"]),
        ('hardware = ["a100", "mi300x"]', ("local",), ["a100"]),
        ("", ("h100",), ["h100"]),  # no `hardware`: the bot's KEVOLVE_HARDWARE
    ],
    ids=["auto", "listed", "bot-default"],
)
def test_the_repo_hardware_setting_picks_the_labels(
    github_standin: World,
    store: Storage,
    clock: Clock,
    tmp_path: Path,
    settings: str,
    bot_labels: tuple[str, ...],
    queued_on: list[str],
) -> None:
    world = github_standin
    repo = configured(world, tmp_path, "gpus", settings)
    add_runner(world.standin, repo, "gpu-1", ["self-hosted", "Linux", "X64", "h100"])
    add_runner(world.standin, repo, "gpu-2", ["self-hosted", "Linux", "ARM64", "a100"])
    known(store, world, repo)
    poller(world, store, tmp_path, clock, hardware=bot_labels).poll()
    jobs = jobs_by(store, repo, "hardware")
    assert sorted({j.hardware for j in jobs}) == queued_on
    assert len(jobs) == len(OPS) * len(queued_on)


def test_labels_every_runner_has_queue_nothing_with_auto(
    github_standin: World, store: Storage, clock: Clock, tmp_path: Path
) -> None:
    world = github_standin
    repo = configured(world, tmp_path, "cpus", 'hardware = "auto"')
    add_runner(world.standin, repo, "build-1", ["self-hosted", "Linux", "X64", "macOS", "ARM64"])
    known(store, world, repo)
    assert poller(world, store, tmp_path, clock).poll() == []
    assert jobs_by(store, repo, "hardware") == []
    seen = FleetStore(store.engine, store.now).runner_labels(repo.full_name)
    assert seen == {"self-hosted", "Linux", "X64", "macOS", "ARM64"}


def test_organization_runners_are_seen(
    github_standin: World, store: Storage, clock: Clock, tmp_path: Path
) -> None:
    world = github_standin
    repo = configured(world, tmp_path, "gpus", 'hardware = "auto"')
    add_org_runner(world.standin, "acme", "shared-1", ["self-hosted", "Linux", "l40s"])
    add_org_runner(world.standin, "elsewhere", "theirs", ["self-hosted", "b200"])
    known(store, world, repo)
    poller(world, store, tmp_path, clock).poll()
    assert {j.hardware for j in jobs_by(store, repo, "hardware")} == {"l40s"}


def test_without_the_org_runner_permission_only_repo_runners_count_and_it_is_logged_once(
    github_standin: World,
    store: Storage,
    clock: Clock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = github_standin
    del world.standin.state.apps[world.app.app_id].permissions["organization_self_hosted_runners"]
    repo = configured(world, tmp_path, "gpus", 'hardware = "auto"')
    add_org_runner(world.standin, "acme", "shared-1", ["self-hosted", "l40s"])
    add_runner(world.standin, repo, "gpu-1", ["self-hosted", "h100"])
    known(store, world, repo)
    fleet = poller(world, store, tmp_path, clock)
    with caplog.at_level(logging.INFO, logger="kevolve.bot.github"):
        fleet.poll()
        fleet.poll()
    assert {j.hardware for j in jobs_by(store, repo, "hardware")} == {"h100"}
    refusals = [r for r in caplog.records if "no organization runners for acme" in r.getMessage()]
    assert len(refusals) == 1 and "403" in refusals[0].getMessage()


@pytest.mark.parametrize(
    ("bad", "field", "problem"),
    [
        ('schedule = "0 3 * *"', "tool.kevolve.schedule", "has 4 fields, not 5"),
        ('hardware = ["self-hosted"]', "tool.kevolve.hardware", "'self-hosted' is a label GitHub"),
    ],
    ids=["cron", "hardware"],
)
def test_a_broken_config_fails_one_check_and_queues_nothing_until_fixed(
    github_standin: World,
    store: Storage,
    clock: Clock,
    tmp_path: Path,
    bad: str,
    field: str,
    problem: str,
) -> None:
    world = github_standin
    repo = configured(world, tmp_path, "gpus", bad)
    add_runner(world.standin, repo, "gpu-1", ["self-hosted", "h100"])
    known(store, world, repo)
    fleet = poller(world, store, tmp_path, clock, hardware=("h100",))
    assert fleet.poll() == [] and fleet.poll() == []
    assert poller(world, store, tmp_path, clock, hardware=("h100",)).poll() == []  # restarted
    [check] = [c for c in world.standin.state.check_runs.values() if c.repo is repo]
    assert (check.name, check.head_sha, check.conclusion) == ("kevolve", head(repo), "failure")
    assert check.output["title"] == "kevolve config is broken: no jobs were queued"
    summary = check.output["summary"]
    assert f"- **Field:** `{field}`" in summary and problem in summary
    assert "New runner labels waiting on it: `h100`." in summary
    assert jobs_by(store, repo, "hardware") == []

    fixed = commit_config(repo, tmp_path, bad, "")
    assert len(fleet.poll()) == len(OPS)  # the label waited for the fix
    assert {j.sha for j in jobs_by(store, repo, "hardware")} == {fixed}


def schedule_repo(world: World, store: Storage, tmp_path: Path, settings: str = WEEKLY) -> Repo:
    """A known repo searching on h100 (a label it already has jobs on), with `settings`."""
    repo = configured(world, tmp_path, "nightly", f'hardware = ["h100"]\n{settings}')
    add_runner(world.standin, repo, "gpu-1", ["self-hosted", "h100"])
    known(store, world, repo, hardware="h100")
    return repo


def test_the_schedule_queues_stale_searches_once_per_tick(
    github_standin: World, store: Storage, clock: Clock, tmp_path: Path
) -> None:
    world = github_standin
    repo = schedule_repo(world, store, tmp_path)
    for op in OPS:
        finished(store, repo, op, "h100", "2.5.1")
    fleet = poller(world, store, tmp_path, clock)
    assert fleet.poll() == []  # the first look only starts counting ticks

    clock.now = T0 + timedelta(days=6)  # Monday's tick passed; every result is 6 days old
    assert fleet.poll() == []
    clock.now = T0 + timedelta(days=8)  # stale now, but no tick since the last look
    assert fleet.poll() == []
    clock.now = T0 + timedelta(days=13)  # the next Monday's tick: 13 days old
    queued = fleet.poll()
    jobs = jobs_by(store, repo, "schedule")
    assert sorted(queued) == [j.id for j in jobs]
    assert [(j.op, j.hardware, j.status, j.sha) for j in jobs] == [
        (op, "h100", "queued", head(repo)) for op in OPS
    ]
    assert [j.kernels for j in jobs] == [(OpKernel(op, f"demo_kernels/{op}.py"),) for op in OPS]
    check = world.standin.state.check_runs[jobs[0].check_id or 0]
    assert "because its newest search is 13 days old (stale after 7)" in check.output["summary"]
    assert fleet.poll() == []  # the same tick again
    assert poller(world, store, tmp_path, clock).poll() == []  # a restart sees the mark


def test_the_schedule_queues_ops_whose_results_predate_the_runner_versions(
    github_standin: World, store: Storage, clock: Clock, tmp_path: Path
) -> None:
    world = github_standin
    repo = schedule_repo(world, store, tmp_path)
    finished(store, repo, "softmax", "h100", "2.4.0")
    clock.now = T0 + timedelta(days=1)  # the runner got a new torch; the other ops ran on it
    for op in OPS[1:]:
        finished(store, repo, op, "h100", "2.5.1")
    fleet = poller(world, store, tmp_path, clock)
    fleet.poll()

    clock.now = T0 + timedelta(days=6)  # Monday's tick; nothing is stale
    fleet.poll()
    [job] = jobs_by(store, repo, "schedule")
    assert (job.op, job.hardware) == ("softmax", "h100")
    summary = world.standin.state.check_runs[job.check_id or 0].output["summary"]
    assert (
        "the runner now has torch 2.5.1, triton 3.1.0; "
        "the newest search ran on torch 2.4.0, triton 3.1.0"
    ) in summary


def test_the_schedule_leaves_fresh_current_and_waiting_searches_alone(
    github_standin: World, store: Storage, clock: Clock, tmp_path: Path
) -> None:
    world = github_standin
    repo = schedule_repo(world, store, tmp_path, f"{WEEKLY}\nstale_days = 30")
    for op in OPS[:3]:
        finished(store, repo, op, "h100", "2.5.1")
    store.add_job(repo.full_name, "0" * 40, OPS[3], "h100", "comment", 5)  # queued already
    fleet = poller(world, store, tmp_path, clock)
    fleet.poll()
    clock.now = T0 + timedelta(days=13)  # two ticks, results 13 of 30 days old
    assert fleet.poll() == []
    assert jobs_by(store, repo, "schedule") == []


def test_a_repo_without_a_schedule_queues_nothing_on_a_clock(
    github_standin: World, store: Storage, clock: Clock, tmp_path: Path
) -> None:
    world = github_standin
    repo = schedule_repo(world, store, tmp_path, settings="")
    fleet = poller(world, store, tmp_path, clock)
    fleet.poll()
    clock.now = T0 + timedelta(days=60)
    assert fleet.poll() == []
    assert FleetStore(store.engine, store.now).schedule_checked(repo.full_name) is None


def test_two_pollers_at_one_tick_queue_its_searches_once(
    github_standin: World, store: Storage, clock: Clock, tmp_path: Path
) -> None:
    world = github_standin
    repo = schedule_repo(world, store, tmp_path)
    fleets = [poller(world, store, tmp_path / str(i), clock) for i in range(2)]
    fleets[0].poll()
    clock.now = T0 + timedelta(days=6)  # Monday's tick; nothing ever searched on h100
    start = threading.Barrier(2)

    def run(fleet: FleetPoller) -> None:
        start.wait()
        fleet.poll()

    threads = [threading.Thread(target=run, args=(fleet,)) for fleet in fleets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(j.op for j in jobs_by(store, repo, "schedule")) == sorted(OPS)
