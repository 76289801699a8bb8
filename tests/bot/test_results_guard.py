"""`POST /jobs/{id}/result` at its edges: a token spent by another post between the route's check
and its own, and the exact words of each refusal a runner's log shows."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from kevolve.bot.board import RunBoard
from kevolve.bot.service.app import create_app
from kevolve.bot.settings import BotSettings
from kevolve.bot.storage import Storage
from kevolve.bot.tokens import Grant, grant, issue, key_for

from tests.bot.test_results import HOUR, _job, _post, _result, _token

SPENT = "this job token was used already: a token posts once; the result was not stored"


class _RacedBoard(RunBoard):
    """A board on which another post spends the token just after the route asked: its check
    finds the token unspent, then spending it finds it spent."""

    def replayed(self, grant: Grant) -> bool:
        return False


@contextmanager
def _app(
    settings: BotSettings, board_class: type[RunBoard]
) -> Iterator[tuple[TestClient, Storage, RunBoard]]:
    """The real app, its results route on a board of `board_class`."""
    storage = Storage(settings.database_url)
    app = create_app(settings, storage)
    board = board_class(storage.engine, storage.now)
    app.state.results = dataclasses.replace(app.state.results, board=board)
    with TestClient(app) as client:
        yield client, storage, board
    storage.close()


@pytest.mark.parametrize("board_class", [RunBoard, _RacedBoard], ids=["later", "simultaneous"])
def test_a_second_post_with_a_token_stores_nothing_and_says_why(
    settings: BotSettings, board_class: type[RunBoard]
) -> None:
    with _app(settings, board_class) as (client, storage, board):
        job_id = _job(storage, board)
        token = _token(board, key_for(settings.webhook_secret), job_id)
        assert _post(client, job_id, token, _result(job_id)).status_code == 200
        again = _post(client, job_id, token, {**_result(job_id), "evaluated": 99})
        assert (again.status_code, again.json()) == (409, {"error": SPENT, "spent": True})
        assert [use.replays for use in board.token_uses(job_id)] == [1]


def test_a_job_that_does_not_exist_and_a_token_never_issued_are_named(
    settings: BotSettings,
) -> None:
    key, expires = key_for(settings.webhook_secret), time.time() + HOUR
    with _app(settings, RunBoard) as (client, storage, board):
        gone = _post(client, 999, issue(key, grant(999, "softmax", 1, expires)), _result(999))
        job_id = _job(storage, board)
        unissued = issue(key, grant(job_id, "softmax", 1, expires))  # not by the board
        never = _post(client, job_id, unissued, _result(job_id))
    assert [(r.status_code, r.json()) for r in (gone, never)] == [
        (404, {"error": "there is no job 999"}),
        (403, {"error": "this job token was never issued by this bot; not stored"}),
    ]
