"""The GitHub App service: composes the routers, the storage and the dispatcher."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from kevolve.bot import results, webhook
from kevolve.bot.background import Background
from kevolve.bot.board import RunBoard
from kevolve.bot.dashboard.mount import bot_dashboard, mount
from kevolve.bot.dispatcher import Dispatcher, Routes
from kevolve.bot.results import ResultsContext
from kevolve.bot.settings import BotSettings
from kevolve.bot.storage import Storage, StorageError
from kevolve.bot.tokens import key_for
from kevolve.bot.webhook import WebhookContext, WebhookMetrics
from kevolve.bot.writer import DeliveryWriter
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric

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


def require_secret(settings: BotSettings) -> None:
    """Fail closed: a ValueError, before anything starts, when no webhook secret is set."""
    if not settings.webhook_secret:
        raise ValueError(
            "no webhook secret configured: set KEVOLVE_WEBHOOK_SECRET to the GitHub App's "
            "webhook secret (kevolve refuses unsigned webhooks)"
        )


class _FailedDeliveries:
    """`kevolve_delivery_failures_total` by event, counted in the database at each scrape, so it
    is right whichever process (this one, or a `kevolve worker`) ran the handlers."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def collect(self) -> Iterator[Metric]:
        """The failed deliveries per event; nothing while the database is unreachable."""
        family = CounterMetricFamily(
            "kevolve_delivery_failures",
            "Deliveries whose handler raised, by event.",
            labels=["event"],
        )
        try:
            counts = self._storage.failed_deliveries()
        except StorageError:
            return
        for event, count in sorted(counts.items()):
            family.add_metric([event], count)
        yield family


def create_app(
    settings: BotSettings,
    storage: Storage | None = None,
    handlers: Routes | None = None,
    background: Sequence[Background] = (),
) -> FastAPI:
    """The FastAPI app; a ValueError when no webhook secret is configured (fail closed).

    With `handlers`, a dispatcher thread in this process hands stored deliveries to them (tests,
    and `kevolve serve --in-process`); without, the app only receives, and a worker process
    (`bot.processor`, one of `background` or run apart) processes what it stored.
    """
    require_secret(settings)
    storage = Storage(settings.database_url) if storage is None else storage
    storage.create_all()
    registry = CollectorRegistry()
    registry.register(_FailedDeliveries(storage))
    writer = DeliveryWriter(storage.recorder())
    dispatcher = (
        None
        if handlers is None
        else Dispatcher(storage, handlers, retry_s=settings.delivery_retry_s)
    )
    workers: list[Background] = [writer, *([dispatcher] if dispatcher else []), *background]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        """Run the writer, the dispatcher and the background workers while the app serves."""
        for worker in workers:
            worker.start()
        try:
            yield
        finally:
            for worker in reversed(workers):
                worker.stop()

    app = FastAPI(title="kevolve", lifespan=lifespan)
    app.state.storage = storage
    app.state.registry = registry
    app.state.dispatcher = dispatcher
    app.state.webhook = WebhookContext(
        secret=settings.webhook_secret.encode(),
        submit=writer.submit,
        metrics=WebhookMetrics(registry),
        notify=dispatcher.wake if dispatcher else _nothing,
        max_bytes=settings.webhook_max_bytes,
    )
    app.state.results = ResultsContext(
        key_for(settings.webhook_secret),
        storage,
        RunBoard(storage.engine, storage.now),
        time.time,
    )
    app.include_router(webhook.router)
    app.include_router(results.router)
    app.include_router(ops)
    if (dashboard := bot_dashboard(settings, storage)) is not None:
        mount(app, dashboard)
    return app


def _nothing() -> None:
    """No dispatcher here to wake: the worker process polls the database."""
