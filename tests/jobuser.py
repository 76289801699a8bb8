"""The OS user local jobs run as, for tests: made here when missing and we are root."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

JOB_USER = "kevolve-job"


def ensure_job_user() -> str:
    """The job user's name, created (as root) if this machine lacks it; a clear error if not."""
    try:
        pwd.getpwnam(JOB_USER)
    except KeyError:
        if os.geteuid() != 0:
            raise RuntimeError(
                f"these tests need the OS user {JOB_USER!r}: run them as root (they create it) "
                f"or create it: sudo useradd --system --no-create-home "
                f"--shell /usr/sbin/nologin {JOB_USER}"
            ) from None
        made = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", JOB_USER],
            capture_output=True,
            text=True,
        )
        if made.returncode not in (0, 9):  # 9: another test process made it meanwhile
            raise RuntimeError(f"cannot create the user {JOB_USER!r}: {made.stderr}") from None
    return JOB_USER


@contextmanager
def reachable_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory the job user can reach (pytest's own are 0700), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
