"""A bot job carries an LLM end to end: a push reaches the bot on loopback, the real local runner
runs the job as the job user, its search asks an OpenAI-compatible server on loopback (keyed by
the first line of the job's stdin, never its environment), and the pull request names the model,
the tokens and the cost."""

from __future__ import annotations

import json
import os
import pwd
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from kevolve.bot.service.assembly import build
from kevolve.bot.settings import bot_settings
from kevolve.bot.storage import Storage

from tests.bot.loopback import client_for, serving
from tests.bot.test_full_path import SECRET, Service
from tests.fakes.llm_server import FakeLLMServer, Response, completion
from tests.jobuser import ensure_job_user, reachable_dir
from tests.standin.fixtures import DEMO, World, create_repo

KEY = "sk-llm-job-k3y-0123456789"
MODEL = "kevolve-test-coder"
PROMPT_TOKENS, COMPLETION_TOKENS = 1234, 56  # per reply
LAUNCH_END = "        BLOCK=triton.next_power_of_2(n_cols),\n    )"  # in demo_kernels/softmax.py
WARPS = (8, 2, 1, 16, 4)  # one distinct, valid edit of the launch per reply
SOFTMAX_CHECKS = (  # the demo's softmax checks, and the fewer this test's jobs judge (faster)
    'dtypes = ["bfloat16", "float16", "float32"]\n'
    "shapes = [[8192, 8192], [4096, 32000]]\n"
    'dims = ["rows", "cols"]\n'
    "check_shapes = [[1, 1], [3, 17], [37, 1000], [64, 257]]\n",
    'dtypes = ["float32"]\nshapes = [[8192, 8192]]\ncheck_shapes = [[3, 17], [64, 257]]\n',
)


def edit(warps: int) -> str:
    """A reply that adds `num_warps` to the softmax launch, as a SEARCH/REPLACE edit."""
    replaced = LAUNCH_END.replace("(n_cols),", f"(n_cols),\n        num_warps={warps},")
    return (
        f"More warps per row (num_warps={warps}) to hide the load latency.\n\n"
        f"<<<<<<< SEARCH\n{LAUNCH_END}\n=======\n{replaced}\n>>>>>>> REPLACE\n"
    )


class KeyWatchingServer(FakeLLMServer):
    """The fake LLM server that also records, as each request arrives (the job is then alive
    and waiting for the answer), its Authorization header, every process whose environment
    holds the key, and the user of each job process whose environment it read."""

    def __init__(self, replies: list[Response]) -> None:
        super().__init__(replies)
        self.authorizations: list[str | None] = []
        self.holders: list[str] = []  # "pid cmdline" of processes with the key in /proc environ
        self.job_uids: list[int] = []  # of job processes (`kevolve.runners.job`) it read
        scripted: type[BaseHTTPRequestHandler] = self._server.RequestHandlerClass  # type: ignore[assignment]
        watcher = self

        class Watching(scripted):  # type: ignore[misc,valid-type]
            """The scripted handler, watching first."""

            def do_POST(self) -> None:
                watcher.authorizations.append(self.headers.get("Authorization"))
                watcher.watch_environs()
                super().do_POST()

        self._server.RequestHandlerClass = Watching

    def watch_environs(self) -> None:
        """Read every process's initial environment (we are root) for the key."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                status = (entry / "status").read_text()
            except OSError:
                continue  # gone meanwhile
            if "kevolve.runners.job" in cmdline and descends_from(entry, os.getpid()):
                [uid] = [line.split()[1] for line in status.splitlines() if line[:4] == "Uid:"]
                self.job_uids.append(int(uid))
            if KEY.encode() in environ:
                self.holders.append(f"{entry.name} {cmdline}")


def descends_from(proc: Path, ancestor: int) -> bool:
    """Whether the process at /proc/<pid> is `ancestor`'s descendant: this test's jobs, not
    those other tests run meanwhile (as root, say) on another worker."""
    pid = int(proc.name)
    while pid > 1:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return False
        pid = int(next(line.split()[1] for line in status.splitlines() if line[:5] == "PPid:"))
        if pid == ancestor:
            return True
    return False


@pytest.fixture
def llm() -> Iterator[KeyWatchingServer]:
    """The model's endpoint: valid edits of the kernel, each with its usage."""
    replies = [
        Response(200, completion(edit(w), MODEL, PROMPT_TOKENS, COMPLETION_TOKENS)) for w in WARPS
    ]
    server = KeyWatchingServer(replies)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def small_demo(world: World, tmp_path: Path, llm_table: str = "") -> World:
    """The world with a repo of the demo whose softmax is checked in one dtype on two shapes
    (and whose config ends with `llm_table`)."""
    source = tmp_path / "small-demo"
    shutil.copytree(DEMO, source)
    config = source / "pyproject.toml"
    demo, small = SOFTMAX_CHECKS
    assert demo in config.read_text()
    config.write_text(config.read_text().replace(demo, small, 1) + llm_table)
    return replace(world, repo=create_repo(world.standin, world.installation, "small", source))


@contextmanager
def bot(
    world: World, tmp_path: Path, budget: int, llm_env: dict[str, str], llm_table: str = ""
) -> Iterator[Service]:
    """`kevolve serve`'s app and worker in this process, the LLM configured as an operator does
    (`llm_env`); jobs run by the local runner as the job user in a directory it can reach."""
    world = small_demo(world, tmp_path, llm_table)
    key = tmp_path / "app.pem"
    key.write_text(world.app.private_key)
    with reachable_dir("kevolve-llm-job-") as work:
        settings = bot_settings(
            {
                "KEVOLVE_WEBHOOK_SECRET": SECRET,
                "KEVOLVE_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
                "KEVOLVE_GITHUB_APP_ID": str(world.app.app_id),
                "KEVOLVE_GITHUB_PRIVATE_KEY_PATH": str(key),
                "KEVOLVE_GITHUB_API_URL": world.standin.urls.api,
                "KEVOLVE_HARDWARE": "cpu",
                "KEVOLVE_BUDGET": str(budget),
                "KEVOLVE_DEVICE": "cpu",
                "KEVOLVE_WORKDIR": str(work / "work"),
                "KEVOLVE_JOB_USER": ensure_job_user(),
                "KEVOLVE_PUBLISH_UNTIMED": "1",
                "KEVOLVE_FLEET_POLL_S": "0",
                **llm_env,
            }
        )
        storage = Storage(settings.database_url)
        app, worker = build(settings, client_for=client_for(world), storage=storage)
        try:
            with serving(app) as url:
                yield Service(url, storage, worker, world, tmp_path)
        finally:
            storage.close()


def test_a_push_job_asks_the_configured_model_with_the_key_and_its_pull_request_shows_the_usage(
    github_standin: World, llm: KeyWatchingServer, tmp_path: Path
) -> None:
    configured = {
        "KEVOLVE_LLM_BASE_URL": llm.base_url,
        "KEVOLVE_LLM_MODEL": MODEL,
        "KEVOLVE_LLM_API_KEY": KEY,
        "KEVOLVE_LLM_PRICES": f"{MODEL}=2000,10000",  # USD per million: big enough to show
    }
    # Budget 5: the first three proposer draws of a bot job's search (seed 0) pick the tuner.
    with bot(github_standin, tmp_path, 5, configured) as service:
        service.push_change("llm change")
        service.wait_jobs_done(1, timeout=110)
        [job] = service.storage.jobs()
        [pull] = service.open_pulls()
    assert job.status == "done" and job.result is not None, job.result

    # The job asked the configured model, keyed, and no process held the key in its environment.
    asked = len(llm.requests)
    assert asked >= 1, "the search never asked the model"
    assert llm.models == [MODEL] * asked
    assert llm.authorizations == [f"Bearer {KEY}"] * asked
    # The job process, as the job user, was alive at every request, and its environment read.
    assert len(llm.job_uids) >= asked
    assert set(llm.job_uids) == {pwd.getpwnam(ensure_job_user()).pw_uid}
    assert llm.holders == []

    # The pull request names the model, the tokens and the cost; it and the job keep no key.
    body = pull.body or ""
    prompt, completed = asked * PROMPT_TOKENS, asked * COMPLETION_TOKENS
    cost = (prompt * 2000 + completed * 10000) / 1e6
    usage = (
        f"- LLM: {MODEL} via http: {prompt + completed:,} tokens ({prompt:,} prompt, "
        f"{completed:,} completion) in {asked} requests, ${cost:.2f}"
    )
    assert usage in body, body
    assert "none configured" not in body
    assert KEY not in body and KEY not in json.dumps(job.result)


def test_a_bot_with_a_model_but_no_endpoint_runs_tuner_jobs_and_says_no_llm_was_configured(
    github_standin: World, tmp_path: Path
) -> None:
    half = {"KEVOLVE_LLM_MODEL": MODEL, "KEVOLVE_LLM_API_KEY": KEY}  # no KEVOLVE_LLM_BASE_URL
    with bot(github_standin, tmp_path, 2, half) as service:
        service.push_change("tuner change")
        service.wait_jobs_done(1, timeout=110)
        [job] = service.storage.jobs()
        [pull] = service.open_pulls()
    assert job.status == "done" and job.result is not None, job.result
    assert job.result["results"]["softmax"]["llm"]["configured"] is False
    body = pull.body or ""
    assert "- LLM: none configured; the tuner alone proposed candidates." in body, body
    assert MODEL not in body


def test_a_repo_picks_the_model_lowers_the_cost_cap_and_pools_its_lessons(
    github_standin: World, llm: KeyWatchingServer, tmp_path: Path
) -> None:
    chosen = "repo-choice"
    table = (
        "\n[tool.kevolve.llm]\n"
        f'models = {{ "{chosen}" = 1.0 }}\nshare = 1.0\nmax_usd = 0.01\nlessons = "installation"\n'
    )
    configured = {
        "KEVOLVE_LLM_BASE_URL": llm.base_url,
        "KEVOLVE_LLM_MODEL": MODEL,
        "KEVOLVE_LLM_API_KEY": KEY,
        "KEVOLVE_LLM_MAX_USD": "50",
        # Priced by the model that replies (the server answers as MODEL): over 3 USD a request.
        "KEVOLVE_LLM_PRICES": f"{MODEL}=2000,10000",
    }
    with bot(github_standin, tmp_path, 8, configured, table) as service:
        service.push_change("repo llm change")
        service.wait_jobs_done(1, timeout=110)
        [job] = service.storage.jobs()
        lessons = Path(service.worker._settings.workdir) / "lessons"
        pooled = lessons / "installations" / str(job.installation_id) / "lessons.sqlite"
        kept = sorted(str(p.relative_to(lessons)) for p in lessons.rglob("*.sqlite"))
    assert job.status == "done" and job.result is not None, job.result
    result = job.result["results"]["softmax"]
    assert llm.models and set(llm.models) == {chosen}  # the repo's model, not the bot's
    assert "cost cap of 0.01 USD" in result["stop_reason"], result["stop_reason"]
    assert len(llm.models) == 1  # the cap is reached by the first reply: nothing more is asked
    assert result["evaluated"] == 2  # the current kernel and that reply's candidate
    assert kept == [str(pooled.relative_to(lessons))]  # the installation's pool, no repo file
