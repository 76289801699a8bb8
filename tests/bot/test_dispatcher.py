"""The dispatcher on a real database (SQLite and PostgreSQL): installations take turns, so one
tenant's flood does not hold another tenant's delivery behind it."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from kevolve.bot.dispatcher import Dispatcher
from kevolve.bot.storage import Delivery, Storage


def ticking() -> Callable[[], datetime]:
    """A clock that moves one millisecond per reading, so every delivery has its own time."""
    start, ticks = datetime(2026, 1, 1, tzinfo=UTC), itertools.count()
    return lambda: start + timedelta(milliseconds=next(ticks))


@pytest.fixture
def storage(database_url: str) -> Iterator[Storage]:
    store = Storage(database_url, clock=ticking())
    store.create_all()
    yield store
    store.close()


def test_one_tenants_200_deliveries_do_not_hold_anothers_one_behind_them(
    storage: Storage,
) -> None:
    for n in range(200):
        payload = {"action": "created", "installation": {"id": 1}, "n": n}
        storage.record_delivery(f"flood-{n:03}", "issue_comment", "created", payload)
    storage.record_delivery("other", "push", None, {"installation": {"id": 2}})
    order: list[str] = []

    def handle(delivery: Delivery) -> None:
        order.append(delivery.delivery_id)

    dispatcher = Dispatcher(storage, {"issue_comment": handle, "push": handle}, poll_seconds=0.05)
    dispatcher.start()
    try:
        assert dispatcher.drain(60)
    finally:
        dispatcher.stop()
    assert len(order) == 201
    assert order.index("other") <= 5  # behind at most one turn of the flood, not 200
    flood = [key for key in order if key != "other"]
    assert flood == sorted(flood)  # each tenant's own deliveries stay in order
