"""The local runner: a job in a child process on this host (its GPU when it has one)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from runners.job import JobSpec
from runners.runner import Cancelled, RunnerError

_TAIL = 2000  # characters of the child's stderr kept for an error


class LocalRunner:
    """Runs `python -m runners.job` in its own process group; kills the group on cancel."""

    def __init__(
        self, timeout_s: float = 6 * 3600, poll_s: float = 0.5, python: str = sys.executable
    ) -> None:
        self._timeout, self._poll, self._python = timeout_s, poll_s, python

    def run(self, spec: JobSpec, cancelled: Cancelled) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix=f"kevolve-job-{spec.job_id}-") as scratch:
            spec_path, out = Path(scratch) / "job.json", Path(scratch) / "result.json"
            spec_path.write_text(spec.to_json())
            with open(Path(scratch) / "stderr", "w+") as err:
                code = self._wait(spec, [str(spec_path), str(out)], err, cancelled)
                err.seek(0)
                tail = err.read()[-_TAIL:].strip()
            if code != 0 or not out.exists():
                raise RunnerError(f"job {spec.job_id} failed (exit {code}): {tail or 'no output'}")
            data: dict[str, Any] = json.loads(out.read_text())
            return data

    def _wait(self, spec: JobSpec, args: list[str], err: Any, cancelled: Cancelled) -> int:
        """The child's exit status; raises RunnerError when it is cancelled or runs too long."""
        root = Path(__file__).resolve().parent.parent
        # Keep the caller's path (e.g. packages installed beside the host's torch) after ours.
        path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "PYTHONPATH": path}
        child = subprocess.Popen(
            [self._python, "-m", "runners.job", *args],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            start_new_session=True,  # its evaluations die with it
        )
        deadline = time.monotonic() + self._timeout
        try:
            while (code := child.poll()) is None:
                if cancelled():
                    raise RunnerError(f"job {spec.job_id} was cancelled")
                if time.monotonic() > deadline:
                    raise RunnerError(f"job {spec.job_id} ran past {self._timeout:g} s")
                time.sleep(self._poll)
            return code
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
