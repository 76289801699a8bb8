"""Repository endpoints: the repo, a collaborator's permission, branches, commits, runners."""

from __future__ import annotations

from tests.standin import gitrepo, repos_json
from tests.standin.routing import Call, Caller, HttpError, Reply, Route


def get_repo(call: Call) -> Reply:
    """GET /repos/{owner}/{repo}."""
    return Reply(200, repos_json.repository(call.urls, call.repo()))


def get_permission(call: Call) -> Reply:
    """GET /repos/{owner}/{repo}/collaborators/{username}/permission."""
    repo = call.repo()
    account = call.state.users.get(call.params["username"])
    if account is None:
        raise HttpError(404, "Not Found")
    return Reply(200, repos_json.permission(call.urls, repo, account))


def get_branch(call: Call) -> Reply:
    """GET /repos/{owner}/{repo}/branches/{branch}, read from the bare repo."""
    repo = call.repo()
    name = call.params["branch"]
    sha = gitrepo.branch_sha(repo.git_dir, name)
    if sha is None:
        raise HttpError(404, "Branch not found")
    info = gitrepo.commit_info(repo.git_dir, sha)
    return Reply(200, repos_json.branch(call.urls, repo, name, info))


def get_commit(call: Call) -> Reply:
    """GET /repos/{owner}/{repo}/commits/{ref}, read from the bare repo."""
    repo = call.repo()
    sha = gitrepo.resolve(repo.git_dir, call.params["ref"])
    if sha is None:
        raise HttpError(404, f"No commit found for SHA: {call.params['ref']}")
    info = gitrepo.commit_info(repo.git_dir, sha)
    return Reply(200, repos_json.commit(call.urls, repo, info))


def list_runners(call: Call) -> Reply:
    """GET /repos/{owner}/{repo}/actions/runners."""
    return Reply(200, repos_json.runners(call.repo()))


_REPO = "/repos/{owner}/{repo}"
ROUTES = [
    Route("GET", _REPO, Caller.INSTALLATION, get_repo),
    Route(
        "GET", _REPO + "/collaborators/{username}/permission", Caller.INSTALLATION, get_permission
    ),
    Route("GET", _REPO + "/branches/{branch+}", Caller.INSTALLATION, get_branch),
    Route("GET", _REPO + "/commits/{ref+}", Caller.INSTALLATION, get_commit),
    Route("GET", _REPO + "/actions/runners", Caller.INSTALLATION, list_runners),
]
