"""Tests for `harness.judge.preemption`: a check yields the GPU to a timer that waited too long.

The end-to-end test judges a candidate whose kernel never ends (Triton's interpreter, CPU), with
a real timer process asking for the GPU lock while the hang holds it, and follows the locks in
/proc/locks: no step sleeps in the hope that another process got somewhere.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from kevolve.harness.evaluate import EvalOptions, evaluate
from kevolve.harness.evaluation import CallBudget, Evaluation, Verdict
from kevolve.harness.judge.gpulock import SharedHold
from kevolve.harness.judge.preemption import Preemption
from kevolve.harness.spec.load import load_problems

ROOT = Path(__file__).resolve().parents[2]
SOFTMAX = ROOT / "examples" / "kernelbench" / "softmax.py"
PATIENCE = 120.0  # seconds before a wait that should end is declared stuck (judges start slowly)
# A kernel that spins forever (the sums are always equal): a hang on the device, not the host.
HANG = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _spin_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n)
    while tl.sum(x, axis=0) == tl.sum(x, axis=0):
        x = x + 0.0
    tl.store(y_ptr + offs, x, mask=offs < n)


class ModelNew(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.empty_like(x)
        n = x.numel()
        _spin_kernel[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        return y
"""
TIMER = """
import sys, time
from pathlib import Path
from kevolve.harness.judge.gpulock import exclusive_gpu

lock_dir, log, release = sys.argv[1:]
asked = time.monotonic()
with exclusive_gpu(Path(lock_dir), "cpu"):
    with open(log, "a") as f:
        f.write(f"timer in after {time.monotonic() - asked:.3f} s\\n")
    while not Path(release).exists():
        time.sleep(0.002)
"""


class FakeHold(SharedHold):
    """A hold whose waiting timer the test switches on and off."""

    def __init__(self) -> None:
        super().__init__(None, 0)
        self.waiting = False

    def timer_waiting(self) -> bool:
        return self.waiting


def test_a_check_yields_once_a_timer_has_waited_the_grace() -> None:
    now = [0.0]
    preemption = Preemption(grace_s=2.0, allowed=3, clock=lambda: now[0])
    hold = FakeHold()
    should_yield = preemption.watch(hold)
    assert should_yield is not None
    assert not should_yield()  # nobody waits
    hold.waiting = True
    now[0] = 10.0
    assert not should_yield()  # a timer is seen now: its grace starts
    now[0] = 11.9
    assert not should_yield()
    now[0] = 12.0
    assert should_yield()


def test_a_timer_that_stops_waiting_starts_its_grace_again() -> None:
    now = [0.0]
    preemption = Preemption(grace_s=2.0, allowed=3, clock=lambda: now[0])
    hold = FakeHold()
    should_yield = preemption.watch(hold)
    assert should_yield is not None
    hold.waiting = True
    assert not should_yield()
    hold.waiting, now[0] = False, 1.5
    assert not should_yield()
    hold.waiting, now[0] = True, 3.0
    assert not should_yield()  # seen again at 3.0: the grace runs to 5.0
    now[0] = 4.9
    assert not should_yield()
    now[0] = 5.0
    assert should_yield()


def test_an_evaluation_yields_at_most_its_allowance_and_says_how_often() -> None:
    preemption = Preemption(grace_s=0.5, allowed=2)
    assert preemption.note() is None
    preemption.yielded(1.25)
    assert preemption.watch(FakeHold()) is not None
    preemption.yielded(0.5)
    assert preemption.watch(FakeHold()) is None  # from now on calls run to their budgets
    assert preemption.note() == (
        "gave the GPU up to a waiting timer 2 time(s): a call still running after a timer had "
        "waited 0.5 s was stopped and run again (1.8 s of work redone)"
    )


def flocks(path: Path) -> list[tuple[int, str, bool]]:
    """(pid, READ or WRITE, blocked) of every flock on `path`, from /proc/locks."""
    if not path.exists():
        return []
    inode = os.stat(path).st_ino
    found = []
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        blocked = fields[1] == "->"
        rest = fields[2:] if blocked else fields[1:]
        if rest[0] == "FLOCK" and int(rest[4].split(":")[-1]) == inode:
            found.append((int(rest[3]), rest[2], blocked))
    return found


def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (polling) until `condition` holds; fail if it does not within PATIENCE."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting until {what}"
        time.sleep(0.005)


def test_a_hang_yields_to_a_timer_and_its_verdict_names_its_budget(tmp_path: Path) -> None:
    """The hang holds the GPU (shared) in its first trial; a timer asks; the hang yields after
    the grace, the timer gets in at once, and the hang retries behind it, then runs out of yields
    and is killed at its budget, which the verdict names."""
    [problem] = load_problems(SOFTMAX)
    cache = tmp_path / "cache"
    budget = CallBudget(cpu_floor_s=3.0, grace_s=0.2, preemptions=1)
    options = EvalOptions(device="cpu", timeout=300, cache_dir=cache, budget=budget)
    result: list[Evaluation] = []
    judging = threading.Thread(target=lambda: result.append(evaluate(problem, HANG, options)))
    judging.start()
    lock, turnstile = cache / "gpu-cpu.lock", cache / "gpu-cpu.turnstile"
    until(lambda: any(mode == "READ" for _, mode, _ in flocks(lock)), "the hang holds the GPU")
    [(judge, _, _)] = flocks(lock)
    log, release = tmp_path / "log", tmp_path / "release"
    timer = subprocess.Popen(
        [sys.executable, "-c", TIMER, str(cache), str(log), str(release)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        until(log.exists, "the timer is in")
        # Yielded, not finished: the hang's judge asks for the GPU again, behind the timer.
        until(lambda: (judge, "WRITE", True) in flocks(turnstile), "the hang asks again")
        assert judging.is_alive()
        release.touch()
        assert timer.wait(timeout=PATIENCE) == 0
        until(lambda: (judge, "READ", False) in flocks(lock), "the hang holds the GPU again")
        judging.join(timeout=PATIENCE)
    finally:
        release.touch()
        timer.wait(timeout=PATIENCE)
    [ev] = result
    assert ev.verdict is Verdict.TIMEOUT
    found = re.match(
        r"the candidate on shape as given float32 did not finish within ([\d.]+) s, its budget "
        r"\(2 calls x \(3 s \+ 20 x [\d.]+ ms, the judge's own time for the same inputs and "
        r"references\)\); the candidate was killed",
        ev.reason,
    )
    assert found, ev.reason
    waited = float(log.read_text().split()[3])
    assert waited < float(found.group(1))  # without the yield, the timer waits out the budget
    assert [n for n in ev.notes if n.startswith("gave the GPU up to a waiting timer 1 time(s)")]
    assert ev.phases["preempted"] > 0.0
    assert ev.phases["check_wait_max"] > 0.0  # its second hold waited for the timer


def test_without_yields_a_hang_keeps_the_timer_waiting_until_its_budget(tmp_path: Path) -> None:
    """The same hang with no yields allowed: the timer gets in only once the hang is killed."""
    [problem] = load_problems(SOFTMAX)
    cache = tmp_path / "cache"
    budget = CallBudget(cpu_floor_s=1.0, grace_s=0.0, preemptions=0)
    options = EvalOptions(device="cpu", timeout=300, cache_dir=cache, budget=budget)
    result: list[Evaluation] = []
    judging = threading.Thread(target=lambda: result.append(evaluate(problem, HANG, options)))
    judging.start()
    lock = cache / "gpu-cpu.lock"
    until(lambda: any(mode == "READ" for _, mode, _ in flocks(lock)), "the hang holds the GPU")
    log, release = tmp_path / "log", tmp_path / "release"
    release.touch()
    timer = subprocess.Popen(
        [sys.executable, "-c", TIMER, str(cache), str(log), str(release)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert timer.wait(timeout=PATIENCE) == 0
    judging.join(timeout=PATIENCE)
    [ev] = result
    assert ev.verdict is Verdict.TIMEOUT and "preempted" not in ev.phases
    assert not [n for n in ev.notes if n.startswith("gave the GPU up")]
