"""`Direction`: what sets a repeated request of one generation apart from its twins.

A generation may plan more requests than its islands have distinct parent samples, and two
requests showing the same program with the same failures would be the same prompt (the same reply
at temperature 0, and no push toward different ideas either way). Each repeat names one
optimization direction instead, taken in turn from `DIRECTIONS`; past the end of the list a second
round starts, which the prompt says, so no two prompts of a plan are the same text.
"""

from __future__ import annotations

from dataclasses import dataclass

# Op-agnostic: each applies to an elementwise op, a row reduction and a matmul alike.
DIRECTIONS = (
    "memory access and vectorization (coalesced, wide loads and stores; fewer bytes moved)",
    "launch shape and occupancy (block sizes, num_warps, num_stages, the grid)",
    "fewer instructions per element (cheaper math, work hoisted out of loops, nothing recomputed)",
    "work per program and persistence (more rows or tiles per program, persistent programs)",
    "pipelining and latency hiding (loads issued ahead of their use, software pipelining)",
)


@dataclass(frozen=True)
class Direction:
    """One optimization direction for a repeated request, and which round over the list it is."""

    focus: str  # one of `DIRECTIONS`
    round: int = 1  # 1 on the first pass over the list, 2 on the second, ...


def steer(start: int, repeat: int) -> Direction:
    """The direction of a request's `repeat`-th repeat (1 for the first), its program's turn
    through the list beginning at `start` (programs start at different places, so one
    generation's repeats spread over the list)."""
    if repeat < 1:
        raise ValueError(f"repeat {repeat} is not a repeat: the first request has no direction")
    step = start + repeat - 1
    return Direction(DIRECTIONS[step % len(DIRECTIONS)], (repeat - 1) // len(DIRECTIONS) + 1)
