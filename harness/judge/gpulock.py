"""Who may use a GPU when: correctness checks together, or one timer alone.

A reader-writer lock per GPU with writer preference, built from advisory file locks (flock), so
it holds across processes and a holder that dies lets go with its open files. Checks hold
`gpu-N.lock` shared, timers exclusive, so one evaluation's kernels never run while another's are
timed. `gpu-N.turnstile` gives timers preference: a timer holds it while it waits for and holds
the exclusive lock, and a check takes it only for as long as it takes to get its shared hold, so a
waiting timer stops new checks from starting and waits only for the holds already given.

A timer also holds `gpu-N.waiting` (shared) from the moment it asks until it holds the GPU, so a
check can see that a timer waits for it (`SharedHold.timer_waiting`) and yield rather than keep
it waiting: a hung candidate's check must not hold up everyone's timing.
Locks name the host's GPU (see `host_gpu`), not the index a process with a narrowed
CUDA_VISIBLE_DEVICES sees, so processes that see one GPU under different indices still agree.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

CPU = "cpu"  # the lock name for checks run on the CPU (Triton's interpreter): never a GPU's


def host_gpu(index: int, visible: str | None) -> str:
    """The host's name for the GPU a process calls `index`: its CUDA_VISIBLE_DEVICES entry.

    A Ray task given GPU 3 sees it as cuda:0 (CUDA_VISIBLE_DEVICES=3); its lock must be GPU 3's,
    or tasks on different GPUs would wait for each other and those on one GPU would not.
    """
    entries = [e.strip() for e in (visible or "").split(",") if e.strip()]
    return entries[index] if index < len(entries) else str(index)


class SharedHold:
    """A check's shared hold on a GPU, which can tell whether a timer is waiting for it."""

    def __init__(self, lock_dir: Path | None, index: int | str) -> None:
        self.lock_dir = lock_dir
        self.index = index

    def timer_waiting(self) -> bool:
        """True while some timer has asked for this GPU and does not hold it yet."""
        if self.lock_dir is None:
            return False
        # Probers take turns, so that one prober's test never reads as a timer to another.
        waiting = self.lock_dir / f"gpu-{self.index}.waiting"
        with (
            _held(self.lock_dir, self.index, "probe", fcntl.LOCK_EX),
            open(waiting, "a+") as handle,
        ):
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False  # closing the file lets go of the test lock


@contextmanager
def exclusive_gpu(lock_dir: Path | None, index: int | str) -> Iterator[None]:
    """Hold GPU `index` alone, for timing, until the block ends (no lock if `lock_dir` is None)."""
    if lock_dir is None:
        yield
        return
    with ExitStack() as stack:
        with _held(lock_dir, index, "waiting", fcntl.LOCK_SH):  # seen by checks while it waits
            stack.enter_context(_held(lock_dir, index, "turnstile", fcntl.LOCK_EX))
            stack.enter_context(_held(lock_dir, index, "lock", fcntl.LOCK_EX))
        yield


@contextmanager
def shared_gpu(lock_dir: Path | None, index: int | str) -> Iterator[SharedHold]:
    """Share GPU `index` with other checks, never with a timer (no lock when `lock_dir` is None)."""
    hold = SharedHold(lock_dir, index)
    if lock_dir is None:
        yield hold
        return
    with ExitStack() as stack:
        with _held(lock_dir, index, "turnstile", fcntl.LOCK_EX):  # waits while a timer waits
            stack.enter_context(_held(lock_dir, index, "lock", fcntl.LOCK_SH))
        yield hold


@contextmanager
def _held(lock_dir: Path, index: int | str, name: str, mode: int) -> Iterator[None]:
    """An flock on `gpu-INDEX.NAME`, released when the file closes, even on a crash."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"gpu-{index}.{name}", "a+") as handle:
        fcntl.flock(handle, mode)
        yield
