"""kevolve's App manifest: the permissions and events the bot's calls need, and GitHub's page."""

from __future__ import annotations

import json

from kevolve.bot.app_manifest import EVENTS, PERMISSIONS, AppManifest, creation_url

from tests.standin.fixtures import APP_EVENTS, APP_PERMISSIONS


def test_the_manifest_asks_for_what_the_bot_is_tested_with_and_says_why() -> None:
    # The App of every other stand-in test: what bot.github's calls are known to work with.
    for name, level in APP_PERMISSIONS.items():
        assert PERMISSIONS[name][0] == level, name
    assert list(EVENTS) == APP_EVENTS
    # Beyond those: metadata (every App has it) and the repo runners' `administration: read`.
    assert set(PERMISSIONS) - set(APP_PERMISSIONS) == {"metadata", "administration"}
    assert {PERMISSIONS["metadata"][0], PERMISSIONS["administration"][0]} == {"read"}
    assert all(why for _, why in PERMISSIONS.values()) and all(EVENTS.values())


def test_the_manifest_is_the_json_githubs_page_takes() -> None:
    manifest = AppManifest(
        "kevolve", "https://k.example", "https://k.example/webhook", "http://127.0.0.1:8765/created"
    )
    assert json.loads(manifest.to_json()) == {
        "name": "kevolve",
        "url": "https://k.example",
        "description": "Keeps a repository's GPU kernels fast: evolutionary kernel search on GPU "
        "runners.",
        "hook_attributes": {"url": "https://k.example/webhook", "active": True},
        "redirect_url": "http://127.0.0.1:8765/created",
        "public": False,
        "default_permissions": {
            "contents": "write",
            "pull_requests": "write",
            "issues": "write",
            "checks": "write",
            "actions": "write",
            "metadata": "read",
            "administration": "read",
            "organization_self_hosted_runners": "read",
        },
        "default_events": ["push", "issue_comment", "pull_request", "workflow_job", "workflow_run"],
    }


def test_githubs_page_for_a_person_or_an_organization_carries_the_state() -> None:
    assert creation_url("https://github.com/", None, "s-1") == (
        "https://github.com/settings/apps/new?state=s-1"
    )
    assert creation_url("https://ghe.example", "acme", "s 2") == (
        "https://ghe.example/organizations/acme/settings/apps/new?state=s%202"
    )
