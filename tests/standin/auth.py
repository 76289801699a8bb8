"""Who is calling: app JWTs, installation tokens and git's basic auth, as GitHub checks them."""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta

import jwt

from tests.standin.state import App, GitHubState, Installation, Token, now

TOKEN_LIFETIME = timedelta(hours=1)
GIT_USER = "x-access-token"


def bearer(header: str | None) -> str | None:
    """Return the credential of an `Authorization: Bearer|token <credential>` header."""
    if not header:
        return None
    scheme, _, credential = header.partition(" ")
    if scheme.lower() not in ("bearer", "token"):
        return None
    return credential.strip() or None


def app_for_jwt(state: GitHubState, token: str | None) -> App | None:
    """Return the app whose key signed this unexpired RS256 JWT, or None."""
    if token is None:
        return None
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        app = state.apps.get(int(claims["iss"]))
        if app is None:
            return None
        jwt.decode(
            token, app.public_key_pem, algorithms=["RS256"], options={"require": ["exp", "iat"]}
        )
    except (jwt.PyJWTError, KeyError, ValueError, TypeError):
        return None
    return app


def issue_token(
    state: GitHubState,
    installation: Installation,
    permissions: dict[str, str] | None = None,
    repository_ids: frozenset[int] | None = None,
) -> Token:
    """Create and remember a fresh installation access token: for the app's permissions and
    every repo of the installation unless narrowed."""
    value = "ghs_" + secrets.token_urlsafe(27)
    granted = state.apps[installation.app_id].permissions if permissions is None else permissions
    token = Token(value, installation.id, now() + TOKEN_LIFETIME, dict(granted), repository_ids)
    with state.lock:
        state.tokens[value] = token
    return token


def live_token(state: GitHubState, value: str | None) -> Token | None:
    """Return an unexpired installation token, or None."""
    token = state.tokens.get(value or "")
    if token is None or token.expires_at <= now():
        return None
    return token


def installation_for_token(state: GitHubState, value: str | None) -> Installation | None:
    """Return the installation of an unexpired installation token, or None."""
    token = live_token(state, value)
    return None if token is None else state.installations.get(token.installation_id)


def basic_password(header: str | None) -> str | None:
    """Return the password of `Authorization: Basic` for user `x-access-token`, or None."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    user, _, password = decoded.partition(":")
    return password if user == GIT_USER else None
