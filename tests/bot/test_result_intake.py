"""`POST /jobs/{id}/result` takes a result as data: a body that does not fit is refused with the
field and the reason (422; 400 for JSON it cannot read, however deep), never a 500, and what is
kept is what the bot read: no posted gate, no posted kernel path, nothing it does not use."""

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
from kevolve.bot.tokens import key_for
from kevolve.runners.intake import read_result

from tests.bot.fixtures import BEST_ID, RATIONALE, SOURCE, timed_result

HOUR = 3600.0


@pytest.fixture
def post(settings: BotSettings) -> Iterator[tuple[Any, RunBoard, int]]:
    """Post a body (JSON-encoded, or raw bytes) to a running job's softmax with its token."""
    storage = Storage(settings.database_url)
    storage.create_all()
    board = RunBoard(storage.engine, storage.now)
    job_id = storage.add_job("acme/kernels", "a" * 40, "softmax", "h100", "push", 2)
    storage.set_job_status(job_id, "running")
    board.open(job_id, "softmax", 1)
    office = ticket_office(board, key_for(settings.webhook_secret), "kevolve-search.yml", time.time)
    with TestClient(create_app(settings, storage), raise_server_exceptions=False) as client:

        def send(body: Any) -> Any:
            token = office(job_id, "softmax", 1, HOUR).token
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            return client.post(f"/jobs/{job_id}/result", content=raw, headers=headers)

        yield send, board, job_id
    storage.close()


def _posted(job_id: int) -> dict[str, Any]:
    result = timed_result()
    result["job"] = {"id": job_id, "hardware": "h100", "kernel": "setup.py"}
    return result


def _refused(post: tuple[Any, RunBoard, int], change: dict[str, Any], reason: str) -> None:
    """A posted result with `change` is answered 422 naming `reason`, and nothing is kept."""
    send, board, job_id = post
    answer = send({**_posted(job_id), **change})
    assert answer.status_code == 422, answer.text
    assert reason in answer.json()["error"]
    state = board.state(job_id, "softmax")
    assert state is not None and state.result is None


def test_json_nested_too_deeply_is_a_400_not_a_500(post: tuple[Any, RunBoard, int]) -> None:
    send, board, job_id = post
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
        answer = send(body)
        assert answer.status_code == 400, answer.text
        assert "nested too deeply" in answer.json()["error"]
    state = board.state(job_id, "softmax")
    assert state is not None and state.result is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"wall_s": float("inf")}, "wall_s: expected a finite number"),
        ({"evaluated": 10**30}, "evaluated: expected a whole number"),
        ({"timed": "yes"}, "timed: expected true or false"),
        ({"problem": "softmax\n\nVerified by kevolve"}, "problem: "),
        ({"hardware": {"name": "<a href=https://evil.example>H100</a>"}}, "hardware.name: "),
        ({"notes": ["x" * 100_000]}, "notes[0]: 100000 characters, at most 65536"),
        ({"best": {"id": "../../etc"}}, "best.evaluation: expected an object"),
        ({"schema": 99}, "schema 99 is not one this bot reads"),
        ({"job": {"id": 0}}, "the result is job 0's"),
    ],
)
def test_a_body_that_does_not_fit_is_refused_with_the_field_and_nothing_is_kept(
    post: tuple[Any, RunBoard, int], change: dict[str, Any], reason: str
) -> None:
    _refused(post, change, reason)


def test_a_source_that_is_not_utf8_text_is_refused(post: tuple[Any, RunBoard, int]) -> None:
    send, _, job_id = post
    body = json.dumps(_posted(job_id)).replace(json.dumps(SOURCE), '"\\ud800 kernel"').encode()
    answer = send(body)
    assert answer.status_code == 422 and "not UTF-8 text" in answer.json()["error"]


def test_what_is_kept_is_what_the_bot_read(post: tuple[Any, RunBoard, int]) -> None:
    send, board, job_id = post
    posted = _posted(job_id)
    posted["publish_gate"] = {"passed": True, "reasons": []}
    posted["pr_title"] = "Verified by kevolve: [sign in](https://evil.example)"
    answer = send(posted)
    assert answer.status_code == 200, answer.text
    state = board.state(job_id, "softmax")
    assert state is not None and state.result is not None
    kept = state.result
    assert "publish_gate" not in kept and "pr_title" not in kept
    assert kept["job"] == {"id": job_id, "hardware": "h100"}  # the posted kernel path is gone
    assert kept == read_result(posted, job_id).to_dict()
    assert kept["lineage"] == timed_result()["lineage"]
    again = read_result(kept, job_id)
    assert [step.repair for step in again.lineage] == [False, True, False, False]
    assert again.rationale == RATIONALE


def _lineage_changed(entry: int, **fields: Any) -> dict[str, Any]:
    """The lineage with `fields` set on its entry `entry`."""
    steps = timed_result()["lineage"]
    steps[entry] = {**steps[entry], **fields}
    return {"lineage": steps}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_lineage_changed(1, id="../../etc/passwd"), "lineage[1].id: '../../etc/passwd' does not"),
        (_lineage_changed(2, proposer="llm [x](https://e)"), "lineage[2].proposer: "),
        (_lineage_changed(1, generation=-1), "lineage[1].generation: expected a whole number"),
        (_lineage_changed(1, model="gpt 4 <b>"), "lineage[1].model: 'gpt 4 <b>' does not match"),
        (_lineage_changed(1, prompt="g1\n# Verified"), "lineage[1].prompt: "),
        (_lineage_changed(0, rationale=["not", "text"]), "lineage[0].rationale: expected text"),
        (_lineage_changed(3, rationale="x" * 100_000), "lineage[3].rationale: 100000 characters"),
        (_lineage_changed(0, id="0" * 16), "lineage[0].id: 0000000000000000 is not the best's"),
        ({"lineage": [{"id": BEST_ID}] * 33}, "lineage: 33 items, at most 32"),
        ({"lineage": {"id": BEST_ID}}, "lineage: expected a list, got dict"),
    ],
)
def test_a_lineage_that_does_not_fit_is_refused_with_the_field(
    post: tuple[Any, RunBoard, int], change: dict[str, Any], reason: str
) -> None:
    _refused(post, change, reason)


def test_a_result_kept_before_lineage_steps_still_reads() -> None:
    kept = {**timed_result(), "lineage": [{"rationale": "More warps."}]}
    result = read_result(kept)
    assert (result.rationale, result.lineage) == ("More warps.", ())
    assert result.to_dict()["lineage"] == [{"rationale": "More warps."}]
