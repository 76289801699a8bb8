"""The supervisor: keeps one child process running beside the web app, and stops it with the app.

`kevolve serve` runs the worker (dispatcher and job worker) as a child process, so its database
reads, payload decoding and handlers never compete with the webhook for the server's GIL.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Sequence

log = logging.getLogger(__name__)


class Supervisor:
    """Starts `argv`, starts it again whenever it exits (waiting longer after each quick exit),
    and on `stop` ends it: SIGTERM, then SIGKILL after the timeout. Given `stdin`, each child
    reads those bytes on its stdin (the secrets it needs, never in its environment)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str = "worker",
        restart_delay_s: float = 1.0,
        max_delay_s: float = 30.0,
        stable_after_s: float = 60.0,
        stdin: bytes | None = None,
    ) -> None:
        self._argv = list(argv)
        self._stdin = stdin
        self._name = name
        self._first_delay, self._max_delay = restart_delay_s, max_delay_s
        self._stable_after = stable_after_s
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """The running child's process id, if one runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self) -> None:
        """Start the child and the thread that watches it."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._watch, name=f"kevolve-{self._name}-supervisor", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """End the child (SIGTERM, SIGKILL after `timeout` s) and do not start it again."""
        thread, self._thread = self._thread, None
        with self._lock:
            self._stopping.set()
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %d) ignored SIGTERM; killing it", self._name, proc.pid)
                proc.kill()
                proc.wait()
        if thread is not None:
            thread.join(timeout)

    def _watch(self) -> None:
        """Run the child until stopped; restart it with a growing delay while it keeps dying."""
        delay = self._first_delay
        while True:
            began = time.monotonic()
            outcome = self._run_once()
            if self._stopping.is_set():
                return
            if time.monotonic() - began > self._stable_after:
                delay = self._first_delay
            log.warning("%s %s; starting it again in %g s", self._name, outcome, delay)
            self.restarts += 1
            if self._stopping.wait(delay):
                return
            delay = min(2 * delay, self._max_delay)

    def _run_once(self) -> str:
        """Start the child and wait for it to end; how it ended, in words."""
        with self._lock:
            if self._stopping.is_set():
                return "was not started: stopping"
            try:
                # Its own session: a Ctrl-C at the terminal reaches the server alone, which
                # then stops the child in order instead of both ending at once.
                pipe = None if self._stdin is None else subprocess.PIPE
                proc = subprocess.Popen(self._argv, stdin=pipe, start_new_session=True)
            except OSError as exc:
                return f"cannot start: {exc}"
            self._proc = proc
        if proc.stdin is not None and self._stdin is not None:
            try:  # a few hundred bytes: the pipe's buffer takes them without waiting
                proc.stdin.write(self._stdin)
                proc.stdin.close()
            except OSError:  # the child died first; its exit status says why
                pass
        log.info("%s started (pid %d)", self._name, proc.pid)
        return f"(pid {proc.pid}) exited with {proc.wait()}"
