"""Tests for `bot.supervisor`: a child process started, restarted when it dies, stopped for good."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from kevolve.bot.supervisor import Supervisor

from tests.bot.processes import alive, eventually

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
STUBBORN = (  # ignores SIGTERM, then says so by creating the file named by its argument
    "import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "pathlib.Path(sys.argv[1]).touch(); time.sleep(600)"
)


def test_the_child_is_started_restarted_when_it_dies_and_stopped_with_the_supervisor() -> None:
    supervisor = Supervisor(SLEEPER, restart_delay_s=0.01)
    supervisor.start()
    try:
        assert eventually(lambda: supervisor.pid is not None)
        first = supervisor.pid
        assert first is not None and alive(first)
        os.kill(first, signal.SIGKILL)
        assert eventually(lambda: supervisor.pid not in (None, first))
        assert supervisor.restarts == 1
        second = supervisor.pid
    finally:
        supervisor.stop()
    assert second is not None and not alive(second)
    assert supervisor.pid is None
    # stop() joined the watcher: nothing is left that could start a child again.
    assert not [t for t in threading.enumerate() if t.name.endswith("-supervisor")]
    assert supervisor.pid is None and supervisor.restarts == 1


def test_a_child_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    ready = tmp_path / "ignoring-sigterm"
    supervisor = Supervisor([sys.executable, "-c", STUBBORN, str(ready)])
    supervisor.start()
    assert eventually(ready.exists)
    pid = supervisor.pid
    assert pid is not None
    supervisor.stop(timeout=0.5)
    assert not alive(pid)


def test_a_command_that_cannot_start_is_retried_and_stop_still_returns(tmp_path: Path) -> None:
    supervisor = Supervisor([str(tmp_path / "no-such-program")], restart_delay_s=0.01)
    supervisor.start()
    assert eventually(lambda: supervisor.restarts >= 2)
    supervisor.stop()
    assert supervisor.pid is None
