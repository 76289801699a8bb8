"""JSON bodies for repositories, permissions, branches, commits and runners."""

from __future__ import annotations

from typing import Any

from tests.standin.gitrepo import CommitInfo
from tests.standin.state import Repo, Runner, User
from tests.standin.users_json import Urls, links, node_id, stamp, user

# The `*_url` fields every repository object carries; each points below the repo's API URL.
_REPO_LINKS = [
    "archive_url",
    "assignees_url",
    "blobs_url",
    "branches_url",
    "collaborators_url",
    "comments_url",
    "commits_url",
    "compare_url",
    "contents_url",
    "contributors_url",
    "deployments_url",
    "downloads_url",
    "events_url",
    "forks_url",
    "git_commits_url",
    "git_refs_url",
    "git_tags_url",
    "hooks_url",
    "issue_comment_url",
    "issue_events_url",
    "issues_url",
    "keys_url",
    "labels_url",
    "languages_url",
    "merges_url",
    "milestones_url",
    "notifications_url",
    "pulls_url",
    "releases_url",
    "stargazers_url",
    "statuses_url",
    "subscribers_url",
    "subscription_url",
    "tags_url",
    "teams_url",
    "trees_url",
]
_FLAGS = {
    "fork": False,
    "has_issues": True,
    "has_projects": False,
    "has_wiki": False,
    "has_pages": False,
    "has_downloads": True,
    "has_discussions": False,
    "archived": False,
    "disabled": False,
}
_COUNTS = [
    "forks",
    "forks_count",
    "open_issues",
    "open_issues_count",
    "size",
    "stargazers_count",
    "watchers",
    "watchers_count",
    "network_count",
    "subscribers_count",
]
# Legacy `permission` values: GitHub reports maintain as write and triage as read.
_LEGACY = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
}
_RANKS = ["read", "triage", "write", "maintain", "admin"]


def repo_api(urls: Urls, repo: Repo) -> str:
    """Return the API URL of a repo."""
    return f"{urls.api}/repos/{repo.full_name}"


def repository(urls: Urls, repo: Repo) -> dict[str, Any]:
    """Return a repo as both `full-repository` and `repository` require it."""
    api = repo_api(urls, repo)
    web = f"{urls.web}/{repo.full_name}"
    return {
        "id": repo.id,
        "node_id": node_id("Repository", repo.id),
        "name": repo.name,
        "full_name": repo.full_name,
        "owner": user(urls, repo.owner),
        "private": repo.private,
        "visibility": "private" if repo.private else "public",
        "html_url": web,
        "description": None,
        "url": api,
        "clone_url": f"{web}.git",
        "git_url": f"{web}.git",
        "ssh_url": f"git@127.0.0.1:{repo.full_name}.git",
        "svn_url": web,
        "mirror_url": None,
        "homepage": None,
        "language": "Python",
        "license": None,
        "default_branch": repo.default_branch,
        "created_at": stamp(repo.created_at),
        "updated_at": stamp(repo.created_at),
        "pushed_at": stamp(repo.created_at),
        **_FLAGS,
        **dict.fromkeys(_COUNTS, 0),
        **links(api, _REPO_LINKS),
    }


def permission(urls: Urls, repo: Repo, account: User) -> dict[str, Any]:
    """Return a `repository-collaborator-permission` for `account` on `repo`."""
    role = repo.roles.get(account.login, "read" if not repo.private else "none")
    return {
        "permission": _LEGACY.get(role, "none"),
        "role_name": role,
        "user": {**user(urls, account), "role_name": role, "permissions": _grants(role)},
    }


def _grants(role: str) -> dict[str, bool]:
    """Return the pull/triage/push/maintain/admin booleans a role grants."""
    rank = _RANKS.index(role) if role in _RANKS else -1
    names = ["pull", "triage", "push", "maintain", "admin"]
    return {name: rank >= i for i, name in enumerate(names)}


def commit(urls: Urls, repo: Repo, info: CommitInfo) -> dict[str, Any]:
    """Return a `commit` as read from the bare repo."""
    api = f"{repo_api(urls, repo)}/commits/{info.sha}"
    return {
        "url": api,
        "sha": info.sha,
        "node_id": node_id("Commit", int(info.sha[:12], 16)),
        "html_url": f"{urls.web}/{repo.full_name}/commit/{info.sha}",
        "comments_url": f"{api}/comments",
        "commit": {
            "url": f"{repo_api(urls, repo)}/git/commits/{info.sha}",
            "author": _git_user(info.author_name, info.author_email, info.author_date),
            "committer": _git_user(info.committer_name, info.committer_email, info.committer_date),
            "message": info.message,
            "comment_count": 0,
            "tree": {"sha": info.tree, "url": f"{repo_api(urls, repo)}/git/trees/{info.tree}"},
        },
        # No account is linked to the seed's email; `{}` is GitHub's `empty-object` for that.
        "author": {},
        "committer": {},
        "parents": [_parent(urls, repo, sha) for sha in info.parents],
    }


def _git_user(name: str, email: str, date: str) -> dict[str, str]:
    """Return a `git-user`."""
    return {"name": name, "email": email, "date": date}


def _parent(urls: Urls, repo: Repo, sha: str) -> dict[str, str]:
    """Return one entry of a commit's `parents`."""
    return {
        "sha": sha,
        "url": f"{repo_api(urls, repo)}/commits/{sha}",
        "html_url": f"{urls.web}/{repo.full_name}/commit/{sha}",
    }


def branch(urls: Urls, repo: Repo, name: str, info: CommitInfo) -> dict[str, Any]:
    """Return a `branch-with-protection` (never protected)."""
    api = f"{repo_api(urls, repo)}/branches/{name}"
    return {
        "name": name,
        "commit": commit(urls, repo, info),
        "_links": {"html": f"{urls.web}/{repo.full_name}/tree/{name}", "self": api},
        "protected": False,
        "protection": {"enabled": False},
        "protection_url": f"{api}/protection",
    }


def runners(repo: Repo) -> dict[str, Any]:
    """Return the self-hosted runner list of a repo."""
    return runner_list(repo.runners)


def runner_list(found: list[Runner]) -> dict[str, Any]:
    """Return a self-hosted runner list (a repo's or an organization's)."""
    return {"total_count": len(found), "runners": [_runner(r) for r in found]}


def _runner(runner: Runner) -> dict[str, Any]:
    """Return a `runner`."""
    labels = [{"id": i + 1, "name": n, "type": "custom"} for i, n in enumerate(runner.labels)]
    return {
        "id": runner.id,
        "name": runner.name,
        "os": runner.os,
        "status": runner.status,
        "busy": runner.busy,
        "labels": labels,
    }
