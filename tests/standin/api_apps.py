"""App endpoints: the authenticated app and installation access tokens."""

from __future__ import annotations

from tests.standin import auth, repos_json, users_json
from tests.standin.routing import Call, Caller, HttpError, Reply, Route
from tests.standin.state import LEVELS, Installation, Repo


def get_app(call: Call) -> Reply:
    """GET /app: the app whose JWT signed the request."""
    assert call.app is not None
    return Reply(200, users_json.app(call.urls, call.app))


def create_token(call: Call) -> Reply:
    """POST /app/installations/{installation_id}/access_tokens: a fresh installation token,
    narrowed to the `repositories` (names) or `repository_ids` and `permissions` asked for."""
    assert call.app is not None
    installation = call.state.installations.get(call.number("installation_id"))
    if installation is None or installation.app_id != call.app.id:
        raise HttpError(404, "Not Found")
    repos = _requested_repos(call, installation)
    permissions = _requested_permissions(call, call.app.permissions)
    ids = None if repos is None else frozenset(repo.id for repo in repos)
    token = auth.issue_token(call.state, installation, permissions, ids)
    body = users_json.installation_token(token, permissions)
    if repos is not None:
        body["repository_selection"] = "selected"
        body["repositories"] = [repos_json.repository(call.urls, repo) for repo in repos]
    return Reply(201, body)


def _requested_repos(call: Call, installation: Installation) -> list[Repo] | None:
    """The repos a token is asked for, None for all; 422 for one the installation lacks."""
    names, ids = call.body.get("repositories"), call.body.get("repository_ids")
    if names is None and ids is None:
        return None
    names, ids = set(names or []), set(ids or [])
    owned = [r for r in call.state.repos.values() if r.installation_id == installation.id]
    by_name, by_id = [r for r in owned if r.name in names], [r for r in owned if r.id in ids]
    if len(by_name) != len(names) or len(by_id) != len(ids):
        raise HttpError(
            422,
            "There is at least one repository that does not exist or is not accessible to the "
            "parent installation.",
        )
    return list({repo.id: repo for repo in by_name + by_id}.values())


def _requested_permissions(call: Call, granted: dict[str, str]) -> dict[str, str]:
    """The permissions a token is asked for (the app's when none); 422 beyond the app's."""
    asked = call.body.get("permissions") or dict(granted)
    for name, level in asked.items():
        if level not in LEVELS or LEVELS.index(level) > LEVELS.index(granted.get(name, "none")):
            raise HttpError(422, "The permissions requested are not granted to this installation.")
    return dict(asked)


ROUTES = [
    Route("GET", "/app", Caller.APP, get_app),
    Route("POST", "/app/installations/{installation_id}/access_tokens", Caller.APP, create_token),
]
