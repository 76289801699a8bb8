"""The switchboard: which handler takes a delivery, by its (event, action) pair.

Features register the pairs they handle once, at start; an action of None takes any action of
its event. A pair registered twice, or an event given both an any-action handler and one for a
named action, is an error at start, not a question of which handler wins later.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

H = TypeVar("H")
K = TypeVar("K")

Pair = tuple[str, str | None]  # (event, action); action None: any action of the event


class RouteConflict(ValueError):
    """Two handlers claimed one delivery's (event, action) pair."""


class Switchboard(Generic[H]):
    """A table of handlers keyed by (event, action), filled once and then only read."""

    def __init__(self) -> None:
        self._routes: dict[Pair, H] = {}

    @classmethod
    def by_event(cls, handlers: Mapping[str, H]) -> Switchboard[H]:
        """A table with each event's handler taking any of its actions."""
        table: Switchboard[H] = cls()
        for event, handler in handlers.items():
            table.add(event, None, handler)
        return table

    def add(self, event: str, action: str | None, handler: H) -> None:
        """Register `handler` for `event` with `action` (None: any action)."""
        taken = [pair for pair in self._routes if _overlaps(pair, (event, action))]
        if taken:
            raise RouteConflict(
                f"({event!r}, {action!r}) is already routed as {taken[0]!r}: each delivery "
                "must have one handler. Fix: register the pair in one feature only"
            )
        self._routes[(event, action)] = handler

    def lookup(self, event: str, action: str | None) -> H | None:
        """The handler of a delivery with `event` and `action`; None when nobody handles it."""
        found = self._routes.get((event, action))
        return found if found is not None else self._routes.get((event, None))

    def pairs(self) -> list[Pair]:
        """The registered (event, action) pairs, in registration order."""
        return list(self._routes)

    def bound(self, wrap: Callable[[H], K]) -> Switchboard[K]:
        """The same pairs, each handler passed through `wrap` (once, here, not per delivery)."""
        table: Switchboard[K] = Switchboard()
        for (event, action), handler in self._routes.items():
            table.add(event, action, wrap(handler))
        return table


def _overlaps(first: Pair, second: Pair) -> bool:
    """Whether one delivery could match both pairs."""
    if first[0] != second[0]:
        return False
    return first[1] is None or second[1] is None or first[1] == second[1]
