"""How many evaluations a local search keeps in flight when nobody says."""

from __future__ import annotations

import pytest
from kevolve.harness.search.campaign import local_slots


@pytest.mark.parametrize(
    ("device", "cpus", "gpu", "slots"),
    [
        ("cpu", 64, True, 2),  # interpreted checks: two at a time whatever the machine
        ("cuda", 12, False, 12),  # one per core
        ("cuda:1", 64, False, 16),  # at most 16
        ("cuda", 1, False, 2),  # never fewer than 2
        ("auto", 12, True, 12),  # auto on a machine whose driver sees a GPU
        ("auto", 12, False, 2),  # auto without one: the CPU
    ],
)
def test_local_slots_follow_the_device_and_the_cores(
    device: str, cpus: int, gpu: bool, slots: int
) -> None:
    assert local_slots(device, cpus, lambda: gpu) == slots
