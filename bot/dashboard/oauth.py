"""GitHub's OAuth web flow for the App's users, and what their tokens may read.

The App's own client id and secret; GitHub's web address (for the sign-in page and the code
exchange) and API address are settings, so a GitHub Enterprise server or a stand-in works alike.
A user's token never leaves the server: it is asked of GitHub once per repo and a few minutes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import httpx

API_VERSION = "2022-11-28"
TIMEOUT_S = 15.0
REPO = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")


class OAuthError(Exception):
    """GitHub refused or could not be asked; the message says which, without the token."""


@dataclass(frozen=True)
class OAuthApp:
    """The App's OAuth client and where GitHub is."""

    client_id: str
    client_secret: str = field(repr=False)
    web_url: str  # e.g. https://github.com
    api_url: str  # e.g. https://api.github.com


def authorize_url(app: OAuthApp, redirect_uri: str, state: str) -> str:
    """GitHub's page that asks the person to sign in and lets the App know who they are."""
    query = urlencode(
        {"client_id": app.client_id, "redirect_uri": redirect_uri, "state": state},
        quote_via=quote,
    )
    return f"{app.web_url.rstrip('/')}/login/oauth/authorize?{query}"


def exchange(app: OAuthApp, code: str, redirect_uri: str) -> str:
    """The user's access token for the code GitHub sent the browser back with."""
    form = {
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "code": code,
        "redirect_uri": redirect_uri,
    }
    url = f"{app.web_url.rstrip('/')}/login/oauth/access_token"
    try:
        accept = {"Accept": "application/json"}
        answer = httpx.post(url, data=form, headers=accept, timeout=TIMEOUT_S)
        body = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise OAuthError(
            f"cannot reach GitHub at {app.web_url} to sign in: {type(exc).__name__}"
        ) from None
    token = body.get("access_token") if isinstance(body, dict) else None
    if answer.status_code != 200 or not isinstance(token, str) or not token:
        why = body.get("error_description") or body.get("error") if isinstance(body, dict) else ""
        raise OAuthError(f"GitHub did not sign you in: {str(why or answer.status_code)[:200]}")
    return token


def login_of(app: OAuthApp, token: str) -> str:
    """The login of the person the token belongs to."""
    answer = _get(app, token, "/user")
    login = answer.json().get("login") if answer.status_code == 200 else None
    if not isinstance(login, str):
        raise OAuthError(f"GitHub did not say who signed in (HTTP {answer.status_code})")
    return login


def can_read(app: OAuthApp, token: str, repo: str) -> bool:
    """Whether the token's user may read `repo` (and the App is installed on it)."""
    if not REPO.fullmatch(repo):
        return False
    return _get(app, token, f"/repos/{repo}").status_code == 200


def _get(app: OAuthApp, token: str, path: str) -> httpx.Response:
    """One API GET as the user; OAuthError when GitHub cannot be reached."""
    headers = {
        "Accept": "application/vnd.github+json",
        "Authorization": f"Bearer {token}",
        "X-GitHub-Api-Version": API_VERSION,
    }
    try:
        return httpx.get(f"{app.api_url.rstrip('/')}{path}", headers=headers, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise OAuthError(
            f"cannot reach GitHub's API at {app.api_url}: {type(exc).__name__}"
        ) from None
