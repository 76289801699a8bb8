"""The dispatcher: a background thread that hands stored deliveries to their handlers, in order."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from bot.background import PollingThread
from bot.storage import Delivery, Outcome, Storage

log = logging.getLogger(__name__)

Handler = Callable[[Delivery], None]

_BATCH = 50
# Outcomes are written together, one transaction per batch, but never later than this after the
# oldest unwritten one: a crash then repeats at most this much handling (handlers are
# at-least-once anyway), and a slow handler, one that acted on GitHub, is recorded at once.
_MARK_WITHIN_S = 0.1


class Dispatcher:
    """Processes pending deliveries oldest first; survives handler errors and restarts."""

    def __init__(
        self, storage: Storage, handlers: Mapping[str, Handler], *, poll_seconds: float = 5.0
    ) -> None:
        self._storage = storage
        self._handlers = dict(handlers)
        self._thread = PollingThread("kevolve-dispatcher", self._process_pending, poll_seconds)
        self._stop = self._thread.stopping

    def start(self) -> None:
        """Start the thread; it first processes whatever was left pending (e.g. before a kill)."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to finish its current delivery and wait for it."""
        self._thread.stop(timeout)

    def wake(self) -> None:
        """Process pending deliveries now instead of at the next poll."""
        self._thread.wake()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is pending; whether that happened within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        self.wake()
        while self._storage.pending_deliveries(1):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _process_pending(self) -> None:
        """Process pending deliveries in batches until none is left or the thread must stop."""
        while not self._stop.is_set():
            batch = self._storage.pending_deliveries(_BATCH)
            if not batch:
                return
            outcomes: list[Outcome] = []
            oldest = time.monotonic()
            for delivery in batch:
                if self._stop.is_set():
                    break
                outcomes.append(self._process(delivery))
                if time.monotonic() - oldest > _MARK_WITHIN_S:
                    self._storage.mark_deliveries(outcomes)
                    outcomes, oldest = [], time.monotonic()
            self._storage.mark_deliveries(outcomes)

    def _process(self, delivery: Delivery) -> Outcome:
        """Run the delivery's handler; its outcome, done or failed."""
        handler = self._handlers.get(delivery.event)
        try:
            if handler is not None:
                handler(delivery)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.exception(
                "delivery %s (%s) failed: %s", delivery.delivery_id, delivery.event, error
            )
            return Outcome(delivery.delivery_id, "failed", error)
        return Outcome(delivery.delivery_id, "done")
