"""The GitHub App service: composes the routers, the storage and the dispatcher."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from bot import webhook
from bot.dispatcher import Dispatcher, Handler
from bot.settings import BotSettings
from bot.storage import Delivery, Storage
from bot.webhook import WebhookContext, WebhookMetrics

ops = APIRouter()


def app_storage(request: Request) -> Storage:
    """The app's storage."""
    storage: Storage = request.app.state.storage
    return storage


def app_registry(request: Request) -> CollectorRegistry:
    """The app's own Prometheus registry."""
    registry: CollectorRegistry = request.app.state.registry
    return registry


@ops.get("/healthz")
def healthz(storage: Annotated[Storage, Depends(app_storage)]) -> JSONResponse:
    """200 with `{"status": "ok"}` when the database answers, else 503."""
    if storage.ping():
        return JSONResponse({"status": "ok", "database": "ok"})
    return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)


@ops.get("/metrics")
def metrics(registry: Annotated[CollectorRegistry, Depends(app_registry)]) -> Response:
    """The app's metrics in Prometheus text format."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class Background(Protocol):
    """A worker that runs beside the web app: started with it, stopped with it."""

    def start(self) -> None: ...
    def stop(self, timeout: float = 10.0) -> None: ...


def require_secret(settings: BotSettings) -> None:
    """Fail closed: a ValueError, before anything starts, when no webhook secret is set."""
    if not settings.webhook_secret:
        raise ValueError(
            "no webhook secret configured: set KEVOLVE_WEBHOOK_SECRET to the GitHub App's "
            "webhook secret (kevolve refuses unsigned webhooks)"
        )


def create_app(
    settings: BotSettings,
    storage: Storage | None = None,
    handlers: Mapping[str, Handler] | None = None,
    background: Sequence[Background] = (),
) -> FastAPI:
    """The FastAPI app; a ValueError when no webhook secret is configured (fail closed)."""
    require_secret(settings)
    storage = Storage(settings.database_url) if storage is None else storage
    storage.create_all()
    registry = CollectorRegistry()
    failures = Counter(
        "kevolve_delivery_failures",
        "Deliveries whose handler raised, by event.",
        ["event"],
        registry=registry,
    )

    def count_failure(delivery: Delivery, _error: str) -> None:
        """Count a failed delivery."""
        failures.labels(event=delivery.event).inc()

    dispatcher = Dispatcher(storage, handlers or {}, on_failure=count_failure)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        """Run the dispatcher while the app serves."""
        dispatcher.start()
        for worker in background:
            worker.start()
        try:
            yield
        finally:
            for worker in background:
                worker.stop()
            dispatcher.stop()

    app = FastAPI(title="kevolve", lifespan=lifespan)
    app.state.storage = storage
    app.state.registry = registry
    app.state.dispatcher = dispatcher
    app.state.webhook = WebhookContext(
        secret=settings.webhook_secret.encode(),
        storage=storage,
        metrics=WebhookMetrics(registry),
        notify=dispatcher.wake,
    )
    app.include_router(webhook.router)
    app.include_router(ops)
    return app
