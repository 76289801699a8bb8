"""The vendored GitHub descriptions cover the stand-in, and the cut keeps what validation needs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.standin.excerpt import (
    EVENTS,
    EXTRA_PATHS,
    path_shape,
    trimmed_description,
    trimmed_examples,
)
from tests.standin.payloads import EXAMPLES
from tests.standin.server import ROUTES
from tests.standin.spec import DESCRIPTION

RECUT = "re-cut the vendored files: .venv/bin/python -m tests.standin.excerpt"


def test_every_route_of_the_stand_in_is_described() -> None:
    described = json.loads(DESCRIPTION.read_text())["paths"]
    operations = {(m, path_shape(p)) for p, item in described.items() for m in item}
    missing = [
        f"{route.method} {route.template}"
        for route in ROUTES
        if (route.method.lower(), path_shape(route.template)) not in operations
    ]
    missing += [p for p in EXTRA_PATHS if path_shape(p) not in {path_shape(d) for d in described}]
    assert not missing, f"not in {DESCRIPTION}: {missing}; {RECUT}"


def test_every_event_kept_has_examples() -> None:
    kept = {event["name"]: event["examples"] for event in json.loads(EXAMPLES.read_text())}
    assert sorted(kept) == sorted(EVENTS), RECUT
    assert all(kept[name] for name in EVENTS)


SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "t", "version": "1"},
    "servers": [{"url": "https://api.github.com"}],
    "paths": {
        "/repos/{owner}/{repo}": {
            "get": {
                "responses": {
                    "200": {
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/repo"},
                                "examples": {"x": {"$ref": "#/components/examples/repo"}},
                            }
                        }
                    }
                }
            }
        },
        "/gists": {"get": {"responses": {"200": {"$ref": "#/components/responses/gists"}}}},
    },
    "components": {
        "schemas": {
            "repo": {
                "type": "object",
                "properties": {
                    "example": {"type": "string", "example": "dropped"},
                    "owner": {"$ref": "#/components/schemas/user"},
                },
            },
            "user": {"type": "object", "properties": {"login": {"type": "string"}}},
            "basic-error": {"type": "object"},
            "gist": {"type": "object"},
        },
        "examples": {"repo": {"value": {}}},
        "responses": {"gists": {"description": "x"}},
    },
}


def test_the_cut_keeps_the_paths_asked_for_and_the_components_they_reach() -> None:
    cut = trimmed_description(SPEC, ["/repos/{owner}/{repo}"])
    assert list(cut["paths"]) == ["/repos/{owner}/{repo}"]
    assert sorted(cut["components"]) == ["schemas"]
    assert sorted(cut["components"]["schemas"]) == ["basic-error", "repo", "user"]
    media = cut["paths"]["/repos/{owner}/{repo}"]["get"]["responses"]["200"]["content"]
    assert "examples" not in media["application/json"]
    # A property named `example` is part of the schema; an `example` keyword is not.
    assert cut["components"]["schemas"]["repo"]["properties"]["example"] == {"type": "string"}


def test_the_cut_names_a_path_github_does_not_describe() -> None:
    with pytest.raises(SystemExit, match=r"/repos/\{\}/\{\}/nothing"):
        trimmed_description(SPEC, ["/repos/{owner}/{repo}/nothing"])


def test_the_examples_cut_keeps_only_the_events_and_actions_asked_for() -> None:
    index = [
        {"name": "push", "examples": [{"ref": "a"}], "properties": {}},
        {"name": "pull_request", "examples": [{"action": "closed"}, {"action": "labeled"}]},
        {"name": "star", "examples": [{"action": "created"}]},
    ]
    assert trimmed_examples(index) == [
        {"name": "push", "examples": [{"ref": "a"}]},
        {"name": "pull_request", "examples": [{"action": "closed"}]},
    ]
