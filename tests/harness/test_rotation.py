"""Tests of harness.judge.rotation: each timed call gets its own seed's inputs, made ahead as far
as the budget allows and never more."""

from __future__ import annotations

import weakref

import pytest
import torch
from kevolve.harness.judge.rotation import InputRotation

SET_BYTES = 4 * 1000  # one float32 tensor of 1000 elements


class Maker:
    """Makes a set from a seed (its content is the seed); records how many earlier sets were
    still alive whenever it made one."""

    def __init__(self) -> None:
        self.seeds: list[int] = []
        self.made: list[weakref.ref[torch.Tensor]] = []
        self.alive_at_make: list[int] = []

    def __call__(self, seed: int) -> list[object]:
        self.alive_at_make.append(sum(ref() is not None for ref in self.made))
        self.seeds.append(seed)
        t = torch.full((1000,), float(seed))
        self.made.append(weakref.ref(t))
        return [t]


def test_a_round_that_fits_the_budget_is_made_once_before_its_first_call() -> None:
    make = Maker()
    rotation = InputRotation(make, [10, 11, 12, 13], budget_bytes=10 * SET_BYTES)
    first = rotation.inputs(0)
    assert make.seeds == [10, 11, 12, 13]  # all ahead of the first call
    for call in range(8):  # warm-up calls, then the timed ones: no set is made again
        inputs = rotation.inputs(call % 4)
        assert inputs[0][0].item() == 10 + call % 4  # type: ignore[index]
    assert rotation.made == 4 and first is rotation.inputs(0)
    assert rotation.seed(5) == 11


@pytest.mark.parametrize("keep", [1, 2])
def test_a_round_too_large_holds_only_what_fits_and_each_call_still_gets_its_own_seed(
    keep: int,
) -> None:
    make = Maker()
    seeds = [20, 21, 22, 23, 24]
    rotation = InputRotation(make, seeds, budget_bytes=keep * SET_BYTES + 1)
    for call in range(len(seeds)):
        inputs = rotation.inputs(call)
        assert inputs[0][0].item() == seeds[call]  # type: ignore[index]
        assert len(rotation.held) == keep
        del inputs
    assert rotation.keep == keep
    # Made in call order, each once (the first `keep` ahead of the first call), and never more
    # than `keep` alive at once.
    assert make.seeds[: len(seeds)] == seeds
    assert max(make.alive_at_make) == keep - 1


def test_a_set_is_dropped_before_the_next_is_made() -> None:
    make = Maker()
    rotation = InputRotation(make, [1, 2, 3], budget_bytes=SET_BYTES)
    for call in range(3):
        rotation.inputs(call)
    assert make.alive_at_make == [0, 0, 0]  # never two sets alive at once


def test_a_round_without_seeds_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one seed"):
        InputRotation(Maker(), [])
