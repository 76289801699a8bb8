"""Progress of a long search: a live line on a terminal, a log line now and then elsewhere."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from kevolve.harness.search.status import Status

EVERY_S = 30.0  # between log lines when the stream is not a terminal


class ProgressLine:
    """Shows evaluated/budget, verdict counts, the best so far, an ETA and the LLM's tokens and
    cost: redrawn in place on a terminal, else one plain line at most every `every_s`."""

    def __init__(
        self,
        budget: int,
        stream: TextIO = sys.stderr,
        every_s: float = EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = budget
        self.stream = stream
        self.live = stream.isatty()
        self.every_s = every_s
        self._clock = clock
        self._started = clock()
        self._first: int | None = None  # evaluations already done when this run began
        self._last_line = -float("inf")
        self._unshown: str | None = None  # the newest line, when off a terminal it waits

    def __call__(self, status: Status) -> None:
        """Show the search's current status."""
        now = self._clock()
        if self._first is None:
            self._first = status.evaluated
        line = self.line(status, now)
        if self.live:
            self.stream.write("\r\x1b[2K" + line)
        elif now - self._last_line >= self.every_s:
            self._last_line, self._unshown = now, None
            self.stream.write(f"kevolve: {line}\n")
        else:
            self._unshown = line
            return
        self.stream.flush()

    def line(self, status: Status, now: float) -> str:
        """The status in one line."""
        counts = " ".join(f"{k}:{v}" for k, v in sorted(status.counts.items()))
        counts = f" ({counts})" if counts else ""
        best = f"{status.best.score:.3f}" if status.best else "-"
        left = max(self.budget - status.evaluated, 0)
        done_here = status.evaluated - (self._first or 0)
        spent = now - self._started
        eta = f"{_duration(spent / done_here * left)}" if done_here > 0 and left else "-"
        llm = f" | LLM {status.tokens:,} tokens ${status.cost_usd:.2f}" if status.tokens else ""
        return (
            f"gen {status.generation} | evaluated {status.evaluated}/{self.budget}{counts} | "
            f"best {best} | ETA {eta}{llm}"
        )

    def close(self) -> None:
        """End the live line; off a terminal, show the newest status if it was held back."""
        if self.live:
            self.stream.write("\n")
        elif self._unshown is not None:
            self.stream.write(f"kevolve: {self._unshown}\n")
            self._unshown = None
        self.stream.flush()


def _duration(seconds: float) -> str:
    """`1h02m`, `4m05s` or `12s`."""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"
