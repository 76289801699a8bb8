"""Organization endpoints: the organization's self-hosted runners."""

from __future__ import annotations

from tests.standin import repos_json
from tests.standin.routing import Call, Caller, HttpError, Reply, Route

PERMISSION = "organization_self_hosted_runners"


def list_org_runners(call: Call) -> Reply:
    """GET /orgs/{org}/actions/runners: 404 unless the caller is installed on that organization,
    403 unless the app holds the organization_self_hosted_runners permission (as on GitHub)."""
    org = call.params["org"]
    installation = call.installation
    account = installation.account if installation is not None else None
    if account is None or account.login != org or account.type != "Organization":
        raise HttpError(404, "Not Found")
    if call.app is None or call.app.permissions.get(PERMISSION) not in ("read", "write"):
        raise HttpError(403, "Resource not accessible by integration")
    return Reply(200, repos_json.runner_list(call.state.org_runners.get(org, [])))


ROUTES = [Route("GET", "/orgs/{org}/actions/runners", Caller.INSTALLATION, list_org_runners)]
