"""What the dashboard keeps of jobs that ended, against a real `kevolve serve` (with its worker
and fleet poller) and the GitHub stand-in, looked at in a real headless Chromium: a finished
job's search keeps its whole lineage with the prompts and replies (its state file is kept), a
failed job's reason shows on the fleet page, and each repo's next scheduled run shows on the
repos pages. And a database an earlier version created is migrated when the bot starts on it,
on SQLite and PostgreSQL: it gains the new columns, and the pseudo-jobs that version stored for
closed pull requests move to their own table."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from kevolve.bot.archive import Keeping, StateArchive
from kevolve.bot.cron import parse_cron
from kevolve.bot.fleet_store import FleetStore
from kevolve.bot.jobrecord import JobStatus, Trigger
from kevolve.bot.pull_store import ClosedPull, PullOutcome, PullStore
from kevolve.bot.storage import Storage
from kevolve.harness.search.snapshot import records
from selenium.webdriver.common.by import By

from tests.bot.chromium import chromium, screenshot, shown
from tests.bot.old_schema import OLD, OLD_FLEET_REPOS, OLD_JOBS
from tests.bot.processes import eventually
from tests.fakes.llm_server import FakeLLMServer
from tests.ports import free_port
from tests.standin import gitrepo, payloads
from tests.standin.fixtures import DEMO, World, build_world, create_repo
from tests.standin.state import Repo

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "history-webhook-secret-0123456789"
LLM_KEY = "sk-kevolve-history-test-key-0123456789"
KERNEL = "demo_kernels/softmax.py"
REFERENCE = "demo_kernels/reference.py"
BUDGET = 3
CRON = "0 3 * * 1"  # Mondays 03:00 UTC
BROKEN = "the reference is broken on purpose"
IDENTITY = {
    "GIT_AUTHOR_NAME": "Alice",
    "GIT_AUTHOR_EMAIL": "alice@example.com",
    "GIT_COMMITTER_NAME": "Alice",
    "GIT_COMMITTER_EMAIL": "alice@example.com",
}
SEED = (DEMO / KERNEL).read_text()
LAUNCH = "BLOCK=triton.next_power_of_2(n_cols),"
# The scripted model's answers: launch variants of the seed, each with its reason.
REPLIES = [
    f"Use {n} warps per row.\n```python\n{SEED.replace(LAUNCH, f'{LAUNCH} num_warps={n},')}```\n"
    for n in (4, 2, 8, 1, 16, 32)
]


@dataclass
class Bot:
    """A running `kevolve serve`, its database, and the stand-in repo it optimizes."""

    url: str
    world: World
    repo: Repo  # acme/nightly: a schedule, and every proposal from the LLM
    storage: Storage
    tmp: Path
    llm: FakeLLMServer

    def log(self) -> str:
        return (self.tmp / "serve.log").read_text(errors="replace")

    def push(self, message: str, edits: dict[str, str]) -> int:
        """Commit `edits` (path -> new text) on main, deliver the push; the job it queued."""
        before = gitrepo.branch_sha(self.repo.git_dir, "main") or ""
        work = self.tmp / f"edit-{before[:8]}"
        gitrepo.git("clone", "-q", str(self.repo.git_dir), str(work), cwd=self.tmp)
        for path, text in edits.items():
            (work / path).write_text(text)
        gitrepo.git("commit", "-qam", message, cwd=work, env=IDENTITY)
        gitrepo.git("push", "-q", "origin", "HEAD:main", cwd=work)
        after = gitrepo.branch_sha(self.repo.git_dir, "main") or ""
        body = payloads.push(
            self.repo.full_name, self.world.installation.id, before, after, [KERNEL]
        )
        raw, headers = payloads.signed(WEBHOOK_SECRET, body, "push")
        answer = httpx.post(f"{self.url}/webhook", content=raw, headers=headers, timeout=30)
        assert answer.status_code == 202, answer.text
        assert eventually(lambda: self._job_at(after) is not None, 60), self.log()
        job = self._job_at(after)
        assert job is not None
        return job

    def ended(self, job_id: int) -> str:
        """The job's status once it ended (fails the test when it does not)."""
        done = ("done", "failed", "cancelled")
        assert eventually(lambda: self._status(job_id) in done, 600), self.log()
        return self._status(job_id)

    def _job_at(self, sha: str) -> int | None:
        return next((j.id for j in self.storage.jobs(self.repo.full_name) if j.sha == sha), None)

    def _status(self, job_id: int) -> str:
        job = self.storage.job(job_id)
        return job.status if job else "missing"


def _private(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)  # the bot refuses secret files others may read
    return path


def _scheduled_repo(world: World, tmp: Path) -> Repo:
    """acme/nightly: the demo's ops, a weekly schedule, and the LLM making every proposal."""
    source = tmp / "source"
    shutil.copytree(DEMO, source, ignore=shutil.ignore_patterns("__pycache__"))
    config = source / "pyproject.toml"
    extra = f'\n[tool.kevolve]\nschedule = "{CRON}"\n\n[tool.kevolve.llm]\nshare = 1.0\n'
    config.write_text(config.read_text() + extra)
    return create_repo(world.standin, world.installation, "nightly", source)


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    """The stand-in with acme/nightly, a scripted LLM, and `kevolve serve` with its worker and a
    fleet poller looking every 2 s; the dashboard answers this host (no sign-in)."""
    tmp = tmp_path_factory.mktemp("history")
    world = build_world(tmp / "github")
    try:
        repo = _scheduled_repo(world, tmp)
        with FakeLLMServer(REPLIES) as llm:
            env = _bot_env(tmp, world, llm)
            port = free_port()
            argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "serve", "--port", str(port)]
            out = (tmp / "serve.log").open("wb")
            proc = subprocess.Popen(argv, cwd=tmp, env=env, stdout=out, stderr=out)
            url = f"http://127.0.0.1:{port}"
            try:
                assert eventually(lambda: proc.poll() is not None or _healthy(url), 60)
                assert proc.poll() is None, (tmp / "serve.log").read_text()
                storage = Storage(env["KEVOLVE_DATABASE_URL"])
                yield Bot(url, world, repo, storage, tmp, llm)
                storage.close()
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        world.standin.assert_clean()
    finally:
        world.standin.stop()


def _bot_env(tmp: Path, world: World, llm: FakeLLMServer) -> dict[str, str]:
    """The environment of `kevolve serve`: the stand-in's App, the scripted LLM, CPU jobs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEVOLVE_")}
    return {
        **env,
        "PYTHONPATH": str(ROOT),
        "KEVOLVE_WEBHOOK_SECRET_FILE": str(_private(tmp / "webhook.secret", WEBHOOK_SECRET)),
        "KEVOLVE_LLM_API_KEY_FILE": str(_private(tmp / "llm.key", LLM_KEY)),
        "KEVOLVE_LLM_BASE_URL": llm.base_url,
        "KEVOLVE_LLM_MODEL": "fake-model",
        "KEVOLVE_DATABASE_URL": f"sqlite:///{tmp / 'bot.db'}",
        "KEVOLVE_GITHUB_APP_ID": str(world.app.app_id),
        "KEVOLVE_GITHUB_PRIVATE_KEY_PATH": str(_private(tmp / "app.pem", world.app.private_key)),
        "KEVOLVE_GITHUB_API_URL": world.standin.urls.api,
        "KEVOLVE_GITHUB_URL": world.standin.urls.web,
        "KEVOLVE_HARDWARE": "cpu",
        "KEVOLVE_BUDGET": str(BUDGET),
        "KEVOLVE_DEVICE": "cpu",
        "KEVOLVE_WORKDIR": str(tmp / "work"),
        "KEVOLVE_CACHE_DIR": str(tmp / "cache"),
        "KEVOLVE_PUBLISH_UNTIMED": "1",
        "KEVOLVE_FLEET_POLL_S": "2",
        "KEVOLVE_JOB_USER": pwd.getpwuid(os.geteuid()).pw_name,
        "KEVOLVE_JOB_AS_BOT_USER": "1",
    }


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_finished_jobs_page_keeps_its_lineage_and_opens_a_node_with_its_prompt(
    bot: Bot, tmp_path: Path
) -> None:
    job = bot.push("Tidy the softmax kernel", {KERNEL: SEED + "# tidied\n"})
    assert bot.ended(job) == "done", bot.log()
    checkout = bot.tmp / "work" / "jobs" / f"job-{job}"
    assert eventually(lambda: not checkout.exists(), 60)  # removed right after the job ended
    kept = StateArchive(bot.tmp / "work" / "jobs").state(job, "softmax")
    assert kept is not None, "the job's state file was not kept"
    found = records(kept)
    asked = next(e for e in found.exchanges if e.candidate_id in found.candidates)
    assert asked.candidate_id is not None
    with chromium(tmp_path / "profile") as browser:
        browser.get(f"{bot.url}/dashboard/search/{job}.softmax")
        shown(browser, "#tree svg")
        assert not browser.find_elements(By.ID, "summary-only")  # the whole search, not a summary
        tree = browser.find_element(By.CSS_SELECTOR, "#tree svg")
        assert tree.get_attribute("data-nodes") == str(len(found.candidates))
        assert "fake-model" in browser.find_element(By.ID, "models").text
        node = f'svg.tree a[data-node="{asked.candidate_id}"]'
        browser.find_element(By.CSS_SELECTOR, node).click()
        shown(browser, f'#node[data-node="{asked.candidate_id}"]')
        prompt = browser.find_element(By.CSS_SELECTOR, ".prompt").get_attribute("textContent")
        assert asked.exchange.messages[-1]["content"][:200] in (prompt or "")
        reply = browser.find_element(By.ID, "node-reply").get_attribute("textContent")
        assert reply == asked.exchange.reply
        screenshot(browser, tmp_path / "screenshots", "history-finished-node")


def test_a_failed_jobs_reason_shows_on_the_fleet_page(bot: Bot, tmp_path: Path) -> None:
    reference = (DEMO / REFERENCE).read_text()
    broken = reference.replace(
        "import torch\n", f"import torch\n\nraise RuntimeError({BROKEN!r})\n", 1
    )
    job = bot.push("Break the reference", {KERNEL: SEED + "# again\n", REFERENCE: broken})
    assert bot.ended(job) == "failed", bot.log()
    stored = bot.storage.job(job)
    assert stored is not None and stored.reason is not None and BROKEN in stored.reason
    with chromium(tmp_path / "profile") as browser:
        browser.get(f"{bot.url}/dashboard/fleet")
        row = f'#failed-jobs tr[data-job="{job}"] td.reason'
        shown(browser, row)
        assert BROKEN in browser.find_element(By.CSS_SELECTOR, row).text
        screenshot(browser, tmp_path / "screenshots", "history-fleet-failure")


def test_the_repos_pages_show_the_next_scheduled_run(bot: Bot, tmp_path: Path) -> None:
    if not bot.storage.jobs(bot.repo.full_name):
        bot.push("A change the fleet poller notices", {KERNEL: SEED + "# noticed\n"})
    store = FleetStore(bot.storage.engine, bot.storage.now)

    def noted() -> bool:
        mark = store.schedule_mark(bot.repo.full_name)
        return mark.checked is not None and mark.cron == CRON

    assert eventually(noted, 120), bot.log()
    checked = store.schedule_mark(bot.repo.full_name).checked
    assert checked is not None
    expected = parse_cron(CRON).next_after(checked)
    assert expected is not None and expected > checked
    with chromium(tmp_path / "profile") as browser:
        browser.get(f"{bot.url}/dashboard/")
        where = f'span.schedule[data-repo="{bot.repo.full_name}"]'
        shown(browser, f"{where} time.next-run")
        shown_at = browser.find_element(By.CSS_SELECTOR, f"{where} time.next-run")
        assert shown_at.get_attribute("datetime") == expected.isoformat()
        assert shown_at.text == expected.strftime("%Y-%m-%d %H:%M UTC")
        assert CRON in browser.find_element(By.CSS_SELECTOR, where).text
        screenshot(browser, tmp_path / "screenshots", "history-repos-schedule")
        browser.get(f"{bot.url}/dashboard/repos/{bot.repo.full_name}")
        shown(browser, "#repo-schedule time.next-run")
        on_repo = browser.find_element(By.CSS_SELECTOR, "#repo-schedule time.next-run")
        assert on_repo.get_attribute("datetime") == expected.isoformat()


EARLIER = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


PROPOSED = {
    "results": {"softmax": {}},
    "proposals": [
        {"op": "softmax", "status": "opened", "pr": 4, "candidate": "c" * 16,
         "url": "https://github.com/acme/old/pull/4", "reason": "pushed"},
    ],
}  # fmt: skip


def _old_database(url: str) -> int:
    """The tables as the previous version created them, with a job that proposed pull request 4,
    the pseudo-job that version stored when 4 was closed unmerged, a failed job and a repo's
    schedule mark in them; the failed job's id."""
    engine = sa.create_engine(url)
    old_job = {"repo": "acme/old", "op": "softmax", "hardware": "cpu", "installation_id": 7}
    try:
        OLD.create_all(engine)
        with engine.begin() as conn:
            conn.execute(
                sa.insert(OLD_JOBS).values(
                    **old_job, sha="b" * 40, trigger="comment", budget=5, status="done",
                    created_at=EARLIER, updated_at=EARLIER, result=json.dumps(PROPOSED),
                )
            )  # fmt: skip
            conn.execute(
                sa.insert(OLD_JOBS).values(
                    **old_job, sha="d" * 40, trigger="rejected", budget=0, status="done",
                    created_at=EARLIER, delivery_id="closed-4", pr_number=4, candidate="c" * 16,
                )
            )  # fmt: skip
            job = conn.execute(
                sa.insert(OLD_JOBS).values(
                    **old_job,
                    sha="a" * 40,
                    trigger="push",
                    budget=5,
                    status="failed",
                    created_at=EARLIER,
                    updated_at=EARLIER,
                )
            ).inserted_primary_key
            conn.execute(sa.insert(OLD_FLEET_REPOS).values(repo="acme/old", scheduled_at=EARLIER))
    finally:
        engine.dispose()
    assert job is not None
    return int(job[0])


def test_a_database_the_previous_version_made_is_migrated_when_the_bot_starts(
    database_url: str, tmp_path: Path
) -> None:
    job = _old_database(database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEVOLVE_")}
    env.update(
        PYTHONPATH=str(ROOT),
        KEVOLVE_WEBHOOK_SECRET_FILE=str(_private(tmp_path / "webhook.secret", WEBHOOK_SECRET)),
        KEVOLVE_DATABASE_URL=database_url,
        KEVOLVE_WORKDIR=str(tmp_path / "work"),
    )
    port = free_port()
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "serve"]
    argv += ["--no-worker", "--port", str(port)]
    out = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    storage = Storage(database_url)
    try:
        assert eventually(lambda: proc.poll() is not None or _healthy(url), 60)
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        columns = sa.inspect(storage.engine)
        assert "reason" in {c["name"] for c in columns.get_columns("jobs")}
        assert "schedule" in {c["name"] for c in columns.get_columns("fleet_repos")}
        old = storage.job(job)
        assert old is not None and (old.repo, old.status, old.reason) == (
            "acme/old",
            "failed",
            None,
        )
        # The pseudo-job of the closed pull request is now a row of its own table.
        assert [(j.trigger, j.status) for j in storage.jobs()] == [
            (Trigger.COMMENT, JobStatus.DONE),
            (Trigger.PUSH, JobStatus.FAILED),
        ]
        closed = ("acme/old", 4, "softmax", "cpu", "d" * 40, "c" * 16)
        assert PullStore(storage.engine).closed() == [
            ClosedPull(*closed, PullOutcome.REJECTED, EARLIER, "closed-4")
        ]
        cell = '<a href="https://github.com/acme/old/pull/4" rel="noreferrer">#4</a>'
        repos = httpx.get(f"{url}/dashboard/", timeout=30).text
        assert f'{cell} <span class="muted">rejected</span>' in repos, repos
        before = httpx.get(f"{url}/dashboard/fleet", timeout=30)
        assert before.status_code == 200 and "the reason is on the job's check run" in before.text

        reason = "The job failed: the judge ran out of memory"
        storage.set_job_status(job, JobStatus.FAILED, reason=reason)
        FleetStore(storage.engine, storage.now).note_schedule("acme/old", CRON)
        fleet = httpx.get(f"{url}/dashboard/fleet", timeout=30).text
        assert "The job failed: the judge ran out of memory" in fleet
        repos = httpx.get(f"{url}/dashboard/", timeout=30).text
        expected = parse_cron(CRON).next_after(EARLIER)
        assert expected is not None and f'datetime="{expected.isoformat()}"' in repos
        storage.create_all()  # a second start finds nothing left to add or move
        assert len(storage.jobs()) == 2 and len(PullStore(storage.engine).closed()) == 1
        assert storage.job(job).reason == "The job failed: the judge ran out of memory"  # type: ignore[union-attr]
    finally:
        proc.terminate()
        proc.wait(60)
        storage.close()


def test_finished_jobs_beyond_the_bound_or_past_their_days_are_pruned(tmp_path: Path) -> None:
    now = [1_000_000.0]
    archive = StateArchive(tmp_path, Keeping(jobs=2, days=1.0), clock=lambda: now[0])
    for job in (1, 2, 3):
        state = tmp_path / f"job-{job}" / "state"
        state.mkdir(parents=True)
        (state / "softmax.sqlite").write_text(f"job {job}")
        (state / "notes.txt").write_text("not a state file")
        (state / "other.sqlite").symlink_to(tmp_path / "elsewhere.sqlite")
        assert archive.keep(job, state) == ["softmax"]
        os.utime(archive.folder(job), (now[0], now[0]))
        now[0] += 3600.0
        assert (state / "notes.txt").exists() and not (state / "softmax.sqlite").exists()
    assert archive.jobs() == [2, 3]  # the oldest beyond two went
    assert archive.ops(3) == ["softmax"]  # the link was left behind
    assert (archive.root.stat().st_mode & 0o777) == 0o700
    now[0] += 86400.0 - 3600.0 * 1.5  # job 2 ended more than a day ago, job 3 less
    assert archive.prune() == [2]
    assert archive.jobs() == [3] and archive.state(3, "softmax") is not None
