"""A one-line live progress display for long searches (only on a terminal)."""

from __future__ import annotations

import sys
from typing import TextIO

from kevolve.harness.search.status import Status


class ProgressLine:
    """Redraws one status line: evaluated, verdict counts, best score, budget left."""

    def __init__(self, budget: int, stream: TextIO = sys.stderr) -> None:
        self.budget = budget
        self.stream = stream
        self.live = stream.isatty()

    def __call__(self, status: Status) -> None:
        """Show the search's current status."""
        if not self.live:
            return
        counts = " ".join(f"{k}:{v}" for k, v in sorted(status.counts.items()))
        best = f"{status.best.score:.3f}" if status.best else "-"
        left = max(self.budget - status.evaluated, 0)
        line = (
            f"gen {status.generation} | evaluated {status.evaluated} ({counts}) | "
            f"best {best} | {left} left"
        )
        self.stream.write("\r\x1b[2K" + line)
        self.stream.flush()

    def close(self) -> None:
        """End the live line."""
        if self.live:
            self.stream.write("\n")
            self.stream.flush()
