"""Tests for `bot.webhook`: signed deliveries through the real app, in process and over loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import select
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from kevolve.bot.dispatcher import Dispatcher
from kevolve.bot.service.app import create_app
from kevolve.bot.settings import BotSettings, bot_settings
from kevolve.bot.storage import Delivery, Storage
from kevolve.bot.webhook import verify_signature

from tests.bot.conftest import WEBHOOK_SECRET
from tests.bot.loopback import serving

Signer = Callable[[bytes, str, str], dict[str, str]]


@dataclass
class Recorder:
    """A handler that records the deliveries it sees and fails on request."""

    seen: list[str] = field(default_factory=list)
    fail_on: set[str] = field(default_factory=set)

    def __call__(self, delivery: Delivery) -> None:
        """Record the delivery; raise when its id is in `fail_on`."""
        self.seen.append(delivery.delivery_id)
        if delivery.delivery_id in self.fail_on:
            raise RuntimeError(f"handler broke on {delivery.delivery_id}")


@dataclass
class Bot:
    """A running app under TestClient, with its storage, dispatcher and recording handler."""

    client: TestClient
    storage: Storage
    dispatcher: Dispatcher
    handler: Recorder


@pytest.fixture
def bot(settings: BotSettings) -> Iterator[Bot]:
    """The real app with a recording push handler, lifespan running."""
    storage, handler = Storage(settings.database_url), Recorder()
    app = create_app(settings, storage, {"push": handler, "issue_comment": handler})
    with TestClient(app) as client:
        yield Bot(client, storage, app.state.dispatcher, handler)


def post(bot: Bot, body: bytes, headers: dict[str, str]) -> Any:
    """POST `body` to /webhook."""
    return bot.client.post("/webhook", content=body, headers=headers)


def body_of(payload: Any) -> bytes:
    """The JSON bytes GitHub would send."""
    return json.dumps(payload, separators=(",", ":")).encode()


def test_verify_signature_accepts_only_the_exact_hmac() -> None:
    body, secret = b'{"zen":"Design for failure."}', b"s3cret"
    good = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    assert verify_signature(secret, body, good)
    assert verify_signature(secret, body, good.upper().replace("SHA256=", "sha256="))
    assert not verify_signature(secret, body + b" ", good)
    assert not verify_signature(b"other", body, good)
    for header in (None, "", "sha256=", "sha256=zz", good[7:], "sha1=" + good[7:], good + "00"):
        assert not verify_signature(secret, body, header)
    # Signed with the empty key itself: only the guard against an empty secret refuses it.
    empty = "sha256=" + hmac.new(b"", body, hashlib.sha256).hexdigest()
    assert not verify_signature(b"", body, empty)


def test_a_signed_push_is_accepted_stored_and_handled(
    bot: Bot, sign: Signer, push_payload: dict[str, Any]
) -> None:
    body = body_of(push_payload)
    response = post(bot, body, sign(body, "push", "d-1"))
    assert (response.status_code, response.json()) == (202, {"status": "accepted"})
    assert bot.dispatcher.drain(10)
    stored = bot.storage.delivery("d-1")
    assert stored is not None and stored.payload == push_payload
    assert (stored.event, stored.status) == ("push", "done")
    assert bot.handler.seen == ["d-1"]


@pytest.mark.parametrize("signature", ["missing", "wrong secret", "not hex", "sha1"])
def test_a_bad_or_missing_signature_is_401_and_stores_nothing(
    bot: Bot, sign: Signer, push_payload: dict[str, Any], signature: str
) -> None:
    body = body_of(push_payload)
    headers = sign(body, "push", "d-bad")
    good = headers.pop("X-Hub-Signature-256")
    forged = {
        "wrong secret": "sha256=" + "0" * 64,
        "not hex": "sha256=not-hex",
        "sha1": "sha1=" + good[7:47],
    }
    if signature in forged:
        headers["X-Hub-Signature-256"] = forged[signature]
    response = post(bot, body, headers)
    assert response.status_code == 401
    assert "signature" in response.json()["error"].lower()
    assert bot.storage.delivery("d-bad") is None
    assert bot.storage.pending_deliveries(10) == []


def test_a_body_changed_after_signing_is_401(bot: Bot, sign: Signer) -> None:
    headers = sign(b'{"ref":"refs/heads/main"}', "push", "d-tampered")
    assert post(bot, b'{"ref":"refs/heads/evil"}', headers).status_code == 401
    assert bot.storage.delivery("d-tampered") is None


@pytest.mark.parametrize("header", ["X-GitHub-Event", "X-GitHub-Delivery"])
def test_a_missing_github_header_is_400_and_stores_nothing(
    bot: Bot, sign: Signer, header: str
) -> None:
    body = body_of({"zen": "Keep it logically awesome."})
    headers = sign(body, "ping", "d-ping")
    del headers[header]
    response = post(bot, body, headers)
    assert response.status_code == 400
    assert bot.storage.pending_deliveries(10) == []


def test_a_replayed_delivery_is_stored_once_and_handled_once(
    bot: Bot, sign: Signer, push_payload: dict[str, Any]
) -> None:
    body = body_of(push_payload)
    headers = sign(body, "push", "d-replay")
    assert post(bot, body, headers).status_code == 202
    assert bot.dispatcher.drain(10)
    again = post(bot, body, headers)
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    assert bot.dispatcher.drain(10)
    assert bot.handler.seen == ["d-replay"]


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]", b'"text"', b"\xff\xfe{}"])
def test_a_malformed_body_is_400_never_5xx(bot: Bot, sign: Signer, body: bytes) -> None:
    response = post(bot, body, sign(body, "push", "d-malformed"))
    assert response.status_code == 400
    assert bot.storage.delivery("d-malformed") is None


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("sponsorship", {"action": "created", "sponsorship": {"tier": {"name": "$5"}}}),
        ("issue_comment", {"action": "teleported", "comment": {"body": "/kevolve help"}}),
        ("push", {"action": 42, "ref": None}),
    ],
)
def test_unknown_events_and_actions_are_accepted_and_stored(
    bot: Bot, sign: Signer, event: str, payload: dict[str, Any]
) -> None:
    body = body_of(payload)
    response = post(bot, body, sign(body, event, f"d-{event}"))
    assert response.status_code == 202
    assert bot.dispatcher.drain(10)
    stored = bot.storage.delivery(f"d-{event}")
    assert stored is not None and stored.status == "done"
    assert stored.action == (payload["action"] if isinstance(payload["action"], str) else None)


def test_a_failing_handler_is_retried_with_backoff_then_marked_failed_with_the_reason(
    tmp_path: Path, sign: Signer, push_payload: dict[str, Any]
) -> None:
    settings = bot_settings(
        {
            "KEVOLVE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "KEVOLVE_DATABASE_URL": f"sqlite:///{tmp_path / 'retry.db'}",
            "KEVOLVE_DELIVERY_RETRY_S": "0.2,0.4,0.8",
        }
    )
    storage, handler = Storage(settings.database_url), Recorder()
    handler.fail_on.add("d-boom")
    app = create_app(settings, storage, {"push": handler})
    with TestClient(app) as client:
        started = time.monotonic()
        for delivery_id in ("d-boom", "d-next"):
            body = body_of({**push_payload, "after": delivery_id})
            response = client.post(
                "/webhook", content=body, headers=sign(body, "push", delivery_id)
            )
            assert response.status_code == 202
        deadline = time.monotonic() + 20
        while (found := storage.delivery("d-boom")) is None or found.status != "failed":
            assert time.monotonic() < deadline, f"never marked failed: {found}"
            time.sleep(0.02)
        took = time.monotonic() - started
        metrics = client.get("/metrics").text
    assert handler.seen.count("d-boom") == 4  # the first try and three retries
    assert took >= 0.2 + 0.4 + 0.8  # each retry waited its delay
    assert (found.attempts, found.error) == (4, "RuntimeError: handler broke on d-boom")
    done = storage.delivery("d-next")
    assert done is not None and done.status == "done"
    assert 'kevolve_delivery_failures_total{event="push"} 1.0' in metrics


def test_a_delivery_that_fails_once_is_done_on_its_retry(
    tmp_path: Path, sign: Signer, push_payload: dict[str, Any]
) -> None:
    settings = bot_settings(
        {
            "KEVOLVE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "KEVOLVE_DATABASE_URL": f"sqlite:///{tmp_path / 'retry.db'}",
            "KEVOLVE_DELIVERY_RETRY_S": "0.1",
        }
    )
    storage = Storage(settings.database_url)
    seen: list[str] = []

    def flaky(delivery: Delivery) -> None:
        seen.append(delivery.delivery_id)
        if len(seen) == 1:
            raise ConnectionError("GitHub answered 502")

    with TestClient(create_app(settings, storage, {"push": flaky})) as client:
        body = body_of(push_payload)
        assert (
            client.post("/webhook", content=body, headers=sign(body, "push", "d-1")).status_code
            == 202
        )
        deadline = time.monotonic() + 20
        while (found := storage.delivery("d-1")) is None or found.status != "done":
            assert time.monotonic() < deadline, f"never done: {found}"
            time.sleep(0.02)
    assert seen == ["d-1", "d-1"] and found.attempts == 2


@pytest.fixture
def served(settings: BotSettings) -> Iterator[tuple[str, Storage, Recorder]]:
    """The real app under a real uvicorn server on loopback: (base URL, storage, handler)."""
    storage, handler = Storage(settings.database_url), Recorder()
    app = create_app(settings, storage, {"push": handler})
    with serving(app) as url:
        yield url, storage, handler


def test_over_real_http_signed_is_202_and_handled_unsigned_is_401(
    served: tuple[str, Storage, Recorder], sign: Signer, push_payload: dict[str, Any]
) -> None:
    url, storage, handler = served
    body = body_of(push_payload)
    headers = sign(body, "push", "d-http")
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.post("/webhook", content=body, headers=headers).status_code == 202
        unsigned = {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}
        unsigned["X-GitHub-Delivery"] = "d-unsigned"
        assert http.post("/webhook", content=body, headers=unsigned).status_code == 401
        assert http.post("/webhook", content=body, headers=headers).status_code == 200
        assert http.get("/healthz").json()["status"] == "ok"
    deadline = time.monotonic() + 10
    while handler.seen != ["d-http"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert handler.seen == ["d-http"]
    assert storage.delivery("d-unsigned") is None


def _sqlite_path(settings: BotSettings) -> str:
    """The file of the test's SQLite database."""
    return settings.database_url.removeprefix("sqlite:///")


def test_the_stored_payload_is_the_body_exactly_as_signed(
    bot: Bot, settings: BotSettings, sign: Signer
) -> None:
    body = b'{"zen": "Design for failure.",\n  "hook_id": 1, "note": "\\u00e9"}'
    assert post(bot, body, sign(body, "ping", "d-raw")).status_code == 202
    with sqlite3.connect(_sqlite_path(settings)) as conn:
        [(stored,)] = conn.execute("SELECT payload FROM deliveries WHERE delivery_id = 'd-raw'")
    assert stored == body.decode()


def test_a_delivery_that_cannot_be_stored_is_503_so_github_redelivers_it(
    bot: Bot, settings: BotSettings, sign: Signer, push_payload: dict[str, Any]
) -> None:
    with sqlite3.connect(_sqlite_path(settings)) as conn:
        conn.execute("ALTER TABLE deliveries RENAME TO deliveries_gone")
    body = body_of(push_payload)
    response = post(bot, body, sign(body, "push", "d-lost"))
    assert response.status_code == 503
    assert "redeliver" in response.json()["error"]


def _raw_post(url: str, head: dict[str, str], chunks: Iterator[bytes]) -> tuple[int, int]:
    """POST over a plain socket, sending `chunks` until the server answers or closes; (status,
    bytes of body sent)."""
    host, port = url.removeprefix("http://").split(":")
    lines = ["POST /webhook HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in head.items())]
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break  # the answer came before the whole body was sent
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        answer = b""
        while b"\r\n" not in answer:
            part = sock.recv(4096)
            assert part, "the server closed without answering"
            answer += part
    return int(answer.split(b" ")[1]), sent


_MB = 1024 * 1024


def test_a_body_declared_over_25_mb_is_413_before_it_is_read_or_its_signature_checked(
    served: tuple[str, Storage, Recorder], sign: Signer
) -> None:
    url, storage, handler = served
    size = 26 * _MB
    head = sign(b"", "push", "d-huge")  # the signature is never looked at
    head["Content-Length"] = str(size)
    status, sent = _raw_post(
        url, head, iter([b"{" + b" " * (64 * 1024 - 1)] * (size // (64 * 1024)))
    )
    assert status == 413
    assert sent < size  # answered while most of the body was still unsent
    assert storage.delivery("d-huge") is None and handler.seen == []


def test_a_chunked_body_over_25_mb_is_413_once_counted_past_the_cap(
    served: tuple[str, Storage, Recorder], sign: Signer
) -> None:
    url, storage, handler = served
    head = sign(b"", "push", "d-chunked")
    head["Transfer-Encoding"] = "chunked"
    piece = 256 * 1024

    def chunks() -> Iterator[bytes]:
        for _ in range(200):  # 50 MB offered, far past the cap
            yield f"{piece:x}\r\n".encode() + b" " * piece + b"\r\n"

    status, sent = _raw_post(url, head, chunks())
    assert status == 413
    assert 25 * _MB < sent < 50 * _MB
    with httpx.Client(base_url=url, timeout=10) as http:
        assert "kevolve_webhook_oversize_total 1.0" in http.get("/metrics").text
    assert storage.delivery("d-chunked") is None and handler.seen == []
    assert storage.pending_deliveries() == []
