"""`InputRotation`: the inputs of a round of timed calls, made on the device ahead of the calls.

Every timed call gets inputs of its own seed, as before: content that no earlier call of the
round saw, so an output cached from an earlier call cannot be returned. What changes is when they
are made: all the round's sets at once, before its first call, where they fit the budget; else as
many as fit, a set dropped once its call is done and the next one made in its place. Making inputs
is then no part of the gaps between timed calls for the sizes that fit, and never holds more
than the budget (or one set) for the sizes that do not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

TIMING_INPUT_BYTES = 2**30  # input sets a round may hold at once


class InputRotation:
    """The inputs of call i of a round: the set made from seed i (mod the round's seeds)."""

    def __init__(
        self,
        make: Callable[[int], list[object]],
        seeds: Sequence[int],
        budget_bytes: int = TIMING_INPUT_BYTES,
    ) -> None:
        if not seeds:
            raise ValueError("a round of timed calls needs at least one seed")
        self.make = make
        self.seeds = list(seeds)
        self.budget_bytes = budget_bytes
        self.held: dict[int, list[object]] = {}  # seed index -> its inputs
        self.keep = 0  # sets held at once; fixed by the first set's size
        self.made = 0  # sets made so far (for tests and reports)

    def inputs(self, call: int) -> list[object]:
        """The inputs of `call`, with the calls after it made ahead as far as the budget allows."""
        first = call % len(self.seeds)
        if not self.keep:
            self._make(first)
            self.keep = max(1, min(len(self.seeds), self.budget_bytes // _bytes(self.held[first])))
        window = [(first + k) % len(self.seeds) for k in range(self.keep)]
        for index in [i for i in self.held if i not in window]:
            del self.held[index]  # before making the next: the budget is never exceeded
        for index in window:
            if index not in self.held:
                self._make(index)
        return self.held[first]

    def seed(self, call: int) -> int:
        """The seed whose inputs `call` gets."""
        return self.seeds[call % len(self.seeds)]

    def _make(self, index: int) -> None:
        self.held[index] = self.make(self.seeds[index])
        self.made += 1


def _bytes(values: Sequence[object]) -> int:
    """Bytes of the tensors among `values` (at least 1)."""
    sizes = [v.numel() * v.element_size() for v in values if isinstance(v, torch.Tensor)]
    return max(1, sum(sizes))
