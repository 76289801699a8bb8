"""Repo code cannot steal the App: a probe in an op's `reference.py`, imported by the judge of a
job that a real `kevolve serve` and its worker run, looks for the bot's secrets in every readable
`/proc/*/environ`, tries the App's private key file, and searches the files it can read for an
installation token. It reports through the only channel it has, the job's failure on the check
run, and finds nothing."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import git
import httpx
import pytest

from tests.bot.processes import eventually
from tests.jobuser import ensure_job_user, reachable_dir
from tests.ports import free_port
from tests.standin import auth, gitrepo, payloads
from tests.standin.fixtures import DEMO, World, create_repo, git_env
from tests.standin.state import Repo

ROOT = Path(__file__).resolve().parents[2]
SECRET = "probe-webhook-s3cret"
LLM_KEY = "sk-probe-llm-s3cret"
KERNEL = "demo_kernels/softmax.py"
REPORT = re.compile(r"PROBE (.*?) END")
ME = pwd.getpwuid(os.geteuid()).pw_name  # the bot's own user in these tests
PROBE = """
def _kevolve_probe():
    import os, re
    from pathlib import Path

    names = {{"KEVOLVE_WEBHOOK_SECRET", "KEVOLVE_DATABASE_URL", "KEVOLVE_LLM_API_KEY",
             "OPENAI_API_KEY", "KEVOLVE_GITHUB_PRIVATE_KEY_PATH"}}
    token = re.compile(rb"gh[sopu]_[A-Za-z0-9_-]{{20,}}")
    hits, procs = [], 0
    for entry in Path("/proc").iterdir():
        try:
            data = (entry / "environ").read_bytes() if entry.name.isdigit() else None
        except OSError:
            continue
        if data is None:
            continue
        procs += 1
        for var in data.split(b"\\0"):
            name = var.split(b"=", 1)[0].decode(errors="replace")
            if name in names or token.search(var):
                hits.append(entry.name + ":" + name)
    try:
        Path({key!r}).read_bytes()
        key = "read"
    except OSError as exc:
        key = type(exc).__name__
    checkout = Path(__file__).resolve().parents[1]
    walked = [checkout, checkout.parent, checkout.parent.parent, Path({workdir!r})]
    files, scanned = [], 0
    for top in walked + list(checkout.parents):
        deep = top in walked
        for folder, dirs, names_ in os.walk(top):
            for name in names_:
                path = Path(folder) / name
                try:
                    data = path.read_bytes()[: 2**22]
                except OSError:
                    continue
                scanned += 1
                if token.search(data):
                    files.append(str(path))
            if not deep:
                break
    report = "uid=%d procs=%d environ=%s key=%s scanned=%d token_files=%s" % (
        os.getuid(), procs, ",".join(hits) or "none", key, scanned, ",".join(files) or "none"
    )
    raise RuntimeError("PROBE " + report + " END")


_kevolve_probe()
"""


@dataclass
class Bot:
    """A real `kevolve serve` (and the worker it starts) against the stand-in."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    world: World
    repo: Repo


@pytest.fixture
def bot(github_standin: World, tmp_path: Path) -> Iterator[Bot]:
    """The bot as an operator runs it: secrets in its environment, a 0600 key file, a workdir."""
    ensure_job_user()
    with reachable_dir("kevolve-probe-") as base:
        key = _key_file(github_standin, base)
        workdir = base / "work"
        repo = _probe_repo(github_standin, tmp_path, key, workdir)
        env = _bot_env(github_standin, key, base)
        env.update(
            KEVOLVE_GITHUB_API_URL=github_standin.standin.urls.api,
            KEVOLVE_HARDWARE="cpu",
            KEVOLVE_DEVICE="cpu",
            KEVOLVE_BUDGET="1",
            KEVOLVE_WORKDIR=str(workdir),
            KEVOLVE_LLM_API_KEY=LLM_KEY,
            KEVOLVE_FLEET_POLL_S="0",
        )
        log = tmp_path / "serve.log"
        port = free_port()
        with log.open("wb") as out:
            argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "serve", "--port", str(port)]
            proc = subprocess.Popen(argv, cwd=base, env=env, stdout=out, stderr=out)
        url = f"http://127.0.0.1:{port}"
        try:
            up = eventually(lambda: proc.poll() is not None or _healthy(url), 120)  # a loaded CI
            assert up, log.read_text()
            assert proc.poll() is None, log.read_text()
            yield Bot(url, proc, log, github_standin, repo)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_a_probe_in_repo_code_finds_no_secret_no_key_and_no_token(bot: Bot) -> None:
    sha = _push_kernel_change(bot)
    state = bot.world.standin.state

    def finished() -> bool:
        runs = [c for c in state.check_runs.values() if c.head_sha == sha]
        return bool(runs) and all(c.status == "completed" for c in runs)

    assert eventually(finished, timeout=300), bot.log.read_text()[-3000:]
    [check] = [c for c in state.check_runs.values() if c.head_sha == sha]
    summary = str(check.output.get("summary", ""))
    found = REPORT.search(summary.replace("\\", ""))
    assert found is not None, f"the probe did not report: {summary[-2000:]}"
    report = dict(field.split("=", 1) for field in found.group(1).split())
    assert report["uid"] != str(os.getuid()), "repo code ran as the bot's own user"
    assert report["environ"] == "none", report
    assert report["key"] in ("FileNotFoundError", "PermissionError"), report
    assert report["token_files"] == "none", report
    assert int(report["scanned"]) > 0, report  # it did read files: the checkout's own
    assert SECRET not in summary and LLM_KEY not in summary


@pytest.mark.parametrize(
    ("user", "said"),
    [
        ("kevolve-no-such-user", "the job user 'kevolve-no-such-user' (KEVOLVE_JOB_USER) "),
        (ME, f"the job user '{ME}' (KEVOLVE_JOB_USER) is the bot's own user"),
    ],
    ids=["missing", "the-bots-own"],
)
def test_serve_refuses_a_job_user_it_cannot_use(
    github_standin: World, tmp_path: Path, user: str, said: str
) -> None:
    env = _bot_env(github_standin, _key_file(github_standin, tmp_path), tmp_path)
    env.update(
        KEVOLVE_WORKDIR=str(tmp_path / "work"),
        KEVOLVE_JOB_USER=user,
    )
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "serve", "--port", str(free_port())]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert said in done.stderr and "KEVOLVE_JOB_AS_BOT_USER=1" in done.stderr
    assert "Traceback" not in done.stderr


def _key_file(world: World, where: Path) -> Path:
    """The App's private key as an operator keeps it: a file of mode 0600."""
    key = where / "app.pem"
    key.write_text(world.app.private_key)
    key.chmod(0o600)
    return key


def _bot_env(world: World, key: Path, where: Path) -> dict[str, str]:
    """Our environment without kevolve's settings, plus the bot's secrets and its database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEVOLVE_")}
    env.update(
        PYTHONPATH=str(ROOT),
        KEVOLVE_WEBHOOK_SECRET=SECRET,
        KEVOLVE_DATABASE_URL=f"sqlite:///{where / 'bot.db'}",
        KEVOLVE_GITHUB_APP_ID=str(world.app.app_id),
        KEVOLVE_GITHUB_PRIVATE_KEY_PATH=str(key),
    )
    return env


def _probe_repo(world: World, tmp: Path, key: Path, workdir: Path) -> Repo:
    """A repo of the installation whose reference module carries the probe."""
    source = tmp / "probe-source"
    shutil.copytree(DEMO, source)
    reference = source / "demo_kernels" / "reference.py"
    probe = PROBE.format(key=str(key), workdir=str(workdir))
    reference.write_text(reference.read_text() + probe)
    return create_repo(world.standin, world.installation, "probed", source)


def _push_kernel_change(bot: Bot) -> str:
    """Alice changes the kernel on main and GitHub sends the push; the new sha."""
    world, repo = bot.world, bot.repo
    before = gitrepo.branch_sha(repo.git_dir, "main") or ""
    token = auth.issue_token(world.standin.state, world.installation).value
    into = bot.log.parent / f"push-{time.monotonic_ns()}"
    clone = git.Repo.clone_from(world.standin.clone_url(repo, token), into, env=git_env())
    clone.git.update_environment(**git_env())
    path = into / KERNEL
    path.write_text(path.read_text() + "# tuned\n")
    clone.index.add([KERNEL])
    alice = git.Actor("Alice", "alice@example.com")
    after = clone.index.commit("tune", author=alice, committer=alice).hexsha
    clone.git.push("origin", "HEAD:refs/heads/main")
    body = payloads.push(repo.full_name, world.installation.id, before, after, [KERNEL])
    raw, headers = payloads.signed(SECRET, body, "push")
    assert httpx.post(f"{bot.url}/webhook", content=raw, headers=headers).status_code == 202
    return after


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
