"""The GPU timing lock: a second holder waits until the first lets go."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from harness.gpulock import exclusive_gpu


def test_a_second_timer_waits_for_the_first(tmp_path: Path) -> None:
    events: list[str] = []
    held = threading.Event()

    def first() -> None:
        with exclusive_gpu(tmp_path, 0):
            events.append("first in")
            held.set()
            time.sleep(0.3)
            events.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    held.wait()
    with exclusive_gpu(tmp_path, 0):  # a separate open file: flock excludes it
        events.append("second in")
    thread.join()
    assert events == ["first in", "first out", "second in"]


def test_different_gpus_do_not_wait_for_each_other(tmp_path: Path) -> None:
    with exclusive_gpu(tmp_path, 0):
        start = time.monotonic()
        with exclusive_gpu(tmp_path, 1):
            pass
        assert time.monotonic() - start < 0.2


def test_no_lock_dir_means_no_lock() -> None:
    with exclusive_gpu(None, 0), exclusive_gpu(None, 0):
        pass
