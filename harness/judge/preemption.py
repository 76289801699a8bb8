"""`Preemption`: a check's call gives the GPU up to a timer that has waited too long for it.

Checks share a GPU; a timer needs it alone and waits for every check already holding it. A check
whose candidate hangs (or just runs long) would keep that timer, and every evaluation queued
behind it, waiting for the call's whole budget. So while a check waits for its candidate's reply
it watches for a waiting timer: once one has waited `grace_s`, the check yields. Its worker is
killed (the call's GPU work ends with the process), its hold released, and the trial run again
from the start with a fresh worker once the timer is through. An evaluation yields at most
`preemptions` times, so a long but honest call still finishes: after that its calls run to their
budgets, which bound what a hang can cost anyone else.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from kevolve.harness.judge.gpulock import SharedHold

Clock = Callable[[], float]


class Preemption:
    """One evaluation's yields to waiting timers."""

    def __init__(self, grace_s: float, allowed: int, clock: Clock = time.monotonic) -> None:
        self.grace_s = grace_s
        self.allowed = allowed
        self.clock = clock
        self.used = 0
        self.lost_s = 0.0  # seconds of calls stopped by a yield, run again after it

    def watch(self, hold: SharedHold) -> Callable[[], bool] | None:
        """A test for a wait under `hold`: True once a timer has waited `grace_s` for it.
        None once the evaluation has used its yields."""
        if self.used >= self.allowed:
            return None
        since: list[float] = []  # when the waiting timer was first seen

        def should_yield() -> bool:
            if not hold.timer_waiting():
                since.clear()
                return False
            if not since:
                since.append(self.clock())
            return self.clock() - since[0] >= self.grace_s

        return should_yield

    def yielded(self, lost_s: float) -> None:
        """Count a yield and the seconds of work it threw away."""
        self.used += 1
        self.lost_s += lost_s

    def note(self) -> str | None:
        """A line for the evaluation's notes, or None if it never yielded."""
        if not self.used:
            return None
        return (
            f"gave the GPU up to a waiting timer {self.used} time(s): a call still running "
            f"after a timer had waited {self.grace_s:g} s was stopped and run again "
            f"({self.lost_s:.1f} s of work redone)"
        )
