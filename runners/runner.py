"""`Runner`: where a job's search runs. The bot depends on this interface, not on a place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from kevolve.runners.fieldread import IntakeError
from kevolve.runners.intake import CheckedResult, read_result
from kevolve.runners.job import JobSpec

Cancelled = Callable[[], bool]  # asked now and then; True stops the job


class RunnerError(RuntimeError):
    """A job did not produce a result: why, in words a person can act on."""


class Runner(Protocol):
    """Runs one job to its `SearchResult`, read and checked (`runners.intake`); raises
    RunnerError when there is none or it does not fit."""

    def run(self, spec: JobSpec, cancelled: Cancelled) -> CheckedResult: ...


def checked_result(data: object, job_id: int) -> CheckedResult:
    """A job's decoded `SearchResult` as `read_result` takes it in; RunnerError saying which
    field does not fit, or that the result is another job's."""
    try:
        return read_result(data, job_id)
    except IntakeError as exc:
        raise RunnerError(f"job {job_id}'s result was refused: {exc}") from None
