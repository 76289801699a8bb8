"""`POST /jobs/{id}/result`: only the job's own unexpired token stores a result, and only once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.board import RunBoard
from bot.settings import BotSettings
from bot.storage import Storage
from bot.tokens import issue, key_for

HOUR = 3600.0


@pytest.fixture
def app(settings: BotSettings) -> Iterator[tuple[TestClient, Storage, RunBoard]]:
    storage = Storage(settings.database_url)
    with TestClient(create_app(settings, storage)) as client:
        yield client, storage, RunBoard(storage.engine, storage.now)
    storage.close()


def _job(storage: Storage, board: RunBoard, status: str = "running") -> int:
    job_id = storage.add_job("acme/kernels", "a" * 40, "softmax", "h100", "push", 2, status=status)
    board.open(job_id, "softmax", 1)
    return job_id


def _result(job_id: int) -> dict[str, Any]:
    return {"schema": 1, "problem": "softmax", "evaluated": 2, "job": {"id": job_id}}


def _post(client: TestClient, job_id: int, token: str | None, body: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.post(f"/jobs/{job_id}/result", json=body, headers=headers)


def test_the_jobs_own_token_stores_the_result_once(
    app: tuple[TestClient, Storage, RunBoard], settings: BotSettings
) -> None:
    client, storage, board = app
    job_id = _job(storage, board)
    token = issue(key_for(settings.webhook_secret), job_id, time.time(), HOUR)

    first = _post(client, job_id, token, _result(job_id))
    assert first.status_code == 200 and first.json() == {
        "job": job_id,
        "op": "softmax",
        "stored": True,
    }
    again = _post(client, job_id, token, {**_result(job_id), "evaluated": 99})
    assert again.status_code == 200 and again.json()["stored"] is False

    state = board.state(job_id, "softmax")
    assert state is not None and state.result == _result(job_id)  # the first one stays


def test_wrong_expired_other_jobs_and_missing_tokens_are_refused_and_nothing_is_stored(
    app: tuple[TestClient, Storage, RunBoard], settings: BotSettings
) -> None:
    client, storage, board = app
    job_id, other = _job(storage, board), _job(storage, board)
    key = key_for(settings.webhook_secret)
    cases = {
        "other job's": (issue(key, other, time.time(), HOUR), 403, f"is for job {other}"),
        "expired": (issue(key, job_id, time.time() - 2 * HOUR, HOUR), 403, "expired"),
        "forged": (issue(key_for("not the secret"), job_id, time.time(), HOUR), 403, "signature"),
        "garbled": ("kj1.nonsense", 403, "malformed"),
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
        token = issue(key, job_id, time.time(), HOUR)
        headers = {"Authorization": f"Bearer {token}"}
        if raw is not None:
            return client.post(f"/jobs/{job_id}/result", content=raw, headers=headers)
        return client.post(f"/jobs/{job_id}/result", json=body, headers=headers)

    assert post(running, None, raw=b"{not json").status_code == 400
    bad = post(running, {"evaluated": 2})
    assert bad.status_code == 422 and "'problem'" in bad.json()["error"]
    crossed = post(running, _result(done))
    assert crossed.status_code == 422 and f"job {done}'s" in crossed.json()["error"]
    late = post(done, _result(done))
    assert late.status_code == 409 and "is done" in late.json()["error"]
    other_op = post(running, {**_result(running), "problem": "rmsnorm"})
    assert (
        other_op.status_code == 409 and "did not dispatch op 'rmsnorm'" in other_op.json()["error"]
    )
    assert post(10_000, _result(10_000)).status_code == 404
