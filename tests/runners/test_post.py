"""Posting a result to a real HTTP server on loopback: auth header, retries, refusals."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kevolve.runners.post import post_result
from kevolve.runners.runner import RunnerError


class Bot(ThreadingHTTPServer):
    """Answers each POST with the next scripted status; keeps what it was sent."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[str, str, Any]] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: Bot

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length))
        self.server.received.append((self.path, self.headers["Authorization"], body))
        status = self.server.statuses.pop(0)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        if status == 409:  # what the bot says to a token's second post
            self.wfile.write(b'{"error": "this job token was used already", "spent": true}')
        else:
            self.wfile.write(b'{"detail": "job token is for job 8, not job 7"}')

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def bot(request: pytest.FixtureRequest) -> Iterator[Bot]:
    server = Bot(list(request.param))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def url(bot: Bot) -> str:
    return f"http://127.0.0.1:{bot.server_address[1]}/"


@pytest.mark.parametrize("bot", [[503, 502, 202]], indirect=True)
def test_transient_failures_are_retried_with_backoff(bot: Bot) -> None:
    sleeps: list[float] = []
    assert post_result(url(bot), 7, "tok", {"evaluated": 3}, sleep=sleeps.append) == 202
    assert sleeps == [1.0, 2.0]
    assert [r[:2] for r in bot.received] == [("/jobs/7/result", "Bearer tok")] * 3
    assert bot.received[0][2] == {"evaluated": 3}


@pytest.mark.parametrize("bot", [[403]], indirect=True)
def test_a_refusal_is_final_and_says_why(bot: Bot) -> None:
    with pytest.raises(RunnerError, match=r"refused job 7's result \(403\).*not job 7"):
        post_result(url(bot), 7, "tok", {}, sleep=lambda s: None)
    assert len(bot.received) == 1


def test_an_unreachable_bot_is_reported_after_the_tries() -> None:
    with pytest.raises(RunnerError, match="after 2 tries"):
        post_result("http://127.0.0.1:9", 7, "tok", {}, attempts=2, sleep=lambda s: None)


@pytest.mark.parametrize("bot", [[502, 409]], indirect=True)
def test_a_spent_token_after_a_lost_answer_means_the_first_try_was_stored(bot: Bot) -> None:
    """The bot stored the first try but its answer was lost (a proxy's 502): the retry is
    refused as the token's second post, which tells the runner its result is in."""
    assert post_result(url(bot), 7, "tok", {}, sleep=lambda s: None) == 409
    assert len(bot.received) == 2


@pytest.mark.parametrize("bot", [[409]], indirect=True)
def test_a_token_spent_before_the_first_try_is_a_refusal(bot: Bot) -> None:
    """Someone else posted with this token first: the runner must not take that as its own."""
    with pytest.raises(RunnerError, match=r"refused job 7's result \(409\).*used already"):
        post_result(url(bot), 7, "tok", {}, sleep=lambda s: None)
