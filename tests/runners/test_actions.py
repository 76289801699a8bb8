"""The Actions runner against the real run board, real tickets and the fake GitHub: dispatch
inputs, a token per dispatch that lives as long as the attempt, runs found by id or by their
workflow file, event and tag, late webhooks, cancel, and a restarted job's dispatch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kevolve.bot.board import RunBoard, RunNews, run_name
from kevolve.bot.jobengine import RepoWorkflows, ticket_office
from kevolve.bot.storage import Storage
from kevolve.bot.tokens import grant, verify
from kevolve.runners.actions import ActionsConfig, ActionsRunner, Ticket
from kevolve.runners.intake import read_result
from kevolve.runners.job import JobSpec
from kevolve.runners.runner import RunnerError

from tests.fakes.github import FakeGitHub

REPO = "acme/kernels"
KEY = b"token key"
WALL = 1_800_000_000.0  # the wall clock tokens are issued by
PATH = ".github/workflows/kevolve-search.yml"
RESULT = {"problem": "softmax", "device": "cuda", "timed": False, "evaluated": 0}  # the least


@pytest.fixture
def board(tmp_path: Path) -> Iterator[RunBoard]:
    storage = Storage(f"sqlite:///{tmp_path / 'bot.db'}")
    storage.create_all()
    yield RunBoard(storage.engine, storage.now)
    storage.close()


def _spec(job_id: int = 7, minutes: float | None = None) -> JobSpec:
    return JobSpec(
        job_id, "/tmp/x", "softmax", "h100", 40, "/tmp/s", "/tmp/c", minutes=minutes, sha="b" * 40
    )


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
    tickets = ticket_office(board, KEY, "kevolve-search.yml", lambda: WALL + clock.now)
    return ActionsRunner(workflows, board, tickets, settings, clock, clock.sleep)


def _ticket(board: RunBoard, attempt: int = 1, job_id: int = 7) -> Ticket:
    return ticket_office(board, KEY, "kevolve-search.yml", lambda: WALL)(
        job_id, "softmax", attempt, 3600.0
    )


def test_the_dispatch_carries_the_job_and_its_own_ticket_and_a_cancel_reaches_github(
    board: RunBoard,
) -> None:
    github, clock = FakeGitHub(), Clock()
    runner = _runner(github, board, clock)
    asked = iter([False, False, True])
    with pytest.raises(RunnerError, match="job 7 was cancelled"):
        runner.run(_spec(), lambda: next(asked))
    [(repo, workflow, ref, inputs)] = github.dispatches
    assert (repo, workflow, ref) == (REPO, "kevolve-search.yml", "main")
    token, tag = inputs.pop("token"), inputs.pop("tag")
    assert inputs == {
        "job_id": "7",
        "op": "softmax",
        "hardware": "h100",
        "budget": "40",
        "minutes": "",
        "sha": "b" * 40,
        "bot_url": "https://bot.example.com",
        "kevolve": "-r .github/kevolve-requirements.txt",
        "attempt": "1",
    }
    given = verify(KEY, token, 7, WALL)
    assert (given.op, given.attempt) == ("softmax", 1)
    assert len(tag) == 20 and tag not in token
    assert github.cancelled_runs == [(REPO, 9000)]


def test_each_dispatch_gets_a_fresh_token_that_lives_as_long_as_the_attempt(
    board: RunBoard,
) -> None:
    """No fixed 8 hours: pickup + the job's minutes (+ setup) + the grace + a margin."""
    github, clock = FakeGitHub(), Clock()
    runner = _runner(github, board, clock, attempts=2, grace=5.0)

    def cancelled() -> bool:  # GitHub says at once that each run failed
        board.record(RunNews(9000 + len(github.dispatches) - 1, "", "completed"))
        return False

    with pytest.raises(RunnerError, match="after 2 attempts"):
        runner.run(_spec(minutes=30), cancelled)
    first, second = (d[3] for d in github.dispatches)
    assert first["minutes"] == "30" and first["token"] != second["token"]
    grants = [verify(KEY, d["token"], 7, WALL) for d in (first, second)]
    assert [g.attempt for g in grants] == [1, 2]
    assert grants[0].expires == int(WALL + 900 + 30 * 60 + 1200 + 5 + 300)
    assert grants[0].expires - WALL < 2 * 3600
    unbounded = _runner(FakeGitHub(), board, clock).token_ttl_s(_spec(job_id=8))
    assert unbounded == 900 + 6 * 3600 + 120 + 300  # the workflow's own 360 minutes


def test_a_run_past_the_jobs_minutes_is_cancelled(board: RunBoard) -> None:
    github, clock = FakeGitHub(), Clock()
    runner = _runner(github, board, clock, attempts=1)

    def cancelled() -> bool:
        board.record(RunNews(9000, "", "in_progress"))
        return False

    with pytest.raises(RunnerError, match="the run took longer than 1260 s"):
        runner.run(_spec(minutes=1), cancelled)
    assert github.cancelled_runs == [(REPO, 9000)]
    assert clock.now >= 900 + 1260


def test_news_finds_its_dispatch_by_run_id_and_never_goes_backwards(board: RunBoard) -> None:
    board.open(7, "softmax", 1)
    board.link(7, "softmax", 1, 555)
    assert not board.record(RunNews(556, "someone else's build", "queued"))
    assert board.record(RunNews(555, "any name", "in_progress", runner_name="gpu-1"))
    assert board.record(RunNews(555, "renamed", "completed", conclusion="success"))
    assert board.record(RunNews(555, "", "queued"))  # late: changes nothing
    state = board.state(7, "softmax")
    assert state is not None
    assert (state.run_id, state.status, state.conclusion, state.runner_name) == (
        555,
        "completed",
        "success",
        "gpu-1",
    )


def test_a_run_without_an_id_yet_is_known_only_by_file_event_and_tag(board: RunBoard) -> None:
    """Before the dispatch's answer links it, only a workflow_run of the dispatched file, started
    by workflow_dispatch, whose title carries the dispatch's tag, is the dispatch's run; after,
    the same title on another run id moves nothing."""
    board.open(7, "softmax", 1)
    tag = _ticket(board).tag
    named = run_name(7, "softmax", 1, tag)
    plain = "kevolve job 7 softmax #1"
    refused = [
        RunNews(600, plain, "completed", "failure", path=PATH, event="workflow_dispatch"),
        RunNews(601, named, "completed", "failure"),  # a workflow_job: no file, no event
        RunNews(602, named, "completed", "failure", path=PATH, event="pull_request"),
        RunNews(603, named, "completed", "failure", path=PATH, event="push"),
        RunNews(
            604, named, "completed", "failure", ".github/workflows/ci.yml", "workflow_dispatch"
        ),
        RunNews(605, f"{plain} {'0' * 20}", "completed", path=PATH, event="workflow_dispatch"),
        RunNews(606, named.upper(), "completed", path=PATH, event="workflow_dispatch"),
    ]
    for news in refused:
        assert not board.record(news), news
    state = board.state(7, "softmax")
    assert state is not None and (state.run_id, state.status) == (None, "dispatched")

    assert board.record(
        RunNews(700, named, "queued", path=f"{PATH}@refs/heads/main", event="workflow_dispatch")
    )
    copy = RunNews(701, named, "completed", "failure", path=PATH, event="workflow_dispatch")
    assert not board.record(copy)  # the dispatch has its run: a copied title takes nothing
    state = board.state(7, "softmax")
    assert state is not None and (state.run_id, state.status) == (700, "queued")


def test_a_restarted_dispatch_is_known_only_by_its_newest_tag(board: RunBoard) -> None:
    board.open(7, "softmax", 1)
    old = _ticket(board).tag
    board.open(7, "softmax", 1)  # the job restarted and dispatches attempt 1 again
    new = _ticket(board).tag
    dispatched = {"path": PATH, "event": "workflow_dispatch"}
    assert not board.record(RunNews(800, run_name(7, "softmax", 1, old), "queued", **dispatched))
    assert board.record(RunNews(801, run_name(7, "softmax", 1, new), "queued", **dispatched))


def test_a_restarted_job_dispatches_afresh_but_keeps_a_posted_result(board: RunBoard) -> None:
    board.open(7, "softmax", 1)
    board.link(7, "softmax", 1, 1)
    board.record(RunNews(1, "", "completed", "failure"))
    board.open(7, "softmax", 1)
    state = board.state(7, "softmax")
    assert state is not None and (state.status, state.run_id) == ("dispatched", None)

    token = _ticket(board).token
    assert board.post(verify(KEY, token, 7, WALL), RESULT) == "stored"
    board.open(7, "softmax", 1)
    github, clock = FakeGitHub(), Clock()
    result = _runner(github, board, clock).run(_spec(), lambda: False)
    assert result == read_result(RESULT, 7)


@pytest.mark.parametrize(
    ("kept", "why"),
    [
        ({**RESULT, "evaluated": -1}, "evaluated: expected a whole number from 0 to"),
        ({**RESULT, "job": {"id": 8}}, "the result is job 8's, not job 7's"),
    ],
    ids=["misfit", "another-jobs"],
)
def test_a_kept_result_that_does_not_fit_fails_the_job_with_the_field(
    board: RunBoard, kept: dict[str, Any], why: str
) -> None:
    """The runner reads the board's result at its boundary, as the route read the post: the bot
    gets a checked result or the reason there is none."""
    board.open(7, "softmax", 1)
    assert board.post(verify(KEY, _ticket(board).token, 7, WALL), kept) == "stored"
    with pytest.raises(RunnerError, match=f"^job 7's result was refused: {why}"):
        _runner(FakeGitHub(), board, Clock()).run(_spec(), lambda: False)


def test_a_token_posts_once_and_the_board_counts_each_replay(board: RunBoard) -> None:
    board.open(7, "softmax", 1)
    board.open(7, "softmax", 2)
    first, second = _ticket(board, 1), _ticket(board, 2)
    once = verify(KEY, first.token, 7, WALL)
    assert board.post(once, {"problem": "softmax", "n": 1}) == "stored"
    assert board.post(once, {"problem": "softmax", "n": 2}) == "spent"
    assert board.post(once, {"problem": "softmax", "n": 3}) == "spent"
    assert board.post(verify(KEY, second.token, 7, WALL), {"problem": "softmax"}) == "taken"
    state = board.state(7, "softmax")
    assert state is not None and state.result == {"problem": "softmax", "n": 1}
    uses = board.token_uses(7)
    assert [(u.attempt, u.replays, u.spent_at is not None) for u in uses] == [
        (1, 2, True),
        (2, 0, True),
    ]
    never_kept = grant(7, "softmax", 1, WALL + 60)  # signed with the key, never issued here
    assert board.post(never_kept, {"problem": "softmax"}) == "unknown token"


def test_a_run_that_ends_without_a_result_is_retried_after_the_grace(board: RunBoard) -> None:
    github, clock = FakeGitHub(), Clock()
    runner = _runner(github, board, clock, attempts=2, grace=5.0)

    def cancelled() -> bool:
        state = board.state(7, "softmax")
        assert state is not None
        if state.status == "dispatched":  # GitHub says at once that the run failed
            board.record(RunNews(9000 + len(github.dispatches) - 1, "", "completed"))
        return False

    with pytest.raises(RunnerError, match="after 2 attempts") as error:
        runner.run(_spec(), cancelled)
    assert "run 9000 ended (no conclusion) without posting a result" in str(error.value)
    assert [d[3]["attempt"] for d in github.dispatches] == ["1", "2"]
    assert github.cancelled_runs == []  # completed runs are not cancelled
    assert clock.now >= 10.0
