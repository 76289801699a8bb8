"""The stand-in's App manifest flow: its checks on a manifest, its redirect, a code's one use."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.standin.server import StandIn

MANIFEST = {
    "name": "kevolve-test",
    "url": "https://k.example",
    "hook_attributes": {"url": "https://k.example/webhook"},
    "redirect_url": "http://127.0.0.1:9/created",
    "default_permissions": {"contents": "write"},
    "default_events": ["push"],
}


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[StandIn]:
    server = StandIn(tmp_path).start()
    try:
        yield server
        server.assert_clean()
    finally:
        server.stop()


def create(
    standin: StandIn, manifest: dict[str, Any], path: str = "/settings/apps/new"
) -> httpx.Response:
    """Press "Create GitHub App" for `manifest`: the stand-in's answer, not followed."""
    form = {"manifest": json.dumps(manifest), "name": str(manifest.get("name", ""))}
    return httpx.post(f"{standin.urls.web}{path}/create?state=s-1", data=form)


def test_a_code_hands_over_the_new_app_once(standin: StandIn) -> None:
    created = create(standin, MANIFEST)
    assert created.status_code == 302
    location = urlsplit(created.headers["Location"])
    assert location.path == "/created" and parse_qs(location.query)["state"] == ["s-1"]
    code = parse_qs(location.query)["code"][0]
    url = f"{standin.urls.api}/app-manifests/{code}/conversions"
    first = httpx.post(url)
    assert first.status_code == 201
    body = first.json()
    assert body["slug"] == "kevolve-test" and body["pem"].startswith("-----BEGIN RSA PRIVATE")
    assert body["permissions"] == {"metadata": "read", "contents": "write"}
    assert body["webhook_secret"] == standin.state.apps[body["id"]].webhook_secret
    assert httpx.post(url).status_code == 404  # used


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"default_permissions": {"contents": "admin"}}, "Permission &#x27;contents&#x27; has no"),
        ({"default_permissions": {"kernels": "read"}}, "Unknown permission &#x27;kernels&#x27;"),
        ({"hook_attributes": {"url": "ftp://k.example"}}, "hook_attributes.url must be a full"),
        ({"callback_url": "https://k.example"}, "Unknown manifest keys: callback_url"),
        ({"name": "x" * 35}, "Name must have 1 to 34 characters"),
    ],
)
def test_githubs_page_refuses_a_bad_manifest(
    standin: StandIn, change: dict[str, Any], said: str
) -> None:
    refused = create(standin, {**MANIFEST, **change})
    assert refused.status_code == 422 and said in refused.text
    assert standin.state.apps == {}


def test_an_app_for_an_unknown_organization_is_not_found(standin: StandIn) -> None:
    assert create(standin, MANIFEST, "/organizations/nobody/settings/apps/new").status_code == 404
    assert create(standin, MANIFEST).status_code == 302
    assert "already in use" in create(standin, MANIFEST).text  # names are unique
