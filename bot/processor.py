"""The worker: the processing half of the bot, run apart from the web app (`kevolve worker`).

The web app only stores deliveries. The worker polls the same database for pending ones, hands
them to the feature handlers through its dispatcher, and runs the jobs they queue. There is no
shared memory between the two, so a short poll interval stands in for the in-process wake-up.
"""

from __future__ import annotations

import logging
import os
import threading

from kevolve.bot.background import Background

log = logging.getLogger(__name__)

POLL_S = 0.25  # how soon a stored delivery is picked up; each poll is one small indexed query
_PARENT_CHECK_S = 0.5


class Processor:
    """Runs its parts (the dispatcher, the job worker) together until told to stop."""

    def __init__(self, parts: list[Background]) -> None:
        self._parts = parts

    def start(self) -> None:
        """Start every part."""
        for part in self._parts:
            part.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every part, the last started first."""
        for part in reversed(self._parts):
            part.stop(timeout)

    def run(self, stop: threading.Event, parent: int | None = None) -> None:
        """Run until `stop` is set or, when `parent` is given, that process is gone.

        A worker started by `kevolve serve` is given the server's pid: if the server is killed
        before it can stop the worker, the worker sees it has a new parent and stops itself.
        """
        self.start()
        try:
            while not stop.wait(_PARENT_CHECK_S):
                if parent is not None and os.getppid() != parent:
                    log.warning("worker: parent process %d is gone; stopping", parent)
                    return
        finally:
            self.stop()
