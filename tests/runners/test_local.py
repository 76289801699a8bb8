"""The local runner: a job in a child process, its errors and its cancellation."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from runners.job import JobSpec
from runners.local import LocalRunner
from runners.runner import RunnerError

ROOT = Path(__file__).resolve().parents[2]
JOB = 9137  # unique among the suite's jobs: its processes are found by this number


def spec(tmp_path: Path, op: str = "softmax", budget: int = 2) -> JobSpec:
    return JobSpec(
        job_id=JOB,
        checkout=str(ROOT / "examples" / "demo"),
        op=op,
        hardware="cpu",
        budget=budget,
        state=str(tmp_path / "state.sqlite"),
        cache_dir=str(tmp_path / "cache"),
        device="cpu",
    )


def test_a_bad_job_fails_with_the_spec_error(tmp_path: Path) -> None:
    with pytest.raises(RunnerError) as info:
        LocalRunner(poll_s=0.05).run(spec(tmp_path, op="sofmax"), lambda: False)
    message = str(info.value)
    assert message.startswith(f"job {JOB} failed (exit 2): kevolve job: error: ")
    assert "no op named 'sofmax'" in message and "did you mean 'softmax'?" in message


@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_a_stopped_job_leaves_no_process_behind(tmp_path: Path, how: str) -> None:
    sessions: set[int] = set()
    polls = 0

    def cancelled() -> bool:
        nonlocal polls
        polls += 1
        sessions.update(pid for pid, cmd, _ in _processes() if f"kevolve-job-{JOB}-" in cmd)
        return how == "cancel" and polls > 40  # about two seconds in: evaluating by then

    runner = LocalRunner(timeout_s=2.0 if how == "timeout" else 600, poll_s=0.05)
    expected = "was cancelled" if how == "cancel" else "ran past 2 s"
    with pytest.raises(RunnerError, match=f"job {JOB} {expected}"):
        runner.run(spec(tmp_path, budget=40), cancelled)
    assert sessions, "the job's process was never seen"
    time.sleep(0.2)
    left = [(pid, cmd) for pid, cmd, session in _processes() if session in sessions]
    assert left == []


def _processes() -> list[tuple[int, str, int]]:
    """(pid, command line, session id) of every live process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat[0] != "Z":  # state, then ppid, pgrp, session
            found.append((int(entry.name), cmd, int(stat[3])))
    return found


def test_the_child_keeps_the_callers_python_path_after_kevolves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GPU host's extra packages (e.g. installed with --target) stay importable in the job."""
    seen = tmp_path / "pythonpath"
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\necho "$PYTHONPATH" > {seen}\necho "{{}}" > "$4"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PYTHONPATH", "/opt/site-extra")
    assert LocalRunner(poll_s=0.05, python=str(fake)).run(spec(tmp_path), lambda: False) == {}
    assert seen.read_text().strip() == f"{ROOT}:/opt/site-extra"
