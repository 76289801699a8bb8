"""The delivery writer: group commit of webhook deliveries by one thread with one connection.

Every request used to commit its own transaction from its own thread, and the threads took turns
at SQLite's single write lock. Here requests queue their delivery and wait on a future; one
thread takes everything queued, stores it in one transaction and only then resolves the futures,
so a 202 still means "committed" while a commit serves many requests.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, InvalidStateError
from typing import Protocol

from kevolve.bot.database import StorageError
from kevolve.bot.recorder import NewDelivery

log = logging.getLogger(__name__)

_Item = tuple[NewDelivery, "Future[bool]"]
_STOP = None  # queued by `stop`: everything queued before it is still stored


class Recorder(Protocol):
    """Stores distinct new deliveries in one transaction (`bot.recorder.DeliveryRecorder`)."""

    def record(self, rows: Sequence[NewDelivery]) -> set[str]: ...
    def close(self) -> None: ...


class DeliveryWriter:
    """Stores submitted deliveries in batches; each future resolves after its batch commits.

    A future's result is True when the delivery was stored now, False for a replay (its id was
    stored before, or earlier in the same batch); it raises StorageError when it could not be
    stored. `linger_s` > 0 waits that long for more deliveries before a commit; by default a
    batch is whatever queued while the previous one was committing.
    """

    def __init__(self, recorder: Recorder, *, max_batch: int = 256, linger_s: float = 0.0) -> None:
        self._recorder = recorder
        self._max_batch, self._linger = max_batch, linger_s
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> None:
        """Start the writer thread (`submit` also starts it, for an app served without lifespan)."""
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._loop, name="kevolve-writer", daemon=True
                )
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Store what is queued, then end the thread; later submissions fail."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)

    def submit(self, delivery: NewDelivery) -> Future[bool]:
        """Queue `delivery` for the next batch; a future of whether it was new."""
        future: Future[bool] = Future()
        if self._thread is None:
            self.start()
        with self._lock:  # never behind the stop marker, where nothing would store it
            if self._closed:
                future.set_exception(StorageError("the delivery writer is stopped"))
            else:
                self._queue.put((delivery, future))
        return future

    def _loop(self) -> None:
        """Take a batch, commit it, resolve its futures; until `stop`."""
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            batch = [first]
            stopping = self._gather(batch)
            try:
                self._commit(batch)
            except Exception as exc:  # a bug must not leave requests waiting forever
                log.exception("delivery writer: cannot commit a batch")
                _fail(batch, StorageError(f"{type(exc).__name__}: {exc}"))
        self._recorder.close()

    def _gather(self, batch: list[_Item]) -> bool:
        """Add what else is queued (waiting up to the linger time); whether `stop` was queued."""
        deadline = time.monotonic() + self._linger
        while len(batch) < self._max_batch:
            wait = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            batch.append(item)
        return False

    def _commit(self, batch: list[_Item]) -> None:
        """Store the batch's distinct deliveries, then resolve every future of the batch.

        When the transaction fails, every request of the batch gets the error (GitHub redelivers
        on a 5xx). A delivery whose request was cancelled (its client left) is stored all the
        same; GitHub redelivers it, and the replay answers 200.
        """
        firsts: dict[str, NewDelivery] = {}
        for delivery, _ in batch:
            firsts.setdefault(delivery.delivery_id, delivery)
        try:
            stored = set(self._recorder.record(list(firsts.values())))
        except StorageError as exc:
            log.error("cannot store %d deliveries: %s", len(firsts), exc)
            _fail(batch, exc)
            return
        for delivery, future in batch:
            key = delivery.delivery_id
            _settle(future, key in stored)
            stored.discard(key)  # a second copy in the same batch is a replay


def _fail(batch: list[_Item], error: StorageError) -> None:
    """Resolve the futures of `batch` not resolved yet with `error`."""
    for _, future in batch:
        if not future.done():
            _settle(future, error)


def _settle(future: Future[bool], result: bool | StorageError) -> None:
    """Resolve `future` unless it was cancelled meanwhile."""
    try:
        if isinstance(result, StorageError):
            future.set_exception(result)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass  # cancelled: nobody waits for the answer
