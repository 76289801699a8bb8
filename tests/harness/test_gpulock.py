"""The GPU lock across real processes: checks share, a timer is alone and is not starved, and a
check can see a timer waiting for it.

Each holder is a separate Python process that takes the lock, logs "NAME in", waits until the test
releases it, and logs "NAME out". That a holder is waiting for the lock is read from /proc/locks,
so no test sleeps in the hope that another process got somewhere.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kevolve.harness.judge.gpulock import SharedHold, exclusive_gpu, host_gpu, shared_gpu

ROOT = Path(__file__).resolve().parents[2]
PATIENCE = 20.0  # seconds before a wait that should end is declared stuck
HOLDER = """
import sys, time
from pathlib import Path
from kevolve.harness.judge.gpulock import SharedHold, exclusive_gpu, shared_gpu

mode, name, lock_dir, log, release = sys.argv[1:]
if mode == "probe":  # probe until released; log how often a timer seemed to wait
    probe, seen, count = SharedHold(Path(lock_dir), 0), 0, 0
    while not Path(release).exists() or count < 200:
        seen += probe.timer_waiting()
        count += 1
    with open(log, "a") as f:
        f.write(f"{name} saw {seen} of {count}\\n")
    sys.exit(0)
hold = exclusive_gpu if mode == "exclusive" else shared_gpu
with hold(Path(lock_dir), 0):
    with open(log, "a") as f:
        f.write(name + " in\\n")
    while not Path(release).exists():
        time.sleep(0.002)
    with open(log, "a") as f:
        f.write(name + " out\\n")
"""


class Holder:
    """A process that holds GPU 0's lock in `mode` until released."""

    def __init__(self, tmp_path: Path, mode: str, name: str) -> None:
        self.name = name
        self.log = tmp_path / "log"
        self.release_file = tmp_path / f"release-{name}"
        args = [mode, name, str(tmp_path / "locks"), str(self.log), str(self.release_file)]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def entered(self) -> bool:
        return f"{self.name} in" in events(self.log)

    def blocked(self) -> bool:
        """True while the process waits for a file lock (a `->` line of /proc/locks)."""
        lines = Path("/proc/locks").read_text().splitlines()
        return any("-> FLOCK" in line and line.split()[5] == str(self.proc.pid) for line in lines)

    def release(self) -> None:
        self.release_file.touch()

    def finish(self) -> int:
        self.release()
        return self.proc.wait(timeout=PATIENCE)


def events(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (polling) until `condition` holds; fail the test if it does not within PATIENCE."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting until {what}"
        time.sleep(0.002)


@pytest.fixture
def holders(tmp_path: Path) -> Iterator[Callable[[str, str], Holder]]:
    """Starts holders; kills any still running after the test."""
    started: list[Holder] = []

    def start(mode: str, name: str) -> Holder:
        started.append(Holder(tmp_path, mode, name))
        return started[-1]

    yield start
    for holder in started:
        if holder.proc.poll() is None:
            holder.proc.kill()
            holder.proc.wait()


def test_checks_hold_the_gpu_together(holders: Callable[[str, str], Holder]) -> None:
    first, second = holders("shared", "a"), holders("shared", "b")
    until(lambda: first.entered() and second.entered(), "both checks hold the GPU at once")
    assert (first.finish(), second.finish()) == (0, 0)


@pytest.mark.parametrize(
    ("holder_mode", "waiter_mode"),
    [("exclusive", "shared"), ("shared", "exclusive"), ("exclusive", "exclusive")],
)
def test_a_timer_and_anyone_else_take_turns(
    holders: Callable[[str, str], Holder], tmp_path: Path, holder_mode: str, waiter_mode: str
) -> None:
    first = holders(holder_mode, "first")
    until(first.entered, "the first holder is in")
    second = holders(waiter_mode, "second")
    until(second.blocked, "the second waits for the lock")
    assert first.finish() == 0
    until(second.entered, "the second holder is in")
    assert second.finish() == 0
    assert events(tmp_path / "log") == ["first in", "first out", "second in", "second out"]


def test_a_waiting_timer_goes_before_later_checks(
    holders: Callable[[str, str], Holder], tmp_path: Path
) -> None:
    check = holders("shared", "check")
    until(check.entered, "the first check is in")
    timer = holders("exclusive", "timer")
    until(timer.blocked, "the timer waits for the check")
    late = holders("shared", "late")
    until(late.blocked, "a later check waits behind the timer")  # without preference it gets in
    assert check.finish() == 0
    until(timer.entered, "the timer is in")
    assert not late.entered()
    assert timer.finish() == 0
    until(late.entered, "the later check is in")
    assert late.finish() == 0
    assert events(tmp_path / "log") == [
        "check in",
        "check out",
        "timer in",
        "timer out",
        "late in",
        "late out",
    ]


@pytest.mark.parametrize("holder_mode", ["shared", "exclusive"])
def test_a_killed_holder_lets_go(
    holders: Callable[[str, str], Holder], tmp_path: Path, holder_mode: str
) -> None:
    doomed = holders(holder_mode, "doomed")
    until(doomed.entered, "the doomed holder is in")
    timer = holders("exclusive", "timer")
    until(timer.blocked, "the timer waits for the doomed holder")
    doomed.proc.send_signal(signal.SIGKILL)
    until(timer.entered, "the timer is in after the holder died")
    assert timer.finish() == 0
    assert events(tmp_path / "log") == ["doomed in", "timer in", "timer out"]


def test_different_gpus_do_not_wait_for_each_other(tmp_path: Path) -> None:
    with exclusive_gpu(tmp_path, 0):
        start = time.monotonic()
        with exclusive_gpu(tmp_path, 1), shared_gpu(tmp_path, 2):
            pass
        assert time.monotonic() - start < 0.2


def test_no_lock_dir_means_no_lock() -> None:
    with exclusive_gpu(None, 0), exclusive_gpu(None, 0), shared_gpu(None, 0):
        pass


@pytest.mark.parametrize(
    "index, visible, host",
    [(0, None, "0"), (1, "", "1"), (0, "3", "3"), (1, "2, 5", "5"), (0, "GPU-8f2c", "GPU-8f2c")],
)
def test_a_lock_names_the_hosts_gpu_not_the_index_a_process_sees(
    index: int, visible: str | None, host: str
) -> None:
    """A Ray task given GPU 3 calls it cuda:0; its lock is still GPU 3's."""
    assert host_gpu(index, visible) == host


def test_one_gpu_seen_under_two_indices_is_one_lock(tmp_path: Path) -> None:
    with exclusive_gpu(tmp_path, host_gpu(0, "1")):
        assert host_gpu(1, "0,1") == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "gpu-1.lock",
        "gpu-1.turnstile",
        "gpu-1.waiting",
    ]


def test_a_check_sees_a_timer_only_while_it_waits(
    holders: Callable[[str, str], Holder], tmp_path: Path
) -> None:
    probe = SharedHold(tmp_path / "locks", 0)
    check = holders("shared", "check")
    until(check.entered, "the check is in")
    assert not probe.timer_waiting()  # checks alone: nobody waits
    timer = holders("exclusive", "timer")
    until(timer.blocked, "the timer waits for the check")
    assert probe.timer_waiting()
    assert check.finish() == 0
    until(timer.entered, "the timer is in")
    assert not probe.timer_waiting()  # it holds the GPU now: it no longer waits
    assert timer.finish() == 0
    assert not probe.timer_waiting()


def test_a_timer_killed_while_waiting_is_no_longer_seen(
    holders: Callable[[str, str], Holder], tmp_path: Path
) -> None:
    probe = SharedHold(tmp_path / "locks", 0)
    check = holders("shared", "check")
    until(check.entered, "the check is in")
    timer = holders("exclusive", "timer")
    until(timer.blocked, "the timer waits")
    assert probe.timer_waiting()
    timer.proc.send_signal(signal.SIGKILL)
    timer.proc.wait(timeout=PATIENCE)
    assert not probe.timer_waiting()
    assert check.finish() == 0


def test_checks_probing_at_once_never_see_each_other_as_a_timer(
    holders: Callable[[str, str], Holder], tmp_path: Path
) -> None:
    probers = [holders("probe", "a"), holders("probe", "b"), holders("probe", "c")]
    for prober in probers:  # each probes at least 200 times, all at once until released
        prober.release()
    assert [p.proc.wait(timeout=PATIENCE) for p in probers] == [0, 0, 0]
    lines = events(tmp_path / "log")
    assert len(lines) == 3 and all(" saw 0 of " in line for line in lines), lines


def test_without_a_lock_dir_no_timer_is_ever_seen() -> None:
    with shared_gpu(None, 0) as hold:
        assert not hold.timer_waiting()
