"""`Runner`: where a job's search runs. The bot depends on this interface, not on a place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from kevolve.runners.job import JobSpec

Cancelled = Callable[[], bool]  # asked now and then; True stops the job


class RunnerError(RuntimeError):
    """A job did not produce a result: why, in words a person can act on."""


class Runner(Protocol):
    """Runs one job to its `SearchResult` dict; raises RunnerError when there is none."""

    def run(self, spec: JobSpec, cancelled: Cancelled) -> dict[str, Any]: ...
