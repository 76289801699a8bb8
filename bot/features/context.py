"""What every feature handler is given: the GitHub client, storage, messages and settings."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kevolve.bot.github import GitHub
from kevolve.bot.messages import Messages
from kevolve.bot.pull_store import PullStore
from kevolve.bot.quotas import QuotaLimits, Quotas
from kevolve.bot.storage import Delivery, Storage
from kevolve.bot.switchboard import Switchboard

DEFAULT_BUDGET = 200  # candidates a search may evaluate when nobody said otherwise


@dataclass(frozen=True)
class FeatureContext:
    """Built once at the entry point and passed to each handler; no globals."""

    github: GitHub
    storage: Storage
    messages: Messages
    bot_login: str  # the app's own login, e.g. "kevolve[bot]"
    hardware: tuple[str, ...]  # configured hardware labels, one job each
    budget: int = DEFAULT_BUDGET
    limits: QuotaLimits = field(default_factory=QuotaLimits)

    def quotas(self) -> Quotas:
        """The quotas on jobs and refusal answers, kept in the jobs' database."""
        return Quotas(self.storage.engine, self.storage.now, self.limits)

    def pulls(self) -> PullStore:
        """The closed kevolve pull requests, kept in the jobs' database."""
        return PullStore(self.storage.engine)


FeatureHandler = Callable[["FeatureContext", Delivery], None]
FeatureTable = Switchboard[FeatureHandler]  # each feature's handlers by (event, action)


class FeatureContexts:
    """One `FeatureContext` per app installation, made on first use and kept: the same
    storage, messages and settings, with that installation's GitHub client."""

    def __init__(
        self,
        make: Callable[[GitHub], FeatureContext],
        client_for: Callable[[int | None], GitHub],
    ) -> None:
        self._make = make
        self._client_for = client_for
        self._made: dict[int | None, FeatureContext] = {}
        self._lock = threading.Lock()

    def __call__(self, installation_id: int | None) -> FeatureContext:
        with self._lock:
            if installation_id not in self._made:
                self._made[installation_id] = self._make(self._client_for(installation_id))
            return self._made[installation_id]


def installation_of(payload: Mapping[str, Any]) -> int | None:
    """The app installation a delivery came through; jobs act with its token later."""
    installation = payload.get("installation") or {}
    return int(installation["id"]) if installation.get("id") else None
