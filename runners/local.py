"""The local runner: a job in a child process on this host (its GPU when it has one).

On the bot's host a job runs as a separate OS user (`KEVOLVE_JOB_USER`, default `kevolve-job`),
never as the bot's: repo code then meets the file-permission wall on top of bubblewrap. Create it
with `useradd --system --no-create-home --shell /usr/sbin/nologin kevolve-job`. A bot running as
root switches to it directly; a bot running as its own user goes through sudo, which needs one
sudoers line (visudo -f /etc/sudoers.d/kevolve), for a bot user `kevolve`:

    kevolve ALL=(kevolve-job) NOPASSWD:SETENV: /path/to/venv/bin/python -m runners.job *

The job user must be able to run that Python and reach the bot's workdir (every directory above
it searchable), and nothing more: the runner keeps the workdir 0711 (reachable, not listable) and
hands the job its own writable directories (chown as root; open to all under sudo, a weaker
arrangement).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from kevolve.harness.sandbox.spawn import clean_env
from kevolve.runners.intake import CheckedResult
from kevolve.runners.job import JobSpec
from kevolve.runners.runner import Cancelled, RunnerError, checked_result

log = logging.getLogger(__name__)

_TAIL = 2000  # characters of the child's stderr kept for an error
_CHECK_S = 60.0  # seconds for the job user's trial run of Python
_WARNING = """
**********************************************************************************************
WARNING: jobs run as the bot's own user ({me}) because KEVOLVE_JOB_AS_BOT_USER=1.
Repo code of every installed repository can then read the bot's files: the App's private key,
the webhook secret, the database. Create the job user instead (see `kevolve serve --help`).
**********************************************************************************************
"""


class JobUserError(ValueError):
    """Jobs cannot run as the configured user: what is wrong and how to fix it."""


@dataclass(frozen=True)
class JobAccount:
    """The OS user jobs run as."""

    name: str
    uid: int
    gid: int


def local_runner(user: str, as_bot_user: bool, workdir: Path, llm_key: str = "") -> LocalRunner:
    """The bot's local runner: jobs as `user`, bubblewrap for their judges where installed."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        log.warning(
            "bubblewrap (bwrap) is not installed: judges run in the fallback jail (limits and a "
            "network namespace) as the job user. Install it: apt-get install bubblewrap"
        )
    account = job_account(user, as_bot_user)
    return LocalRunner(account, workdir=workdir, bwrap=bwrap, llm_key=llm_key)


def job_account(user: str, as_bot_user: bool, python: str = sys.executable) -> JobAccount | None:
    """The account jobs run as, checked to exist, differ from ours and run Python; None (with a
    loud warning) only when the operator opted in to the bot's own user."""
    me = pwd.getpwuid(os.geteuid()).pw_name
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        entry = None
    if entry is not None and entry.pw_uid != os.geteuid():
        account = JobAccount(user, entry.pw_uid, entry.pw_gid)
        _check_python(account, python)
        return account
    if as_bot_user:
        log.warning("jobs run as the bot's own user %s (KEVOLVE_JOB_AS_BOT_USER=1)", me)
        print(_WARNING.format(me=me), file=sys.stderr)
        return None
    if entry is None:
        raise JobUserError(
            f"the job user {user!r} (KEVOLVE_JOB_USER) does not exist. Fix: create it with "
            f"`useradd --system --no-create-home --shell /usr/sbin/nologin {user}`, or name "
            f"another; KEVOLVE_JOB_AS_BOT_USER=1 runs jobs as the bot's own user (unsafe)"
        )
    raise JobUserError(
        f"the job user {user!r} (KEVOLVE_JOB_USER) is the bot's own user: repo code would read "
        f"the bot's secrets. Fix: run the bot as another user than {user!r}, or name a separate "
        f"job user; KEVOLVE_JOB_AS_BOT_USER=1 runs jobs as the bot's own user (unsafe)"
    )


def _check_python(account: JobAccount, python: str) -> None:
    """Refuse a job user that cannot start this Python with kevolve (sudo rule, permissions)."""
    argv = [python, "-c", "import kevolve.runners.job"]
    env = clean_env({"HOME": "/"}, os.environ)
    try:
        done = subprocess.run(
            _as(account, argv, env),
            cwd="/",
            env=env,
            capture_output=True,
            text=True,
            timeout=_CHECK_S,
            **_identity(account),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        why = str(exc)
    else:
        if done.returncode == 0:
            return
        why = (done.stderr.strip() or f"exit status {done.returncode}")[-500:]
    fix = (
        "install kevolve where that user can read it (every directory above the interpreter "
        "searchable, e.g. chmod o+x)"
        if os.geteuid() == 0
        else "add the sudoers line of runners/local.py for the bot's user"
    )
    raise JobUserError(
        f"the job user {account.name!r} cannot start {python} with kevolve: {why}. Fix: {fix}"
    )


class LocalRunner:
    """Runs `python -m runners.job` as the job user in its own session, with an environment
    built from an allow-list; kills it on cancel, and it dies with us."""

    def __init__(
        self,
        account: JobAccount | None = None,
        workdir: Path | None = None,
        bwrap: str | None = "auto",  # bubblewrap for the judges; "auto": found on PATH
        timeout_s: float = 6 * 3600,
        poll_s: float = 0.5,
        python: str = sys.executable,
        llm_key: str = "",  # the jobs' LLM key: sent on the job's stdin, never in its env
    ) -> None:
        self._account, self._workdir, self._llm_key = account, workdir, llm_key
        self._bwrap = shutil.which("bwrap") if bwrap == "auto" else bwrap
        self._timeout, self._poll, self._python = timeout_s, poll_s, python
        if workdir is not None:
            workdir.mkdir(parents=True, exist_ok=True)
            if account is not None:
                workdir.chmod(0o711)  # the job user reaches its own directory, lists nothing

    def run(self, spec: JobSpec, cancelled: Cancelled) -> CheckedResult:
        """The child's result file, read and checked; RunnerError when it failed, was cancelled
        or ran too long, or wrote a result that does not fit."""
        spec = replace(spec, bwrap=self._bwrap)
        scratch = Path(tempfile.mkdtemp(prefix=f"kevolve-job-{spec.job_id}-"))
        try:
            spec_path, out = scratch / "job.json", scratch / "result.json"
            spec_path.write_text(spec.to_json())
            spec_path.chmod(0o644)
            self._prepare(spec, scratch)
            with open(scratch / "stderr", "w+") as err:
                code = self._wait(spec, [str(spec_path), str(out)], scratch, err, cancelled)
                err.seek(0)
                tail = err.read()[-_TAIL:].strip()
            if code != 0 or not out.exists():
                raise RunnerError(f"job {spec.job_id} failed (exit {code}): {tail or 'no output'}")
            return checked_result(_decoded(spec.job_id, out), spec.job_id)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            self._take_back(spec)

    def _prepare(self, spec: JobSpec, scratch: Path) -> None:
        """Make the job's directories usable by the job user, and check it can reach them."""
        state, cache = Path(spec.state).parent, Path(spec.cache_dir)
        lessons = [Path(spec.lessons).parent] if spec.lessons else []
        for path in (state, cache, *lessons):
            path.mkdir(parents=True, exist_ok=True)
        account = self._account
        if account is None:
            return
        self._close_parents([state, Path(spec.checkout), *lessons])
        for path in (scratch, state, cache, *lessons):
            _hand_over(path, account)
        job_dir = self._job_dir(spec)
        if job_dir is not None and os.geteuid() == 0:  # its alone while it runs
            os.chown(job_dir, account.uid, account.gid)
            job_dir.chmod(0o700)
        for path in (Path(spec.checkout), state, cache, scratch, *lessons):
            _check_reachable(spec.job_id, path, account)

    def _job_dir(self, spec: JobSpec) -> Path | None:
        """The directory holding the job's checkout and state, when it lies inside the workdir."""
        if self._workdir is None:
            return None
        top = self._workdir.resolve()
        both = [Path(spec.checkout).resolve(), Path(spec.state).resolve()]
        common = Path(os.path.commonpath(both))
        return common if top in common.parents else None

    def _take_back(self, spec: JobSpec) -> None:
        """The job's directory is the bot's again once it ends: no later job reaches it."""
        job_dir = self._job_dir(spec)
        if job_dir is not None and job_dir.exists() and self._account and os.geteuid() == 0:
            os.chown(job_dir, 0, 0)
            job_dir.chmod(0o700)

    def _close_parents(self, paths: Iterable[Path]) -> None:
        """Directories of ours between the workdir and the job's: reachable, not listable."""
        if self._workdir is None:
            return
        top = self._workdir.resolve()
        for path in paths:
            for parent in path.resolve().parents:
                if parent == top or top not in parent.parents:
                    break
                if parent.stat().st_uid == os.geteuid():
                    parent.chmod(0o711)

    def _wait(
        self, spec: JobSpec, args: list[str], scratch: Path, err: IO[str], cancelled: Cancelled
    ) -> int:
        """The child's exit status; raises RunnerError when it is cancelled or runs too long."""
        # kevolve comes from this interpreter's installation; the caller's path (e.g. packages
        # installed beside the host's torch) is kept.
        path = {"PYTHONPATH": p} if (p := os.environ.get("PYTHONPATH")) else {}
        env = clean_env({**path, "HOME": str(scratch)}, os.environ)
        # The job binds itself to us: it dies when we do (parent-death signal, or end of its
        # stdin, which we hold open), its judges and workers with it.
        parent = str(os.getpid()) if self._account is None or os.geteuid() == 0 else "-"
        argv = [self._python, "-m", "kevolve.runners.job", *args, "--parent", parent]
        child = subprocess.Popen(
            _as(self._account, argv, env) if self._account else argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            cwd=scratch,
            start_new_session=True,
            **_identity(self._account),
        )
        deadline = time.monotonic() + self._timeout
        try:
            with contextlib.suppress(OSError):  # a child that died at once is reported below
                assert child.stdin is not None
                child.stdin.write(self._llm_key.replace("\n", "").encode() + b"\n")
                child.stdin.flush()
            while (code := child.poll()) is None:
                if cancelled():
                    raise RunnerError(f"job {spec.job_id} was cancelled")
                if time.monotonic() > deadline:
                    raise RunnerError(f"job {spec.job_id} ran past {self._timeout:g} s")
                time.sleep(self._poll)
            return code
        finally:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                assert child.stdin is not None
                child.stdin.close()  # the job's own watch kills what a signal could not reach
            child.wait()


def _decoded(job: int, out: Path) -> object:
    """The child's result file as JSON data; RunnerError when it is not JSON."""
    try:
        return json.loads(out.read_text())
    except (ValueError, RecursionError) as exc:
        raise RunnerError(f"job {job} wrote a result that is not JSON: {exc}") from None


def _as(account: JobAccount | None, argv: list[str], env: dict[str, str]) -> list[str]:
    """`argv` as the job user: unchanged as root (Popen switches), else through sudo."""
    if account is None or os.geteuid() == 0:
        return argv
    return ["sudo", "-n", f"--preserve-env={','.join(env)}", "-u", account.name, "--", *argv]


def _identity(account: JobAccount | None) -> dict[str, Any]:
    """Popen's arguments that switch to the job user with its own group alone (root only)."""
    if account is None or os.geteuid() != 0:
        return {}
    return {"user": account.uid, "group": account.gid, "extra_groups": []}


def _hand_over(path: Path, account: JobAccount) -> None:
    """Give the job user a directory and what is in it (root), or open it to it (sudo)."""
    if os.geteuid() != 0:
        path.chmod(0o777)
        return
    for entry in [path, *path.rglob("*")]:
        info = entry.lstat()
        if (info.st_uid, info.st_gid) != (account.uid, account.gid):
            os.chown(entry, account.uid, account.gid, follow_symlinks=False)


def _check_reachable(job: int, path: Path, account: JobAccount) -> None:
    """RunnerError unless the job user may search every directory down to `path`."""
    for directory in reversed([path, *path.parents]):
        info = directory.stat()
        if info.st_uid == account.uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid == account.gid:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            raise RunnerError(
                f"job {job}: the job user {account.name} cannot reach {path}: {directory} is "
                f"mode {stat.S_IMODE(info.st_mode):04o}, owned by uid {info.st_uid}. Fix: keep "
                f"KEVOLVE_WORKDIR and KEVOLVE_CACHE_DIR where every directory above them is "
                f"searchable by {account.name} (chmod o+x), e.g. under /srv/kevolve"
            )
