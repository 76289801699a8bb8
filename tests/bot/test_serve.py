"""`kevolve serve` and `kevolve worker` as real processes: the server stores, its worker process
handles; the worker is restarted when it dies and stopped with the server; they also run apart,
and what a killed server acknowledged is handled afterwards."""

from __future__ import annotations

import json
import os
import pwd
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kevolve.bot.storage import Storage

from tests.bot.conftest import WEBHOOK_SECRET
from tests.bot.processes import alive, eventually
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
Signer = Callable[[bytes, str, str], dict[str, str]]
STARTED = re.compile(r"worker started \(pid (\d+)\)")


@cache
def _app_key() -> str:
    """A throwaway GitHub App private key (PEM), made once per test process."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem.decode()


@dataclass
class Bot:
    """The environment and database of `kevolve` processes started by one test."""

    tmp: Path
    env: dict[str, str]
    storage: Storage
    procs: list[subprocess.Popen[bytes]]
    prefix: list[str] = field(default_factory=list)  # runs each `kevolve` command under this

    def start(self, *args: str, log: str) -> subprocess.Popen[bytes]:
        """`kevolve ARGS` in the background, its output in `tmp/log`."""
        out = (self.tmp / log).open("wb")
        argv = [*self.prefix, sys.executable, "-m", "kevolve.bot.commands.cli", *args]
        proc = subprocess.Popen(argv, cwd=self.tmp, env=self.env, stdout=out, stderr=out)
        self.procs.append(proc)
        return proc

    def serve(self, *args: str) -> str:
        """`kevolve serve ARGS` on a free port, once healthy; its URL."""
        port = free_port()
        proc = self.start("serve", "--port", str(port), *args, log="serve.log")
        url = f"http://127.0.0.1:{port}"
        assert eventually(lambda: proc.poll() is not None or _healthy(url)), self.log("serve.log")
        assert proc.poll() is None, self.log("serve.log")
        return url

    def log(self, name: str) -> str:
        path = self.tmp / name
        return path.read_text(errors="replace") if path.exists() else ""

    def worker_pids(self) -> list[int]:
        """The worker processes the server started, in order (from its log)."""
        return [int(pid) for pid in STARTED.findall(self.log("serve.log"))]

    def status(self, delivery_id: str) -> str | None:
        stored = self.storage.delivery(delivery_id)
        return None if stored is None else stored.status


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[Bot]:
    """App credentials, a secret and a SQLite file; every process started is ended afterwards."""
    (tmp_path / "app.pem").write_text(_app_key())
    (tmp_path / "app.pem").chmod(0o600)  # the bot refuses a key others may read
    (tmp_path / "webhook.secret").write_text("it's a secret to everybody\n")
    (tmp_path / "webhook.secret").chmod(0o600)
    (tmp_path / "llm.key").write_text("sk-kevolve-test-llm-key-0123456789\n")
    (tmp_path / "llm.key").chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEVOLVE_")}
    env.update(
        PYTHONPATH=str(ROOT),
        KEVOLVE_WEBHOOK_SECRET_FILE=str(tmp_path / "webhook.secret"),
        KEVOLVE_LLM_API_KEY_FILE=str(tmp_path / "llm.key"),
        KEVOLVE_DATABASE_URL=f"sqlite:///{tmp_path / 'kevolve.db'}",
        KEVOLVE_GITHUB_APP_ID="1",
        KEVOLVE_GITHUB_PRIVATE_KEY_PATH=str(tmp_path / "app.pem"),
        KEVOLVE_GITHUB_API_URL="http://127.0.0.1:9",  # nothing listens: no call leaves the host
        KEVOLVE_WORKDIR=str(tmp_path / "work"),
        # No job runs here (the jobs' own OS user has its tests with the local runner), and a
        # bot without capabilities could not switch to that user.
        KEVOLVE_JOB_USER=pwd.getpwuid(os.geteuid()).pw_name,
        KEVOLVE_JOB_AS_BOT_USER="1",
    )
    storage = Storage(env["KEVOLVE_DATABASE_URL"])
    storage.create_all()
    state = Bot(tmp_path, env, storage, [], _unprivileged())
    yield state
    for proc in state.procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for pid in state.worker_pids():
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    storage.close()


def deliver(url: str, sign: Signer, payload: dict[str, Any], delivery_id: str) -> int:
    """POST a signed push; the status code."""
    body = json.dumps(payload).encode()
    headers = sign(body, "push", delivery_id)
    return httpx.post(f"{url}/webhook", content=body, headers=headers, timeout=10).status_code


@pytest.fixture
def feature_push(push_payload: dict[str, Any]) -> dict[str, Any]:
    """A push to a feature branch: the push feature ignores it, so handling it needs no GitHub."""
    return {**push_payload, "ref": "refs/heads/feature"}


def test_serve_runs_a_worker_process_restarts_it_when_it_dies_and_stops_it(
    bot: Bot, sign: Signer, feature_push: dict[str, Any]
) -> None:
    url = bot.serve()
    assert eventually(lambda: len(bot.worker_pids()) == 1), bot.log("serve.log")
    [first] = bot.worker_pids()
    assert deliver(url, sign, feature_push, "d-1") == 202
    assert eventually(lambda: bot.status("d-1") == "done"), bot.log("serve.log")

    os.kill(first, signal.SIGKILL)
    assert eventually(lambda: len(bot.worker_pids()) == 2), bot.log("serve.log")
    second = bot.worker_pids()[1]
    assert second != first and alive(second)
    assert deliver(url, sign, feature_push, "d-2") == 202
    assert eventually(lambda: bot.status("d-2") == "done"), bot.log("serve.log")

    [proc] = bot.procs
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) in (0, -signal.SIGTERM), bot.log("serve.log")  # uvicorn re-raises it
    assert "Application shutdown complete" in bot.log("serve.log")
    assert not alive(second)


def test_the_worker_stops_itself_when_its_server_is_killed(bot: Bot) -> None:
    bot.serve()
    assert eventually(lambda: len(bot.worker_pids()) == 1), bot.log("serve.log")
    [worker] = bot.worker_pids()
    [proc] = bot.procs
    proc.kill()
    proc.wait()
    assert eventually(lambda: not alive(worker))


def test_deliveries_acknowledged_by_a_killed_server_are_handled_by_a_worker_run_apart(
    bot: Bot, sign: Signer, feature_push: dict[str, Any]
) -> None:
    url = bot.serve("--no-worker")
    ids = [f"d-{n}" for n in range(20)]
    assert [deliver(url, sign, feature_push, i) for i in ids] == [202] * 20
    [server] = bot.procs
    server.kill()  # SIGKILL right after the last 202: nothing more is flushed
    server.wait()
    assert bot.worker_pids() == []
    assert {bot.status(i) for i in ids} == {"pending"}

    worker = bot.start("worker", log="worker.log")
    assert eventually(lambda: {bot.status(i) for i in ids} == {"done"}), bot.log("worker.log")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0, bot.log("worker.log")


def test_serve_refuses_to_start_a_worker_without_app_credentials(bot: Bot) -> None:
    env = {k: v for k, v in bot.env.items() if k != "KEVOLVE_GITHUB_APP_ID"}
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "serve", "--port", str(free_port())]
    done = subprocess.run(argv, cwd=bot.tmp, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("kevolve: error: no GitHub App credentials")


LLM_KEY = "sk-kevolve-test-llm-key-0123456789"
PROBE = """
import sys
try:
    open(sys.argv[1], "rb").read()
except PermissionError:
    print("denied")
else:
    print("read")
"""
PROBE_USER = "kevolve-probe"  # another OS user, created by the test where it runs as root


def _secrets(bot: Bot) -> list[bytes]:
    """The secret values a `kevolve` process of the `bot` fixture holds."""
    return [WEBHOOK_SECRET.encode(), LLM_KEY.encode(), bot.env["KEVOLVE_DATABASE_URL"].encode()]


def _unprivileged() -> list[str]:
    """The prefix that runs a command as this user without capabilities: where the tests run
    as root, both the bot and the probe of its user run so, as an unprivileged user would."""
    return ["setpriv", "--bounding-set=-all", "--inh-caps=-all"] if os.geteuid() == 0 else []


def _same_user_reads(pid: int) -> str:
    """A process of the bot's user, no more privileged than the bot, opens the process's
    /proc/<pid>/environ; "denied" or "read"."""
    argv = [*_unprivileged(), sys.executable, "-c", PROBE, f"/proc/{pid}/environ"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout.strip()


def _other_user_reads(pid: int) -> str:
    """A process of another OS user opens /proc/<pid>/environ; its stderr (empty: it read)."""
    if subprocess.run(["id", PROBE_USER], capture_output=True).returncode != 0:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PROBE_USER],
            check=True,
        )
    user = ["setpriv", f"--reuid={PROBE_USER}", f"--regid={PROBE_USER}", "--clear-groups"]
    argv = [*user, "--bounding-set=-all", "cat", f"/proc/{pid}/environ"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return done.stderr if done.returncode != 0 else ""


def _bot_pids(bot: Bot) -> list[int]:
    """The server's pid and its worker's, once the worker runs."""
    assert eventually(lambda: len(bot.worker_pids()) == 1), bot.log("serve.log")
    return [bot.procs[0].pid, *bot.worker_pids()]


def test_no_other_process_reads_the_environment_of_serve_or_its_worker(
    bot: Bot, sign: Signer, feature_push: dict[str, Any]
) -> None:
    """Repo code runs as some user on the bot's host: even as the bot's own user it must not
    read the server's or the worker's /proc/<pid>/environ (they are not dumpable)."""
    url = bot.serve()
    assert deliver(url, sign, feature_push, "d-1") == 202
    assert eventually(lambda: bot.status("d-1") == "done"), bot.log("serve.log")  # both run
    for pid in _bot_pids(bot):
        assert _same_user_reads(pid) == "denied", pid
        if os.geteuid() == 0:
            assert "Permission denied" in _other_user_reads(pid), pid
            environ = Path(f"/proc/{pid}/environ").read_bytes()  # root alone may look
            assert not [s for s in _secrets(bot) if s in environ], pid


def test_secrets_given_as_values_are_wiped_from_the_environment_and_reach_the_worker(
    bot: Bot, sign: Signer, feature_push: dict[str, Any]
) -> None:
    """A secret the operator left in the environment is warned of and wiped: from the
    environment children inherit and from the block /proc shows; the worker gets it on a pipe."""
    del bot.env["KEVOLVE_WEBHOOK_SECRET_FILE"], bot.env["KEVOLVE_LLM_API_KEY_FILE"]
    bot.env.update(KEVOLVE_WEBHOOK_SECRET=WEBHOOK_SECRET, KEVOLVE_LLM_API_KEY=LLM_KEY)
    url = bot.serve()
    assert "KEVOLVE_WEBHOOK_SECRET is set in the environment" in bot.log("serve.log")
    assert "KEVOLVE_LLM_API_KEY is set in the environment" in bot.log("serve.log")
    assert deliver(url, sign, feature_push, "d-1") == 202  # the server checks with the secret
    assert eventually(lambda: bot.status("d-1") == "done"), bot.log("serve.log")
    pids = _bot_pids(bot)
    for pid in pids:
        assert _same_user_reads(pid) == "denied", pid
        if os.geteuid() == 0:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            assert b"KEVOLVE_WEBHOOK_SECRET" in environ or pid != pids[0]  # it was given
            assert not [s for s in _secrets(bot)[:2] if s in environ], pid


@pytest.mark.parametrize(
    "variable", ["KEVOLVE_GITHUB_PRIVATE_KEY_PATH", "KEVOLVE_WEBHOOK_SECRET_FILE"]
)
@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_secret_file_others_may_read_is_refused(bot: Bot, variable: str, command: str) -> None:
    path = Path(bot.env[variable])
    path.chmod(0o640)
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", command]
    if command == "serve":
        argv += ["--port", str(free_port())]
    done = subprocess.run(
        argv, cwd=bot.tmp, env=bot.env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert f"kevolve: error: {variable}={path} has mode 640" in done.stderr
    assert f"Fix: chmod 600 {path}" in done.stderr
    assert "Traceback" not in done.stderr
