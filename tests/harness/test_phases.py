"""Tests for `harness.judge.phases`: seconds per phase, and each wait for a hold kept apart."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from kevolve.harness.judge.phases import PhaseLog


@contextmanager
def gate(opened: threading.Event, value: str) -> Iterator[str]:
    """A hold that is got once `opened` is set, and that hands out `value`."""
    assert opened.wait(timeout=20), "the gate never opened"
    yield value


def test_waits_sum_and_the_longest_is_kept() -> None:
    phases: dict[str, float] = {}
    log = PhaseLog(phases)
    opened = threading.Event()
    threading.Timer(0.2, opened.set).start()
    with log.waited("check_wait", gate(opened, "held")) as held:
        assert held == "held"  # the hold's own value comes through
    first = phases["check_wait"]
    with log.waited("check_wait", gate(opened, "again")):
        pass
    assert phases["check_wait_max"] == first > 0.0  # the second wait was shorter
    assert phases["check_wait"] >= first
    assert set(phases) == {"check_wait", "check_wait_max"}


def test_a_phase_counts_even_when_it_fails() -> None:
    phases: dict[str, float] = {"check": 1.0}
    log = PhaseLog(phases)
    with pytest.raises(RuntimeError), log.phase("check"):
        raise RuntimeError("failed")
    log.add("preempted", 2.5)
    assert phases["check"] > 1.0 and phases["preempted"] == 2.5
