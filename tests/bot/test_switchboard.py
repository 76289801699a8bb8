"""The routing table: features register (event, action) pairs once at start, the dispatcher looks
a delivery's pair up, and a pair nobody handles is recorded as unhandled."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kevolve.bot.dispatcher import Dispatcher
from kevolve.bot.features import FeatureTable, feature_table, workflows
from kevolve.bot.github import GitHub
from kevolve.bot.service.assembly import build
from kevolve.bot.settings import BotSettings
from kevolve.bot.storage import Storage
from kevolve.bot.switchboard import RouteConflict, Switchboard

from tests.fakes.github import FakeGitHub


def _never(_github: GitHub, _repo: str, _sha: str) -> Any:
    raise AssertionError("no config is read in these tests")


def test_an_action_takes_its_own_handler_and_none_takes_any_other_action() -> None:
    table: Switchboard[str] = Switchboard()
    table.add("issue_comment", "created", "comments")
    table.add("push", None, "push")
    assert table.lookup("issue_comment", "created") == "comments"
    assert table.lookup("issue_comment", "edited") is None
    assert table.lookup("push", None) == "push"
    assert table.lookup("push", "anything") == "push"
    assert table.lookup("release", "published") is None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("push", None), ("push", None)),
        (("pull_request", "closed"), ("pull_request", "closed")),
        (("pull_request", None), ("pull_request", "closed")),
        (("pull_request", "closed"), ("pull_request", None)),
    ],
)
def test_a_pair_registered_twice_is_an_error_naming_it(
    first: tuple[str, str | None], second: tuple[str, str | None]
) -> None:
    table: Switchboard[str] = Switchboard()
    table.add(*first, "one")
    with pytest.raises(RouteConflict, match=repr(second[0])) as raised:
        table.add(*second, "two")
    assert "register the pair in one feature only" in str(raised.value)
    assert table.lookup(*first) == "one"  # the first registration stands


def test_distinct_actions_of_one_event_each_keep_their_handler() -> None:
    table: Switchboard[str] = Switchboard()
    table.add("pull_request", "closed", "closed")
    table.add("pull_request", "opened", "opened")
    assert table.lookup("pull_request", "opened") == "opened"
    assert table.lookup("pull_request", "closed") == "closed"


def test_the_features_register_each_pair_they_handle() -> None:
    table = feature_table(_never)
    assert set(table.pairs()) == {
        ("issue_comment", "created"),
        ("push", None),
        ("pull_request", "closed"),
        ("workflow_job", None),
        ("workflow_run", None),
    }


def test_a_feature_registering_a_taken_pair_fails_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def greedy(table: FeatureTable) -> None:
        table.add("push", None, lambda _ctx, _delivery: None)

    monkeypatch.setattr(workflows, "register", greedy)
    with pytest.raises(RouteConflict, match="'push'"):
        feature_table(_never)


def test_an_action_nobody_handles_is_recorded_as_unhandled(storage: Storage) -> None:
    seen: list[str] = []
    table: Switchboard[Any] = Switchboard()
    table.add("pull_request", "closed", lambda d: seen.append(d.delivery_id))
    storage.record_delivery("closed", "pull_request", "closed", {"action": "closed"})
    storage.record_delivery("opened", "pull_request", "opened", {"action": "opened"})
    storage.record_delivery("starred", "star", "created", {"action": "created"})
    dispatcher = Dispatcher(storage, table, poll_seconds=0.05)
    dispatcher.start()
    try:
        assert dispatcher.drain(30)
    finally:
        dispatcher.stop()
    assert seen == ["closed"]
    outcomes = {key: _outcome(storage, key) for key in ("closed", "opened", "starred")}
    assert outcomes == {
        "closed": ("done", None),
        "opened": ("done", "unhandled: pull_request.opened"),
        "starred": ("done", "unhandled: star.created"),
    }


def test_the_table_and_each_installations_context_are_built_once_across_deliveries(
    monkeypatch: pytest.MonkeyPatch, settings: BotSettings, storage: Storage
) -> None:
    registered: list[FeatureTable] = []
    original = workflows.register

    def counted(table: FeatureTable) -> None:
        registered.append(table)
        original(table)

    monkeypatch.setattr(workflows, "register", counted)
    clients: list[int | None] = []

    def client_for(installation_id: int | None) -> GitHub:
        clients.append(installation_id)
        return FakeGitHub()

    for n in range(4):
        installation = {"id": 1 + n % 2}
        run = {"id": 100 + n, "display_title": "other", "status": "queued"}
        payload = {"action": "requested", "installation": installation, "workflow_run": run}
        storage.record_delivery(f"run-{n}", "workflow_run", "requested", payload)
    no_runner: Any = object()  # no job is queued: the runner is never asked
    quiet = replace(settings, fleet_poll_s=0)
    app, _worker = build(quiet, client_for=client_for, runner=no_runner, storage=storage)
    with TestClient(app):
        assert app.state.dispatcher.drain(30)
    assert len(registered) == 1
    assert sorted(clients) == [1, 2]  # one context per installation, kept
    assert all(_outcome(storage, f"run-{n}") == ("done", None) for n in range(4))


def _outcome(storage: Storage, key: str) -> tuple[str, str | None]:
    stored = storage.delivery(key)
    assert stored is not None
    return stored.status, stored.error
