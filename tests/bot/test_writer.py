"""Tests for `bot.writer`: group commit, replays inside a batch and against stored rows, and a
future that resolves only after its batch is committed, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future

import pytest
from kevolve.bot.recorder import NewDelivery
from kevolve.bot.storage import Storage, StorageError
from kevolve.bot.writer import DeliveryWriter, Recorder

WAIT = 10.0  # seconds; only a deadline for a broken writer, never a measurement


def new(delivery_id: str, note: str = "") -> NewDelivery:
    """A push delivery whose payload carries `note`."""
    return NewDelivery(delivery_id, "push", None, json.dumps({"after": delivery_id, "note": note}))


class Gate:
    """Wraps a recorder: each batch waits at the gate until it opens, and is remembered."""

    def __init__(self, inner: Recorder) -> None:
        self.inner = inner
        self.batches: list[list[str]] = []
        self.entered = threading.Event()
        self.open = threading.Event()
        self.closed = False

    def record(self, rows: Sequence[NewDelivery]) -> set[str]:
        self.batches.append([row.delivery_id for row in rows])
        self.entered.set()
        assert self.open.wait(WAIT), "the test never opened the gate"
        return self.inner.record(rows)

    def close(self) -> None:
        self.closed = True
        self.inner.close()


class Memory:
    """A recorder in memory that can be told to fail."""

    def __init__(self) -> None:
        self.rows: dict[str, NewDelivery] = {}
        self.fail = False

    def record(self, rows: Sequence[NewDelivery]) -> set[str]:
        if self.fail:
            raise StorageError("database is down")
        fresh = {row.delivery_id for row in rows if row.delivery_id not in self.rows}
        self.rows.update({row.delivery_id: row for row in rows if row.delivery_id in fresh})
        return fresh

    def close(self) -> None:
        pass


@pytest.fixture
def storage(database_url: str) -> Iterator[Storage]:
    """A storage on a fresh database of each backend, tables created."""
    store = Storage(database_url)
    store.create_all()
    yield store
    store.close()


def hold_first_batch(writer: DeliveryWriter, gate: Gate) -> Future[bool]:
    """Submit one delivery and wait until the writer is inside its commit, held at the gate."""
    first = writer.submit(new("first"))
    assert gate.entered.wait(WAIT)
    return first


def results(futures: Sequence[Future[bool]]) -> list[bool]:
    return [future.result(WAIT) for future in futures]


def test_what_queues_during_a_commit_is_stored_in_the_next_single_batch() -> None:
    gate = Gate(Memory())
    writer = DeliveryWriter(gate)
    first = hold_first_batch(writer, gate)
    queued = [writer.submit(new(f"d-{n}")) for n in range(5)]
    gate.open.set()
    assert results([first, *queued]) == [True] * 6
    assert gate.batches == [["first"], ["d-0", "d-1", "d-2", "d-3", "d-4"]]
    writer.stop()
    assert gate.closed


def test_a_batch_holds_at_most_max_batch_deliveries() -> None:
    gate = Gate(Memory())
    writer = DeliveryWriter(gate, max_batch=2)
    first = hold_first_batch(writer, gate)
    queued = [writer.submit(new(f"d-{n}")) for n in range(3)]
    gate.open.set()
    assert results([first, *queued]) == [True] * 4
    assert gate.batches == [["first"], ["d-0", "d-1"], ["d-2"]]
    writer.stop()


def test_a_future_resolves_only_after_its_batch_is_committed() -> None:
    memory = Memory()
    gate = Gate(memory)
    writer = DeliveryWriter(gate)
    seen_stored: list[bool] = []
    future = writer.submit(new("d-1"))
    future.add_done_callback(lambda _f: seen_stored.append("d-1" in memory.rows))
    assert gate.entered.wait(WAIT)
    assert not future.done()  # inside the commit: no answer yet
    gate.open.set()
    assert future.result(WAIT) is True
    assert seen_stored == [True]
    writer.stop()


def test_a_failed_commit_fails_every_request_of_its_batch_and_the_next_batch_is_stored() -> None:
    memory = Memory()
    gate = Gate(memory)
    writer = DeliveryWriter(gate)
    first = hold_first_batch(writer, gate)
    memory.fail = True
    queued = [writer.submit(new("d-1")), writer.submit(new("d-2"))]
    gate.open.set()
    for future in (first, *queued):
        with pytest.raises(StorageError, match="database is down"):
            future.result(WAIT)
    memory.fail = False
    assert writer.submit(new("d-1")).result(WAIT) is True
    assert sorted(memory.rows) == ["d-1"]
    writer.stop()


def test_stop_stores_what_is_queued_and_later_submissions_fail() -> None:
    gate = Gate(Memory())
    writer = DeliveryWriter(gate)
    first = hold_first_batch(writer, gate)
    queued = writer.submit(new("d-1"))
    stopping = threading.Thread(target=writer.stop)
    stopping.start()
    gate.open.set()
    stopping.join(WAIT)
    assert results([first, queued]) == [True, True]
    with pytest.raises(StorageError, match="stopped"):
        writer.submit(new("d-2")).result(WAIT)
    assert gate.closed


def test_replays_inside_a_batch_and_of_stored_rows_answer_false_and_store_nothing(
    storage: Storage,
) -> None:
    assert storage.record_delivery("old", "push", None, {"after": "old", "note": "stored"})
    gate = Gate(storage.recorder())
    writer = DeliveryWriter(gate)
    first = hold_first_batch(writer, gate)
    queued = [
        writer.submit(new("d-1", "first copy")),
        writer.submit(new("d-1", "second copy")),
        writer.submit(new("old", "replayed")),
        writer.submit(new("d-2")),
    ]
    gate.open.set()
    assert results([first, *queued]) == [True, True, False, False, True]
    assert gate.batches == [["first"], ["d-1", "old", "d-2"]]  # one copy of each id goes in
    writer.stop()
    stored = {d.delivery_id: d.payload["note"] for d in storage.pending_deliveries(10)}
    assert stored == {"old": "stored", "first": "", "d-1": "first copy", "d-2": ""}


def test_a_delivery_is_visible_to_other_connections_when_its_future_resolves(
    storage: Storage, database_url: str
) -> None:
    other = Storage(database_url)  # an engine of its own: it sees committed rows only
    gate = Gate(storage.recorder())
    writer = DeliveryWriter(gate)
    futures = [hold_first_batch(writer, gate), *(writer.submit(new(f"d-{n}")) for n in range(5))]
    visible: dict[str, bool] = {}

    def check(key: str) -> None:
        visible[key] = other.delivery(key) is not None

    for key, future in zip(["first", *(f"d-{n}" for n in range(5))], futures, strict=True):
        future.add_done_callback(lambda _future, key=key: check(key))
    assert not any(future.done() for future in futures)
    gate.open.set()
    assert results(futures) == [True] * 6
    writer.stop()
    other.close()
    assert visible == {key: True for key in ["first", *(f"d-{n}" for n in range(5))]}
