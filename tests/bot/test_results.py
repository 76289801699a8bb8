"""`POST /jobs/{id}/result`: only the job's own unexpired token stores a result, and only once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kevolve.bot.board import RunBoard
from kevolve.bot.jobengine import ticket_office
from kevolve.bot.service.app import create_app
from kevolve.bot.settings import BotSettings
from kevolve.bot.storage import Storage
from kevolve.bot.tokens import grant, issue, key_for

HOUR = 3600.0


@pytest.fixture
def app(settings: BotSettings) -> Iterator[tuple[TestClient, Storage, RunBoard]]:
    storage = Storage(settings.database_url)
    with TestClient(create_app(settings, storage)) as client:
        yield client, storage, RunBoard(storage.engine, storage.now)
    storage.close()


def _job(storage: Storage, board: RunBoard, status: str = "running") -> int:
    sha = f"{len(storage.jobs()):040x}"  # one job per commit: the same one would merge
    job_id = storage.add_job("acme/kernels", sha, "softmax", "h100", "push", 2, status=status)
    board.open(job_id, "softmax", 1)
    return job_id


def _token(
    board: RunBoard, key: bytes, job_id: int, attempt: int = 1, at: float | None = None
) -> str:
    """The token of a dispatch of `job_id`'s softmax, issued at `at` (now) for an hour."""
    clock = time.time if at is None else (lambda: at)
    return ticket_office(board, key, "kevolve-search.yml", clock)(
        job_id, "softmax", attempt, HOUR
    ).token


def _result(job_id: int) -> dict[str, Any]:
    return {
        "schema": 1,
        "problem": "softmax",
        "device": "cpu",
        "timed": False,
        "evaluated": 2,
        "job": {"id": job_id},
    }


def _post(client: TestClient, job_id: int, token: str | None, body: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.post(f"/jobs/{job_id}/result", json=body, headers=headers)


def test_the_jobs_own_token_stores_the_result_once(
    app: tuple[TestClient, Storage, RunBoard], settings: BotSettings
) -> None:
    client, storage, board = app
    job_id = _job(storage, board)
    token = _token(board, key_for(settings.webhook_secret), job_id)

    first = _post(client, job_id, token, _result(job_id))
    assert first.status_code == 200 and first.json() == {
        "job": job_id,
        "op": "softmax",
        "attempt": 1,
        "stored": True,
    }
    again = _post(client, job_id, token, {**_result(job_id), "evaluated": 99})
    assert again.status_code == 409 and again.json()["spent"] is True
    assert "used already: a token posts once" in again.json()["error"]
    assert [use.replays for use in board.token_uses(job_id)] == [1]  # the board counts it

    state = board.state(job_id, "softmax")
    assert state is not None and state.result is not None
    assert state.result["evaluated"] == 2  # the first one stays


def test_wrong_expired_other_jobs_and_missing_tokens_are_refused_and_nothing_is_stored(
    app: tuple[TestClient, Storage, RunBoard], settings: BotSettings
) -> None:
    client, storage, board = app
    job_id, other = _job(storage, board), _job(storage, board)
    key = key_for(settings.webhook_secret)
    cases = {
        "other job's": (_token(board, key, other), 403, f"is for job {other}"),
        "expired": (_token(board, key, job_id, at=time.time() - 2 * HOUR), 403, "expired"),
        "forged": (_token(board, key_for("not the secret"), job_id), 403, "signature"),
        "never issued": (issue(key, grant(job_id, "softmax", 1, time.time() + HOUR)), 403, "never"),
        "garbled": ("kj1.nonsense", 401, "malformed"),
        "missing": (None, 401, "Authorization: Bearer"),
    }
    for name, (token, status, reason) in cases.items():
        answer = _post(client, job_id, token, _result(job_id))
        assert answer.status_code == status, name
        assert reason in answer.json()["error"], name
    state = board.state(job_id, "softmax")
    assert state is not None and state.result is None


def test_bodies_and_jobs_that_cannot_take_a_result_say_why(
    app: tuple[TestClient, Storage, RunBoard], settings: BotSettings
) -> None:
    client, storage, board = app
    key = key_for(settings.webhook_secret)
    running, done = _job(storage, board), _job(storage, board, status="done")

    def post(job_id: int, body: Any, raw: bytes | None = None) -> Any:
        token = _token(board, key, job_id)
        headers = {"Authorization": f"Bearer {token}"}
        if raw is not None:
            return client.post(f"/jobs/{job_id}/result", content=raw, headers=headers)
        return client.post(f"/jobs/{job_id}/result", json=body, headers=headers)

    assert post(running, None, raw=b"{not json").status_code == 400
    bad = post(running, {"evaluated": 2})
    assert bad.status_code == 422 and "problem" in bad.json()["error"]
    crossed = post(running, _result(done))
    assert crossed.status_code == 422 and f"job {done}'s" in crossed.json()["error"]
    late = post(done, _result(done))
    assert late.status_code == 409 and "is done" in late.json()["error"]
    other_op = post(running, {**_result(running), "problem": "rmsnorm"})
    assert other_op.status_code == 403
    assert "token is for op 'softmax', not 'rmsnorm'" in other_op.json()["error"]
    assert post(10_000, _result(10_000)).status_code == 404


def test_a_token_posts_only_its_own_attempt_and_the_first_result_of_the_op_stays(
    app: tuple[TestClient, Storage, RunBoard], settings: BotSettings
) -> None:
    client, storage, board = app
    key = key_for(settings.webhook_secret)
    job_id = _job(storage, board)
    undispatched = _post(client, job_id, _token(board, key, job_id, attempt=2), _result(job_id))
    assert (
        undispatched.status_code == 409
        and "did not dispatch op 'softmax' #2" in (undispatched.json()["error"])
    )
    board.open(job_id, "softmax", 2)
    first = _post(client, job_id, _token(board, key, job_id, attempt=2), _result(job_id))
    assert first.status_code == 200 and first.json()["attempt"] == 2
    late = _post(client, job_id, _token(board, key, job_id, attempt=1), _result(job_id))
    assert late.status_code == 409 and "another attempt's result" in late.json()["error"]


def test_anything_that_is_not_a_token_is_refused_with_a_reason_never_an_error(
    app: tuple[TestClient, Storage, RunBoard], settings: BotSettings
) -> None:
    """Non-ASCII digits, numbers past int()'s digit limit, odd separators, bytes that are not
    ASCII in the header: each answers 401 saying the token is malformed."""
    client, storage, board = app
    job_id = _job(storage, board)
    token = _token(board, key_for(settings.webhook_secret), job_id)
    job, _op, _attempt, expiry, *_rest = token.split(".")[1:]
    cases: dict[str, bytes] = {
        "arabic-indic digits": token.replace(f".{job}.", ".\u0661.").encode(),
        "fullwidth digits": token.replace(f".{expiry}.", ".\uff11\uff12.").encode(),
        "10,000-digit job": token.replace(f".{job}.", "." + "7" * 10_000 + ".").encode(),
        "10,000-digit expiry": token.replace(f".{expiry}.", "." + "9" * 10_000 + ".").encode(),
        "colons": token.replace(".", ":").encode(),
        "spaces": token.replace(".", " ").encode(),
        "latin-1 bytes": token.encode()[:-2] + b"\xff\xfe",
        "a NUL-free control byte": token.encode() + b"\x7f",
    }
    for name, raw in cases.items():
        for value in (raw, raw.decode("utf-8", "replace").encode("utf-8")):
            headers = [
                (b"authorization", b"Bearer " + value),
                (b"content-type", b"application/json"),
            ]
            answer = client.post(
                f"/jobs/{job_id}/result", content=json.dumps(_result(job_id)), headers=headers
            )
            assert answer.status_code == 401, (name, answer.status_code, answer.text[:200])
            assert "malformed job token" in answer.json()["error"], name
    huge_path = client.post(
        f"/jobs/{'9' * 10_000}/result",
        json=_result(job_id),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert huge_path.status_code in (403, 422), huge_path.text[:200]
    state = board.state(job_id, "softmax")
    assert state is not None and state.result is None
