"""The Actions runner against the real run board and the fake GitHub: dispatch inputs, runs found
by id or by name, late webhooks, cancel, and a restarted job's dispatch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.actions import RepoWorkflows
from bot.board import RunBoard, run_name
from bot.storage import Storage
from runners.actions import ActionsConfig, ActionsRunner
from runners.job import JobSpec
from runners.runner import RunnerError
from tests.fakes.github import FakeGitHub

REPO = "acme/kernels"


@pytest.fixture
def board(tmp_path: Path) -> Iterator[RunBoard]:
    storage = Storage(f"sqlite:///{tmp_path / 'bot.db'}")
    storage.create_all()
    yield RunBoard(storage.engine, storage.now)
    storage.close()


def _spec(job_id: int = 7) -> JobSpec:
    return JobSpec(job_id, "/tmp/x", "softmax", "h100", 40, "/tmp/s", "/tmp/c", sha="b" * 40)


class Clock:
    """Time that moves only when the runner sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _runner(
    github: FakeGitHub, board: RunBoard, clock: Clock, attempts: int = 3, grace: float = 120.0
) -> ActionsRunner:
    settings = ActionsConfig(
        bot_url="https://bot.example.com", attempts=attempts, result_grace_s=grace, poll_s=1.0
    )
    workflows = RepoWorkflows(github, REPO, "kevolve-search.yml")
    return ActionsRunner(workflows, board, lambda job: f"token-{job}", settings, clock, clock.sleep)


def test_the_dispatch_carries_the_job_and_a_cancel_reaches_github(board: RunBoard) -> None:
    github, clock = FakeGitHub(), Clock()
    runner = _runner(github, board, clock)
    asked = iter([False, False, True])
    with pytest.raises(RunnerError, match="job 7 was cancelled"):
        runner.run(_spec(), lambda: next(asked))
    [(repo, workflow, ref, inputs)] = github.dispatches
    assert (repo, workflow, ref) == (REPO, "kevolve-search.yml", "main")
    assert inputs == {
        "job_id": "7",
        "op": "softmax",
        "hardware": "h100",
        "budget": "40",
        "sha": "b" * 40,
        "bot_url": "https://bot.example.com",
        "token": "token-7",
        "kevolve": "kevolve[runner]",
        "attempt": "1",
    }
    assert github.cancelled_runs == [(REPO, 9000)]


def test_news_finds_its_dispatch_by_run_id_or_name_and_never_goes_backwards(
    board: RunBoard,
) -> None:
    board.open(7, "softmax", 1)
    name = run_name(7, "softmax", 1)
    assert not board.record(555, "someone else's build", {"status": "queued"})
    assert board.record(555, f"caller / {name}", {"status": "in_progress", "runner_name": "gpu-1"})
    done = {"status": "completed", "conclusion": "success"}
    assert board.record(555, "renamed", done)  # known by its run id now
    assert board.record(555, name, {"status": "queued"})  # late: changes nothing
    state = board.state(7, "softmax")
    assert state is not None
    assert (state.run_id, state.status, state.conclusion, state.runner_name) == (
        555,
        "completed",
        "success",
        "gpu-1",
    )


def test_a_restarted_job_dispatches_afresh_but_keeps_a_posted_result(board: RunBoard) -> None:
    board.open(7, "softmax", 1)
    board.record(1, run_name(7, "softmax", 1), {"status": "completed", "conclusion": "failure"})
    board.open(7, "softmax", 1)
    state = board.state(7, "softmax")
    assert state is not None and (state.status, state.run_id) == ("dispatched", None)

    assert board.post(7, "softmax", {"problem": "softmax"}) == "stored"
    board.open(7, "softmax", 1)
    github, clock = FakeGitHub(), Clock()
    result = _runner(github, board, clock).run(_spec(), lambda: False)
    assert result == {"problem": "softmax"}


def test_a_run_that_ends_without_a_result_is_retried_after_the_grace(board: RunBoard) -> None:
    github, clock = FakeGitHub(), Clock()
    runner = _runner(github, board, clock, attempts=2, grace=5.0)

    def cancelled() -> bool:
        state = board.state(7, "softmax")
        assert state is not None
        if state.status == "dispatched":  # GitHub says at once that the run failed
            board.record(9000 + len(github.dispatches) - 1, "", {"status": "completed"})
        return False

    with pytest.raises(RunnerError, match="after 2 attempts") as error:
        runner.run(_spec(), cancelled)
    assert "run 9000 ended (no conclusion) without posting a result" in str(error.value)
    assert [d[3]["attempt"] for d in github.dispatches] == ["1", "2"]
    assert github.cancelled_runs == []  # completed runs are not cancelled
    assert clock.now >= 10.0
