"""JSON bodies for accounts, apps, tokens and errors, shaped as GitHub's REST API sends them."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tests.standin.state import App, Token, User

DOCS = "https://docs.github.com/rest"
_USER_LINKS = [
    "events_url",
    "followers_url",
    "following_url",
    "gists_url",
    "organizations_url",
    "received_events_url",
    "repos_url",
    "starred_url",
    "subscriptions_url",
]


@dataclass(frozen=True)
class Urls:
    """Where the stand-in serves the API (`api`, like `https://api.github.com`) and web pages."""

    api: str
    web: str


def stamp(moment: datetime | None) -> str | None:
    """Return an ISO 8601 UTC timestamp such as `2024-01-02T03:04:05Z`, or None."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def node_id(kind: str, ident: int) -> str:
    """Return an opaque GraphQL node id for an object."""
    return base64.b64encode(f"{kind}:{ident}".encode()).decode()


def links(base: str, names: list[str]) -> dict[str, str]:
    """Return `{name: base/stem}` for URL fields named like `events_url`."""
    return {name: f"{base}/{name.removesuffix('_url')}" for name in names}


def user(urls: Urls, account: User) -> dict[str, Any]:
    """Return a `simple-user`."""
    api = f"{urls.api}/users/{account.login}"
    return {
        "login": account.login,
        "id": account.id,
        "node_id": node_id("User", account.id),
        "avatar_url": f"{urls.web}/avatars/{account.login}",
        "gravatar_id": "",
        "url": api,
        "html_url": f"{urls.web}/{account.login}",
        "type": account.type,
        "site_admin": False,
        **links(api, _USER_LINKS),
    }


def app(urls: Urls, integration: App) -> dict[str, Any]:
    """Return an `integration` (a GitHub App)."""
    return {
        "id": integration.id,
        "slug": integration.slug,
        "node_id": node_id("App", integration.id),
        "client_id": f"Iv1.{integration.id:016x}",
        "owner": user(urls, integration.owner),
        "name": integration.name,
        "description": None,
        "external_url": f"{urls.web}/apps/{integration.slug}",
        "html_url": f"{urls.web}/apps/{integration.slug}",
        "created_at": stamp(integration.created_at),
        "updated_at": stamp(integration.created_at),
        "permissions": dict(integration.permissions),
        "events": list(integration.events),
    }


def installation_token(token: Token, permissions: dict[str, str]) -> dict[str, Any]:
    """Return an `installation-token`."""
    return {
        "token": token.value,
        "expires_at": stamp(token.expires_at),
        "permissions": dict(permissions),
        "repository_selection": "all",
    }


def error(message: str, status: int) -> dict[str, Any]:
    """Return a `basic-error`."""
    return {"message": message, "documentation_url": DOCS, "status": str(status)}
