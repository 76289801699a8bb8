"""The dispatcher: a background thread that hands stored deliveries to their handlers.

Installations take turns (a few deliveries of each per batch, oldest first), so one tenant's flood
never holds another's delivery behind it. A delivery whose handler raised is tried again after
each of the retry delays, then marked failed with the reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

from kevolve.bot.background import PollingThread
from kevolve.bot.storage import Delivery, Outcome, Storage
from kevolve.bot.switchboard import Switchboard

log = logging.getLogger(__name__)

Handler = Callable[[Delivery], None]
# The handlers by (event, action), or by event alone for any action.
Routes = Switchboard[Handler] | Mapping[str, Handler]
UNHANDLED = "unhandled"  # the reason kept on a delivery no handler takes

_BATCH = 50
# Outcomes are written together, one transaction per batch, but never later than this after the
# oldest unwritten one: a crash then repeats at most this much handling (handlers are
# at-least-once anyway), and a slow handler, one that acted on GitHub, is recorded at once.
_MARK_WITHIN_S = 0.1
_TURN = 5  # deliveries of one installation per batch: another's waits behind at most this many


class Dispatcher:
    """Processes pending deliveries oldest first; survives handler errors and restarts."""

    def __init__(
        self,
        storage: Storage,
        routes: Routes,
        *,
        poll_seconds: float = 5.0,
        retry_s: Sequence[float] = (),
    ) -> None:
        self._storage = storage
        self._routes = routes if isinstance(routes, Switchboard) else Switchboard.by_event(routes)
        self._retry_s = tuple(retry_s)
        self._poll = poll_seconds
        self._thread = PollingThread("kevolve-dispatcher", self._process_pending, poll_seconds)
        self._stop = self._thread.stopping
        self._timer: threading.Timer | None = None

    def start(self) -> None:
        """Start the thread; it first processes whatever was left pending (e.g. before a kill)."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to finish its current delivery and wait for it."""
        if self._timer is not None:
            self._timer.cancel()
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
            batch = self._storage.pending_deliveries(_BATCH, per_installation=_TURN)
            if not batch:
                self._wake_for_retry()
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
        """Run the delivery's handler; its outcome: done, pending a retry, or failed. A delivery
        that no handler takes is done, with why kept beside it."""
        handler = self._routes.lookup(delivery.event, delivery.action)
        if handler is None:
            log.info("delivery %s: %s %s", delivery.delivery_id, UNHANDLED, _pair(delivery))
            return Outcome(delivery.delivery_id, "done", f"{UNHANDLED}: {_pair(delivery)}")
        try:
            handler(delivery)
        except Exception as exc:  # any handler bug: the delivery is retried, then failed
            log.debug("delivery %s raised", delivery.delivery_id, exc_info=True)
            return self._failure(delivery, f"{type(exc).__name__}: {exc}")
        return Outcome(delivery.delivery_id, "done")

    def _failure(self, delivery: Delivery, error: str) -> Outcome:
        """A failed try: pending again after the next retry delay, or failed for good."""
        key, tries = delivery.delivery_id, delivery.attempts + 1
        if delivery.attempts < len(self._retry_s):
            delay = self._retry_s[delivery.attempts]
            log.warning(
                "delivery %s (%s) failed on try %d, retrying in %g s: %s",
                *(key, delivery.event, tries, delay, error),
                exc_info=True,
            )
            retry_at = self._storage.now() + timedelta(seconds=delay)
            return Outcome(key, "pending", error, retry_at)
        log.error(
            "delivery %s (%s) failed after %d tries: %s",
            *(key, delivery.event, tries, error),
            exc_info=True,
        )
        return Outcome(key, "failed", error)

    def _wake_for_retry(self) -> None:
        """Wake when the soonest retry is due, when that is before the next poll."""
        soonest = self._storage.next_retry()
        if soonest is None:
            return
        wait = (soonest - self._storage.now()).total_seconds()
        if wait < self._poll:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(max(wait, 0.0), self.wake)
            self._timer.daemon = True
            self._timer.start()


def _pair(delivery: Delivery) -> str:
    """A delivery's event and action as a log line names them."""
    return f"{delivery.event}.{delivery.action}" if delivery.action else delivery.event
