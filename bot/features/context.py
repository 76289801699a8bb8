"""What every feature handler is given: the GitHub client, storage, messages and settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kevolve.bot.github import GitHub
from kevolve.bot.messages import Messages
from kevolve.bot.pull_store import PullStore
from kevolve.bot.quotas import QuotaLimits, Quotas
from kevolve.bot.storage import Storage

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


def installation_of(payload: Mapping[str, Any]) -> int | None:
    """The app installation a delivery came through; jobs act with its token later."""
    installation = payload.get("installation") or {}
    return int(installation["id"]) if installation.get("id") else None
