"""What runs beside the web app or inside the worker: started together, stopped together."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Background(Protocol):
    """A thread or a child process with a start and a stop (a dispatcher, a job worker, ...)."""

    def start(self) -> None: ...
    def stop(self, timeout: float = 10.0) -> None: ...


class PollingThread:
    """A daemon thread that calls `work` at once, then on every wake-up or poll interval.

    The dispatcher and the job worker differ only in their `work`; `stopping` tells it when
    to return early. A `work` that raises is logged and retried after a short pause.
    """

    def __init__(
        self, name: str, work: Callable[[], object], poll_seconds: float, retry_seconds: float = 1.0
    ) -> None:
        self.name, self._work = name, work
        self._poll, self._retry = poll_seconds, retry_seconds
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None:
            return
        self.stopping.clear()
        self._wake.set()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask `work` to return and wait for the thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self.stopping.set()
        self._wake.set()
        thread.join(timeout)

    def wake(self) -> None:
        """Run `work` now instead of at the next poll."""
        self._wake.set()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            self._wake.wait(self._poll)
            self._wake.clear()
            try:
                self._work()
            except Exception:
                log.exception("%s failed; retrying", self.name)
                self.stopping.wait(self._retry)
