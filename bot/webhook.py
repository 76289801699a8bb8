"""`POST /webhook`: verify GitHub's signature, store the delivery durably, acknowledge at once."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Histogram

from bot.storage import Storage

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
        self.ack_seconds = Histogram(
            "kevolve_webhook_ack_seconds",
            "Time from request to acknowledgement.",
            buckets=_ACK_BUCKETS,
            registry=registry,
        )


@dataclass(frozen=True)
class WebhookContext:
    """What the webhook route needs from the app: the secret, storage, metrics, a wake-up call."""

    secret: bytes
    storage: Storage
    metrics: WebhookMetrics
    notify: Callable[[], None]


def webhook_context(request: Request) -> WebhookContext:
    """The app's webhook context (set by `create_app`)."""
    context: WebhookContext = request.app.state.webhook
    return context


async def raw_body(request: Request) -> bytes:
    """The request body exactly as sent: the signature is over these bytes."""
    return await request.body()


router = APIRouter()


def _error(status: int, message: str) -> JSONResponse:
    """A JSON error response."""
    return JSONResponse(status_code=status, content={"error": message})


def _parse(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


@router.post("/webhook")
def receive(
    context: Annotated[WebhookContext, Depends(webhook_context)],
    body: Annotated[bytes, Depends(raw_body)],
    x_hub_signature_256: Annotated[str | None, Header()] = None,
    x_github_event: Annotated[str | None, Header()] = None,
    x_github_delivery: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Store a signed delivery and answer 202; 401 unsigned, 400 malformed, 200 on replay."""
    started = time.perf_counter()
    try:
        return _receive(context, body, x_hub_signature_256, x_github_event, x_github_delivery)
    finally:
        context.metrics.ack_seconds.observe(time.perf_counter() - started)


def _receive(
    context: WebhookContext,
    body: bytes,
    signature: str | None,
    event: str | None,
    delivery_id: str | None,
) -> JSONResponse:
    """The webhook's decisions, in the order GitHub's guidance asks: signature first."""
    if not verify_signature(context.secret, body, signature):
        context.metrics.rejected.inc()
        log.warning("webhook rejected: missing or bad signature (delivery %s)", delivery_id)
        return _error(401, "missing or bad X-Hub-Signature-256")
    if not event or not delivery_id:
        return _error(400, "missing X-GitHub-Event or X-GitHub-Delivery header")
    if len(event) > _MAX_NAME or len(delivery_id) > _MAX_NAME:
        return _error(400, "X-GitHub-Event or X-GitHub-Delivery header too long")
    payload = _parse(body)
    if payload is None:
        return _error(400, "body is not a JSON object")
    action = payload.get("action")
    action = action[:_MAX_NAME] if isinstance(action, str) else None
    if not context.storage.record_delivery(delivery_id, event, action, payload):
        context.metrics.duplicates.inc()
        return JSONResponse(status_code=200, content={"status": "duplicate"})
    context.metrics.received.labels(event=event).inc()
    context.notify()
    return JSONResponse(status_code=202, content={"status": "accepted"})
