"""`POST /app-manifests/{code}/conversions`: the App a manifest flow registered, handed over once
for its code, with its private key and webhook secret (GitHub takes no credential here)."""

from __future__ import annotations

from tests.standin import users_json
from tests.standin.routing import Call, Caller, HttpError, Reply, Route
from tests.standin.state import now


def convert(call: Call) -> Reply:
    """The App of a fresh, unused code: `integration` plus client id and secret, webhook secret
    and PEM private key; 404 for an unknown, used or expired code (as GitHub answers)."""
    with call.state.lock:
        handed = call.state.manifest_codes.pop(call.params["code"], None)
    if handed is None or handed.expires_at <= now():
        raise HttpError(404, "Not Found")
    app = call.state.apps[handed.app_id]
    body = users_json.app(call.urls, app)
    body.update(
        client_secret=handed.client_secret,
        webhook_secret=app.webhook_secret,
        pem=handed.pem,
    )
    return Reply(201, body)


ROUTES = [Route("POST", "/app-manifests/{code}/conversions", Caller.NONE, convert)]
