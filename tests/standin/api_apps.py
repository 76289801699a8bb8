"""App endpoints: the authenticated app and installation access tokens."""

from __future__ import annotations

from tests.standin import auth, users_json
from tests.standin.routing import Call, Caller, HttpError, Reply, Route


def get_app(call: Call) -> Reply:
    """GET /app: the app whose JWT signed the request."""
    assert call.app is not None
    return Reply(200, users_json.app(call.urls, call.app))


def create_token(call: Call) -> Reply:
    """POST /app/installations/{installation_id}/access_tokens: a fresh installation token."""
    assert call.app is not None
    installation = call.state.installations.get(call.number("installation_id"))
    if installation is None or installation.app_id != call.app.id:
        raise HttpError(404, "Not Found")
    token = auth.issue_token(call.state, installation)
    return Reply(201, users_json.installation_token(token, call.app.permissions))


ROUTES = [
    Route("GET", "/app", Caller.APP, get_app),
    Route("POST", "/app/installations/{installation_id}/access_tokens", Caller.APP, create_token),
]
