"""`POST /webhook`: cap the body, verify GitHub's signature, store the delivery, acknowledge."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from kevolve.bot.database import StorageError
from kevolve.bot.recorder import NewDelivery, installation_in
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.datastructures import Headers

log = logging.getLogger(__name__)

_PREFIX = "sha256="
_MAX_NAME = 100  # the longest event name or delivery id stored
_ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether `header` is the `sha256=` HMAC of `body` under `secret` (constant-time compare)."""
    if not secret or not header or not header.startswith(_PREFIX):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header[len(_PREFIX) :].strip().lower())


class WebhookMetrics:
    """The Prometheus series the webhook path updates."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "kevolve_webhook_deliveries",
            "Webhook deliveries accepted and stored, by event.",
            ["event"],
            registry=registry,
        )
        self.duplicates = Counter(
            "kevolve_webhook_duplicates",
            "Replayed deliveries (their id was already stored).",
            registry=registry,
        )
        self.rejected = Counter(
            "kevolve_webhook_rejected_signatures",
            "Deliveries refused for a missing or bad signature.",
            registry=registry,
        )
        self.oversize = Counter(
            "kevolve_webhook_oversize",
            "Deliveries refused unread for a body over the cap (413).",
            registry=registry,
        )
        self.ack_seconds = Histogram(
            "kevolve_webhook_ack_seconds",
            "Time from request to acknowledgement.",
            buckets=_ACK_BUCKETS,
            registry=registry,
        )


Submit = Callable[[NewDelivery], "Future[bool]"]  # True: stored now; False: a replay


@dataclass(frozen=True)
class WebhookContext:
    """What the webhook route needs from the app: the secret, the writer, metrics, a wake-up."""

    secret: bytes
    submit: Submit
    metrics: WebhookMetrics
    notify: Callable[[], None]
    max_bytes: int = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB


router = APIRouter()


def _error(status: int, message: str) -> JSONResponse:
    """A JSON error response."""
    return JSONResponse(status_code=status, content={"error": message})


def _parse(body: bytes) -> tuple[str, dict[str, Any]] | None:
    """The body as UTF-8 text and as a JSON object, or None when it is not one.

    The text is what gets stored, exactly as signed, so nothing is serialized again.
    """
    try:
        text = body.decode()
        payload = json.loads(text)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    return (text, payload) if isinstance(payload, dict) else None


@router.post("/webhook")
async def receive(request: Request) -> JSONResponse:
    """Store a signed delivery and answer 202; 413 too large, 401 unsigned, 400 malformed, 200
    on replay.

    Async, with the headers read here rather than through dependencies: the request runs on the
    event loop from start to answer, and waits for the writer's commit without a thread.
    """
    started = time.perf_counter()
    context: WebhookContext = request.app.state.webhook
    try:
        body = await _capped_body(request, context.max_bytes)
        if body is None:
            context.metrics.oversize.inc()
            log.warning("webhook refused: body over %d bytes", context.max_bytes)
            return _error(413, f"body over {context.max_bytes} bytes; GitHub sends at most 25 MB")
        return await _receive(context, body, request.headers)
    finally:
        context.metrics.ack_seconds.observe(time.perf_counter() - started)


async def _capped_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to be over `limit` bytes.

    A declared Content-Length over the cap is refused before a byte is read; a chunked body is
    counted as it streams in and dropped at the first chunk past the cap.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:  # uvicorn has checked it is a number
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _receive(context: WebhookContext, body: bytes, headers: Headers) -> JSONResponse:
    """The webhook's decisions, in the order GitHub's guidance asks: signature first."""
    delivery_id = headers.get("x-github-delivery")
    if not verify_signature(context.secret, body, headers.get("x-hub-signature-256")):
        context.metrics.rejected.inc()
        log.warning("webhook rejected: missing or bad signature (delivery %s)", delivery_id)
        return _error(401, "missing or bad X-Hub-Signature-256")
    event = headers.get("x-github-event")
    if not event or not delivery_id:
        return _error(400, "missing X-GitHub-Event or X-GitHub-Delivery header")
    if len(event) > _MAX_NAME or len(delivery_id) > _MAX_NAME:
        return _error(400, "X-GitHub-Event or X-GitHub-Delivery header too long")
    parsed = _parse(body)
    if parsed is None:
        return _error(400, "body is not a JSON object")
    text, payload = parsed
    action = payload.get("action")
    action = action[:_MAX_NAME] if isinstance(action, str) else None
    try:
        new = await asyncio.wrap_future(
            context.submit(NewDelivery(delivery_id, event, action, text, installation_in(payload)))
        )
    except StorageError:
        return _error(503, "cannot store the delivery now; GitHub can redeliver it")
    if not new:
        context.metrics.duplicates.inc()
        return JSONResponse(status_code=200, content={"status": "duplicate"})
    context.metrics.received.labels(event=event).inc()
    context.notify()
    return JSONResponse(status_code=202, content={"status": "accepted"})
