"""What runs beside the web app or inside the worker: started together, stopped together."""

from __future__ import annotations

from typing import Protocol


class Background(Protocol):
    """A thread or a child process with a start and a stop (a dispatcher, a job worker, ...)."""

    def start(self) -> None: ...
    def stop(self, timeout: float = 10.0) -> None: ...
