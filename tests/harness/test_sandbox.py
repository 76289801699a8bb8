"""Tests for `harness.sandbox.spawn`, `harness.sandbox.jail` and `harness.sandbox.tether`: children
get a clean environment, die whole and with their parent, report how they ended, and under
`Limits` run with rlimits and without the network."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from kevolve.harness.sandbox import tether
from kevolve.harness.sandbox.spawn import PASSTHROUGH, Child, Limits, clean_env, spawn

from tests.bot.processes import cmdline, eventually, parent
from tests.jobuser import ensure_job_user, reachable_dir

PROBE = """\
import ctypes, errno, json, os, socket, subprocess, sys, time
from pathlib import Path

action, args = sys.argv[1], sys.argv[2:]
if action == "env":
    print(json.dumps(dict(os.environ)))
elif action == "segv":
    ctypes.string_at(0)
elif action == "abort":
    os.abort()
elif action == "exit":
    print("bye " * 100)
    sys.exit(int(args[0]))
elif action == "grandchild":
    sleeper = subprocess.Popen(["sleep", "1000"])
    Path(args[0] + ".tmp").write_text(str(sleeper.pid))
    os.rename(args[0] + ".tmp", args[0])
    time.sleep(1000)
elif action == "connect":
    try:
        socket.create_connection(("127.0.0.1", int(args[0])), timeout=5).close()
        result = "connected"
    except OSError as exc:
        result = errno.errorcode.get(exc.errno, repr(exc))
    print(json.dumps({"sandbox": os.environ.get("KEVOLVE_SANDBOX", ""), "result": result}))
elif action == "uid":
    print(os.getuid(), os.getgid(), sorted(os.getgroups()))
elif action == "write":
    try:
        Path("big.bin").write_bytes(b"x" * int(args[0]))
        print("written")
    except OSError as exc:
        print(errno.errorcode[exc.errno])
"""
SECRETS = {
    "GITHUB_TOKEN": "ghp_s3cret",
    "OPENAI_API_KEY": "sk-s3cret",
    "AWS_SECRET_ACCESS_KEY": "aws-s3cret",
}


@pytest.fixture(scope="module")
def job_user() -> str:
    return ensure_job_user()


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    """A directory holding the probe module; children started there import it."""
    (tmp_path / "kevolve_probe.py").write_text(PROBE)
    return tmp_path


def start(
    cwd: Path,
    *args: str,
    limits: Limits | None = None,
    source: Mapping[str, str] = os.environ,
    user: str | None = None,
) -> Child:
    """The probe running `args` in `cwd`, with only the variables `clean_env` lets through."""
    env = clean_env({"PYTHONPATH": str(cwd)}, source)
    return spawn("kevolve_probe", args, env=env, cwd=cwd, limits=limits, user=user)


def output(child: Child) -> str:
    """Everything the child printed, once it has exited."""
    child.proc.wait(timeout=30)
    return child.log_tail()


def wait_until_gone(pid: int, seconds: float = 5.0) -> bool:
    """True once `pid` no longer exists or is a zombie no one has reaped yet."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (ProcessLookupError, FileNotFoundError):
            return True
        if state == "Z":
            return True
        time.sleep(0.02)
    return False


def test_clean_env_keeps_only_passthrough_variables_and_extra() -> None:
    source = {"PATH": "/usr/bin", "LANG": "C.UTF-8", "HOME": "/root", **SECRETS}
    env = clean_env({"PYTHONPATH": "/opt/k", "LANG": "en_US.UTF-8"}, source)
    assert env == {"PATH": "/usr/bin", "LANG": "en_US.UTF-8", "PYTHONPATH": "/opt/k"}


def test_secrets_in_the_parent_env_never_reach_a_child(probe: Path) -> None:
    source = {**os.environ, "PATH": "/usr/local/bin:/usr/bin:/bin", **SECRETS}
    log = output(start(probe, "env", limits=Limits(), source=source))
    child_env = json.loads(log)
    assert child_env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert not set(SECRETS) & set(child_env)
    assert not any(value in log for value in SECRETS.values())
    allowed = {*PASSTHROUGH, "PYTHONPATH", "KEVOLVE_SANDBOX", "LC_CTYPE"}
    assert set(child_env) <= allowed, set(child_env) - allowed


def test_jailed_child_is_told_its_network_state(probe: Path) -> None:
    jailed = json.loads(output(start(probe, "env", limits=Limits())))
    assert jailed["KEVOLVE_SANDBOX"].startswith("network:")
    assert "KEVOLVE_SANDBOX" not in json.loads(output(start(probe, "env")))


@pytest.mark.parametrize(
    ("action", "ending"), [("segv", "killed by SIGSEGV"), ("abort", "killed by SIGABRT")]
)
def test_signal_deaths_are_named_through_the_jail(probe: Path, action: str, ending: str) -> None:
    child = start(probe, action, limits=Limits())
    child.proc.wait(timeout=30)
    assert child.exit_description() == ending


def test_exit_status_and_log_tail(probe: Path) -> None:
    child = start(probe, "exit", "3")
    log = output(child)
    assert child.exit_description() == "exit status 3"
    assert log.startswith("bye bye") and len(log) == 401
    assert child.log_tail(limit=5) == "bye \n"


def test_kill_takes_the_whole_process_group(probe: Path) -> None:
    pid_file = probe / "sleeper.pid"
    child = start(probe, "grandchild", str(pid_file))
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        sleeper = int(pid_file.read_text())
        assert child.exit_description() == "still running"
        assert os.getsid(child.proc.pid) == child.proc.pid  # leads its own session
        assert os.getpgid(sleeper) == child.proc.pid
        child.kill()
        assert child.exit_description() == "killed by SIGKILL"
        assert wait_until_gone(sleeper)
    finally:
        child.kill()


@pytest.fixture
def listener() -> Iterator[int]:
    """The port of a loopback TCP listener open for the test."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def test_loopback_is_reachable_without_the_jail(probe: Path, listener: int) -> None:
    report = json.loads(output(start(probe, "connect", str(listener))))
    assert report == {"sandbox": "", "result": "connected"}


def test_jail_cuts_the_network(probe: Path, listener: int) -> None:
    report = json.loads(output(start(probe, "connect", str(listener), limits=Limits())))
    if report["sandbox"].startswith("network:shared"):
        pytest.skip(f"this host forbids network namespaces ({report['sandbox']})")
    assert report["sandbox"].startswith("network:isolated")
    assert report["result"] in {"ENETUNREACH", "ECONNREFUSED"}


@pytest.mark.parametrize(("size", "result"), [(1000, "written"), (8192, "EFBIG")])
def test_file_size_limit_stops_large_writes(probe: Path, size: int, result: str) -> None:
    limits = Limits(file_bytes=4096, isolate_network=False)
    assert output(start(probe, "write", str(size), limits=limits)).strip() == result
    assert (probe / "big.bin").stat().st_size <= 4096


def test_kill_after_exit_is_harmless(probe: Path) -> None:
    child = start(probe, "exit", "0")
    child.proc.wait(timeout=30)
    child.kill()  # the process group is gone: nothing to signal, nothing raised
    assert child.exit_description() == "exit status 0"


def test_a_child_starts_as_the_user_it_is_given(job_user: str) -> None:
    entry = pwd.getpwnam(job_user)
    with reachable_dir("kevolve-sandbox-") as place:
        (place / "kevolve_probe.py").write_text(PROBE)
        (place / "kevolve_probe.py").chmod(0o644)
        place.chmod(0o755)  # the import system lists the directory
        child = start(place, "uid", limits=Limits(), user=job_user)
        said = output(child).strip()
    assert said == f"{entry.pw_uid} {entry.pw_gid} []"  # none of our groups


def test_behind_a_prefix_the_jail_does_not_ask_for_its_parent(probe: Path) -> None:
    """A launcher (bubblewrap, sudo) stands between: the child still runs, jailed."""
    child = spawn(
        "kevolve_probe",
        ["env"],
        env=clean_env({"PYTHONPATH": str(probe)}, os.environ),
        cwd=probe,
        limits=Limits(),
        prefix=["env"],
    )
    assert json.loads(output(child))["KEVOLVE_SANDBOX"].startswith("network:")


PARENT = """
import os, sys, time
from pathlib import Path
from kevolve.harness.sandbox.spawn import Limits, clean_env, spawn
probe, pid_file = Path(sys.argv[1]), Path(sys.argv[2])
env = clean_env({"PYTHONPATH": str(probe)}, os.environ)
launcher = ["sh", "-c", '"$@"; exit $?', "launcher"]  # runs the command as its child
child = spawn("kevolve_probe", ["grandchild", str(pid_file)], env=env, cwd=probe,
              limits=Limits(isolate_network=False), prefix=launcher)
time.sleep(1000)
"""


def test_behind_a_prefix_the_child_dies_with_the_process_that_started_it(probe: Path) -> None:
    """A launcher that binds nothing itself (sh, keeping the jail as its child) is tethered before
    it starts: SIGKILL to the process that spawned it takes the launcher, the jailed child and
    what that started along."""
    sleeper_file = probe / "sleeper.pid"
    spawner = subprocess.Popen([sys.executable, "-c", PARENT, str(probe), str(sleeper_file)])
    try:
        assert eventually(sleeper_file.exists)
        sleeper = int(sleeper_file.read_text())
        child = parent(sleeper)
        launcher = parent(child)
        tethered = parent(launcher)
        assert "kevolve_probe grandchild" in cmdline(child)
        assert cmdline(launcher).startswith("sh -c")
        assert cmdline(tethered).startswith(" ".join(tether.command(spawner.pid)))
    finally:
        spawner.send_signal(signal.SIGKILL)
        spawner.wait()
    try:
        assert all(wait_until_gone(pid) for pid in (tethered, launcher, child, sleeper))
    finally:
        for pid in (tethered, launcher, child, sleeper):  # what a failure would leave
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def tied(to: int, *launcher: str) -> subprocess.CompletedProcess[str]:
    """`launcher` run under a tether to the process `to`, to its end."""
    argv = [*tether.command(to), *launcher]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def test_the_tether_starts_nothing_once_its_parent_is_gone(tmp_path: Path) -> None:
    """A parent that died before the tether asked to be told of it: its orphan exits at once."""
    marker = tmp_path / "ran"
    done = tied(os.getppid(), "touch", str(marker))  # not the tether's parent: as if gone
    assert (done.returncode, marker.exists()) == (1, False)
    done = tied(os.getpid(), "touch", str(marker))
    assert (done.returncode, marker.exists()) == (0, True)


@pytest.mark.parametrize(
    ("script", "code"), [("exit 7", 7), ("kill -SEGV $$", -signal.SIGSEGV), ("exit 0", 0)]
)
def test_the_tether_ends_as_its_launcher_did(script: str, code: int) -> None:
    """The judge's exit is read from the tether: a status or a signal, as the launcher's."""
    assert tied(os.getpid(), "sh", "-c", script).returncode == code


def test_the_tether_keeps_no_end_of_the_launchers_pipes() -> None:
    """The judge's reader waits for the end of its pipe: the tether must not hold it open."""
    read_fd, write_fd = os.pipe()
    said = f"import os, time; os.write({write_fd}, b'done'); os.close({write_fd}); time.sleep(1)"
    launcher = [sys.executable, "-c", said]
    with subprocess.Popen([*tether.command(os.getpid()), *launcher], pass_fds=[write_fd]) as proc:
        os.close(write_fd)
        with os.fdopen(read_fd) as reader:
            assert reader.read() == "done"  # the end, while the tether still waits
        assert proc.poll() is None
    assert proc.returncode == 0


def test_a_launcher_that_cannot_start_is_named(tmp_path: Path) -> None:
    done = tied(os.getpid(), str(tmp_path / "no-bwrap"))
    assert done.returncode == 127
    assert done.stderr.startswith(f"kevolve tether: cannot start {tmp_path / 'no-bwrap'}: ")
    assert "No such file or directory" in done.stderr
