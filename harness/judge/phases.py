"""`PhaseLog`: seconds per phase of one evaluation, and how long it waited for GPU holds.

Every wait for a hold is a wait caused by others (a hold is free unless someone else has it), so
each is kept apart from the work it precedes: `NAME` sums the waits of one kind (`check_wait`,
`prepare_wait`, `wait` for the timing hold, `recheck_wait`) and `NAME_max` is the longest single
one, which shows whether one holder kept this evaluation waiting long (a hang would) or many kept
it briefly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

_T = TypeVar("_T")


class PhaseLog:
    """Adds seconds to named phases of a phase dict (an `Evaluation`'s `phases`)."""

    def __init__(self, phases: dict[str, float]) -> None:
        self.phases = phases

    def add(self, name: str, seconds: float) -> None:
        """Add `seconds` to phase `name`."""
        self.phases[name] = self.phases.get(name, 0.0) + seconds

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Add the seconds spent in the block to phase `name`, even when it fails."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    @contextmanager
    def waited(self, name: str, hold: AbstractContextManager[_T]) -> Iterator[_T]:
        """Enter `hold` for the block; the seconds it took to get go to `name` and `name_max`."""
        asked = time.perf_counter()
        with hold as held:
            seconds = time.perf_counter() - asked
            self.add(name, seconds)
            longest = f"{name}_max"
            self.phases[longest] = max(self.phases.get(longest, 0.0), seconds)
            yield held
