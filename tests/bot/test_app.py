"""Tests for `bot.service.app` and `kevolve serve`: fail closed, health, metrics, surviving a
kill."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kevolve.bot.service.app import create_app
from kevolve.bot.settings import BotSettings
from kevolve.bot.storage import Delivery, Storage

ROOT = Path(__file__).resolve().parents[2]
Signer = Callable[[bytes, str, str], dict[str, str]]


def metric(text: str, name: str) -> float:
    """The value of one sample line `name` in Prometheus text, 0 when absent."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_create_app_refuses_to_start_without_a_webhook_secret(settings: BotSettings) -> None:
    with pytest.raises(
        ValueError, match="no webhook secret configured: set KEVOLVE_WEBHOOK_SECRET"
    ):
        create_app(replace(settings, webhook_secret=""))


def test_serve_without_a_secret_exits_2_with_a_clear_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEVOLVE_")}
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "serve", "--port", "8999"]
    done = subprocess.run(
        argv, cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.startswith("kevolve: error: no webhook secret configured")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "kevolve.db").exists()


def test_healthz_reports_the_database(settings: BotSettings) -> None:
    with TestClient(create_app(settings)) as client:
        response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok", "database": "ok"})


def test_metrics_count_deliveries_duplicates_rejections_failures_and_latency(
    settings: BotSettings, sign: Signer, push_payload: dict[str, Any]
) -> None:
    def broken(_delivery: Delivery) -> None:
        raise RuntimeError("handler broke")

    app = create_app(replace(settings, delivery_retry_s=()), handlers={"issue_comment": broken})
    body = json.dumps(push_payload).encode()
    comment = b'{"action":"created","comment":{"body":"/kevolve help"}}'
    with TestClient(app) as client:
        client.post("/webhook", content=body, headers=sign(body, "push", "d-1"))
        client.post("/webhook", content=body, headers=sign(body, "push", "d-1"))
        client.post("/webhook", content=comment, headers=sign(comment, "issue_comment", "d-2"))
        unsigned = sign(body, "push", "d-3")
        unsigned["X-Hub-Signature-256"] = "sha256=" + "0" * 64
        client.post("/webhook", content=body, headers=unsigned)
        assert app.state.dispatcher.drain(10)
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert metric(text, 'kevolve_webhook_deliveries_total{event="push"}') == 1
    assert metric(text, 'kevolve_webhook_deliveries_total{event="issue_comment"}') == 1
    assert metric(text, "kevolve_webhook_duplicates_total") == 1
    assert metric(text, "kevolve_webhook_rejected_signatures_total") == 1
    assert metric(text, 'kevolve_delivery_failures_total{event="issue_comment"}') == 1
    assert metric(text, "kevolve_webhook_ack_seconds_count") == 4


def test_each_app_has_its_own_metrics(settings: BotSettings) -> None:
    first, second = create_app(settings), create_app(settings)
    with TestClient(first) as client:
        client.post("/webhook", content=b"{}", headers={"X-Hub-Signature-256": "sha256=00"})
    with TestClient(second) as client:
        text = client.get("/metrics").text
    assert metric(text, "kevolve_webhook_rejected_signatures_total") == 0


def test_a_delivery_acknowledged_before_a_kill_is_processed_after_restart(
    database_url: str, settings: BotSettings, sign: Signer, push_payload: dict[str, Any]
) -> None:
    settings = replace(settings, database_url=database_url)
    seen: list[str] = []
    body = json.dumps(push_payload).encode()
    # No lifespan: the app acknowledges and stores, but no dispatcher runs (as if killed after 202).
    killed = create_app(settings, Storage(database_url), {"push": lambda d: seen.append("lost")})
    response = TestClient(killed).post("/webhook", content=body, headers=sign(body, "push", "d-1"))
    assert response.status_code == 202
    assert seen == []

    storage = Storage(database_url)
    restarted = create_app(settings, storage, {"push": lambda d: seen.append(d.delivery_id)})
    with TestClient(restarted):
        assert restarted.state.dispatcher.drain(10)
    assert seen == ["d-1"]
    stored = storage.delivery("d-1")
    assert stored is not None and stored.status == "done" and stored.attempts == 1
