"""`POST /webhook` at its edges, through the real app: the body cap at exactly its size, header
lengths at exactly their limit, the refusals' exact words and log line, the installation a
delivery is stored with, and the metrics operators scrape."""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from kevolve.bot.service.app import create_app
from kevolve.bot.settings import bot_settings
from kevolve.bot.storage import Storage

from tests.bot.conftest import WEBHOOK_SECRET
from tests.bot.loopback import serving
from tests.bot.test_webhook import Signer

CAP = 1000  # KEVOLVE_WEBHOOK_MAX_BYTES for these tests
ACK_BUCKETS = ("0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "1.0", "+Inf")


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "hooks.db"


@pytest.fixture
def app(database: Path) -> Iterator[tuple[TestClient, Storage]]:
    """The real app that only receives (no handlers), with a 1000-byte body cap."""
    settings = bot_settings(
        {
            "KEVOLVE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "KEVOLVE_DATABASE_URL": f"sqlite:///{database}",
            "KEVOLVE_WEBHOOK_MAX_BYTES": str(CAP),
        }
    )
    storage = Storage(settings.database_url)
    with TestClient(create_app(settings, storage)) as client:
        yield client, storage


def _body(size: int, **fields: object) -> bytes:
    """A JSON object of exactly `size` bytes."""
    head = json.dumps({**fields, "pad": ""}, separators=(",", ":")).encode()
    pad = size - len(head)
    assert pad >= 0
    return head[:-2] + b" " * pad + b'"}'


def test_a_body_of_exactly_the_cap_is_taken_declared_or_chunked_and_one_byte_more_is_not(
    app: tuple[TestClient, Storage], sign: Signer
) -> None:
    client, storage = app
    fits, over = _body(CAP), _body(CAP + 1)
    assert len(fits) == CAP and len(over) == CAP + 1
    for delivery, body, status in (("d-fits", fits, 202), ("d-over", over, 413)):
        declared = client.post("/webhook", content=body, headers=sign(body, "ping", delivery))
        chunked = client.post(
            "/webhook",
            content=iter([body[:300], body[300:]]),
            headers=sign(body, "ping", f"{delivery}-chunked"),
        )
        assert (declared.status_code, chunked.status_code) == (status, status), delivery
    assert storage.delivery("d-fits") is not None and storage.delivery("d-fits-chunked")
    assert storage.delivery("d-over") is None and storage.delivery("d-over-chunked") is None


def test_names_of_exactly_the_limit_are_taken_and_longer_ones_refused_in_words(
    app: tuple[TestClient, Storage], sign: Signer
) -> None:
    client, _ = app
    body = b'{"zen":"Keep it logically awesome."}'
    taken = client.post("/webhook", content=body, headers=sign(body, "e" * 100, "d" * 100))
    assert taken.status_code == 202
    for event, delivery in (("e" * 101, "d-1"), ("ping", "d" * 101)):
        refused = client.post("/webhook", content=body, headers=sign(body, event, delivery))
        assert (refused.status_code, refused.json()) == (
            400,
            {"error": "X-GitHub-Event or X-GitHub-Delivery header too long"},
        )


def test_each_refusal_says_what_was_wrong(app: tuple[TestClient, Storage], sign: Signer) -> None:
    client, _ = app
    body = b'{"zen":"Half measures are as bad as nothing at all."}'
    unsigned = {k: v for k, v in sign(body, "ping", "d-2").items() if k != "X-Hub-Signature-256"}
    no_event = {k: v for k, v in sign(body, "ping", "d-3").items() if k != "X-GitHub-Event"}
    answers = [
        client.post("/webhook", content=body, headers=unsigned),
        client.post("/webhook", content=body, headers=no_event),
        client.post("/webhook", content=b"[1, 2]", headers=sign(b"[1, 2]", "ping", "d-4")),
    ]
    assert [(a.status_code, a.json()) for a in answers] == [
        (401, {"error": "missing or bad X-Hub-Signature-256"}),
        (400, {"error": "missing X-GitHub-Event or X-GitHub-Delivery header"}),
        (400, {"error": "body is not a JSON object"}),
    ]


def test_a_refused_signature_is_logged_with_the_delivery_id(
    app: tuple[TestClient, Storage], sign: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = app
    body = b'{"zen":"Speak like a human."}'
    headers = {**sign(body, "ping", "d-forged"), "X-Hub-Signature-256": "sha256=" + "0" * 64}
    with caplog.at_level(logging.WARNING, logger="kevolve.bot.webhook"):
        assert client.post("/webhook", content=body, headers=headers).status_code == 401
    assert "webhook rejected: missing or bad signature (delivery d-forged)" in caplog.messages


def test_a_delivery_is_stored_with_the_installation_it_came_through(
    app: tuple[TestClient, Storage], sign: Signer
) -> None:
    client, storage = app
    body = json.dumps({"action": "created", "installation": {"id": 4242}}).encode()
    assert client.post("/webhook", content=body, headers=sign(body, "ping", "d-5")).status_code
    stored = storage.delivery("d-5")
    assert stored is not None and stored.installation_id == 4242


def test_a_delivery_that_cannot_be_stored_says_github_may_send_it_again(
    app: tuple[TestClient, Storage], sign: Signer, database: Path
) -> None:
    client, _ = app
    with sqlite3.connect(database) as conn:
        conn.execute("ALTER TABLE deliveries RENAME TO deliveries_gone")
    body = b'{"zen":"Avoid administrative distraction."}'
    answer = client.post("/webhook", content=body, headers=sign(body, "ping", "d-6"))
    assert (answer.status_code, answer.json()) == (
        503,
        {"error": "cannot store the delivery now; GitHub can redeliver it"},
    )


def test_the_metrics_operators_scrape_keep_their_names_help_and_buckets(
    app: tuple[TestClient, Storage], sign: Signer
) -> None:
    """Dashboards and alerts are written against these series: one of each outcome is counted
    under its own name, with its help text, and the acknowledgement times in their buckets."""
    client, _ = app
    body = b'{"zen":"Mind your words, they are important."}'
    client.post("/webhook", content=body, headers=sign(body, "push", "d-7"))
    client.post("/webhook", content=body, headers=sign(body, "push", "d-7"))  # replayed
    unsigned = {**sign(body, "push", "d-8"), "X-Hub-Signature-256": ""}
    client.post("/webhook", content=body, headers=unsigned)
    over = _body(CAP + 1)
    client.post("/webhook", content=over, headers=sign(over, "push", "d-9"))
    lines = client.get("/metrics").text.splitlines()
    assert {
        "# HELP kevolve_webhook_deliveries_total Webhook deliveries accepted and stored, by event.",
        'kevolve_webhook_deliveries_total{event="push"} 1.0',
        "# HELP kevolve_webhook_duplicates_total Replayed deliveries (their id was already "
        "stored).",
        "kevolve_webhook_duplicates_total 1.0",
        "# HELP kevolve_webhook_rejected_signatures_total Deliveries refused for a missing or bad "
        "signature.",
        "kevolve_webhook_rejected_signatures_total 1.0",
        "# HELP kevolve_webhook_oversize_total Deliveries refused unread for a body over the cap "
        "(413).",
        "kevolve_webhook_oversize_total 1.0",
        "# HELP kevolve_webhook_ack_seconds Time from request to acknowledgement.",
        "kevolve_webhook_ack_seconds_count 4.0",
    } <= set(lines)
    buckets = [line.split("} ")[0] for line in lines if "ack_seconds_bucket" in line]
    assert buckets == [f'kevolve_webhook_ack_seconds_bucket{{le="{le}"' for le in ACK_BUCKETS]


def test_a_declared_length_over_the_cap_is_answered_before_any_body_is_sent(
    database: Path, sign: Signer
) -> None:
    """Over real HTTP: the headers alone, declaring one byte over the cap, get the 413; the
    server does not wait for a body the client never sends."""
    settings = bot_settings(
        {
            "KEVOLVE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "KEVOLVE_DATABASE_URL": f"sqlite:///{database}",
            "KEVOLVE_WEBHOOK_MAX_BYTES": str(CAP),
        }
    )
    with serving(create_app(settings, Storage(settings.database_url))) as url:
        host, port = url.removeprefix("http://").split(":")
        head = {**sign(b"", "ping", "d-10"), "Host": host, "Content-Length": str(CAP + 1)}
        request = "POST /webhook HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items())
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall((request + "\r\n").encode())
            answer = sock.recv(4096)  # times out (an error) if the server waits for the body
    assert answer.split(b" ")[1] == b"413"
