"""JSON bodies for issues, pull requests, issue comments, reactions and check runs."""

from __future__ import annotations

from typing import Any

from tests.standin.repos_json import repo_api, repository
from tests.standin.state import CheckRun, Comment, Issue, Pull, Reaction, Repo
from tests.standin.users_json import Urls, app, node_id, stamp, user


def pull(urls: Urls, pr: Pull, head_sha: str, base_sha: str) -> dict[str, Any]:
    """Return a `pull-request` (a superset of `pull-request-simple`)."""
    api = f"{repo_api(urls, pr.repo)}/pulls/{pr.number}"
    issue = f"{repo_api(urls, pr.repo)}/issues/{pr.number}"
    web = f"{urls.web}/{pr.repo.full_name}/pull/{pr.number}"
    statuses = f"{repo_api(urls, pr.repo)}/statuses/{head_sha}"
    return {
        "url": api,
        "id": pr.id,
        "node_id": node_id("PullRequest", pr.id),
        "number": pr.number,
        "html_url": web,
        "diff_url": f"{web}.diff",
        "patch_url": f"{web}.patch",
        "issue_url": issue,
        "commits_url": f"{api}/commits",
        "review_comments_url": f"{api}/comments",
        "review_comment_url": f"{repo_api(urls, pr.repo)}/pulls/comments",
        "comments_url": f"{issue}/comments",
        "statuses_url": statuses,
        "state": pr.state,
        "locked": False,
        "draft": pr.draft,
        "title": pr.title,
        "body": pr.body,
        "user": user(urls, pr.user),
        "labels": [],
        "milestone": None,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "created_at": stamp(pr.created_at),
        "updated_at": stamp(pr.updated_at),
        "closed_at": stamp(pr.closed_at),
        "merged_at": None,
        "merge_commit_sha": None,
        "head": _end(urls, pr.repo, pr.head, head_sha),
        "base": _end(urls, pr.repo, pr.base, base_sha),
        "_links": _pull_links(api, issue, web, statuses),
        "author_association": "NONE",
        "auto_merge": None,
        **_merge_facts(),
    }


def _end(urls: Urls, repo: Repo, ref: str, sha: str) -> dict[str, Any]:
    """Return the `head` or `base` of a pull request."""
    return {
        "label": f"{repo.owner.login}:{ref}",
        "ref": ref,
        "sha": sha,
        "user": user(urls, repo.owner),
        "repo": repository(urls, repo),
    }


def _pull_links(api: str, issue: str, web: str, statuses: str) -> dict[str, dict[str, str]]:
    """Return a pull request's `_links`."""
    hrefs = {
        "self": api,
        "html": web,
        "issue": issue,
        "comments": f"{issue}/comments",
        "review_comments": f"{api}/comments",
        "review_comment": f"{api}/comments{{/number}}",
        "commits": f"{api}/commits",
        "statuses": statuses,
    }
    return {name: {"href": href} for name, href in hrefs.items()}


def _merge_facts() -> dict[str, Any]:
    """Return the fields only a full `pull-request` has; the stand-in never merges."""
    return {
        "merged": False,
        "mergeable": True,
        "mergeable_state": "clean",
        "merged_by": None,
        "maintainer_can_modify": False,
        "comments": 0,
        "review_comments": 0,
        "commits": 1,
        "additions": 0,
        "deletions": 0,
        "changed_files": 0,
    }


def issue(urls: Urls, item: Issue | Pull) -> dict[str, Any]:
    """Return an `issue`; a pull request seen as an issue carries `pull_request` links."""
    api = f"{repo_api(urls, item.repo)}/issues/{item.number}"
    body: dict[str, Any] = {
        "id": item.id,
        "node_id": node_id("Issue", item.id),
        "number": item.number,
        "url": api,
        "repository_url": repo_api(urls, item.repo),
        "html_url": f"{urls.web}/{item.repo.full_name}/issues/{item.number}",
        "comments_url": f"{api}/comments",
        "events_url": f"{api}/events",
        "labels_url": f"{api}/labels",
        "title": item.title,
        "body": item.body,
        "user": user(urls, item.user),
        "state": item.state,
        "locked": False,
        "labels": [],
        "assignee": None,
        "milestone": None,
        "comments": 0,
        "created_at": stamp(item.created_at),
        "updated_at": stamp(item.created_at),
        "closed_at": None,
    }
    if isinstance(item, Pull):
        body["pull_request"] = _as_issue_links(urls, item)
    return body


def _as_issue_links(urls: Urls, pr: Pull) -> dict[str, str | None]:
    """Return the `pull_request` links of a pull request seen as an issue."""
    web = f"{urls.web}/{pr.repo.full_name}/pull/{pr.number}"
    return {
        "url": f"{repo_api(urls, pr.repo)}/pulls/{pr.number}",
        "html_url": web,
        "diff_url": f"{web}.diff",
        "patch_url": f"{web}.patch",
        "merged_at": None,
    }


def comment(urls: Urls, note: Comment) -> dict[str, Any]:
    """Return an `issue-comment`."""
    api = repo_api(urls, note.repo)
    return {
        "id": note.id,
        "node_id": node_id("IssueComment", note.id),
        "url": f"{api}/issues/comments/{note.id}",
        "html_url": f"{urls.web}/{note.repo.full_name}/issues/{note.issue_number}"
        f"#issuecomment-{note.id}",
        "issue_url": f"{api}/issues/{note.issue_number}",
        "body": note.body,
        "user": user(urls, note.user),
        "created_at": stamp(note.created_at),
        "updated_at": stamp(note.updated_at),
        "author_association": "NONE",
    }


def reaction(urls: Urls, emoji: Reaction) -> dict[str, Any]:
    """Return a `reaction`."""
    return {
        "id": emoji.id,
        "node_id": node_id("Reaction", emoji.id),
        "user": user(urls, emoji.user),
        "content": emoji.content,
        "created_at": stamp(emoji.created_at),
    }


def check_run(urls: Urls, run: CheckRun) -> dict[str, Any]:
    """Return a `check-run`."""
    output = {key: run.output.get(key) for key in ("title", "summary", "text")}
    api = f"{repo_api(urls, run.repo)}/check-runs/{run.id}"
    return {
        "id": run.id,
        "node_id": node_id("CheckRun", run.id),
        "head_sha": run.head_sha,
        "external_id": run.external_id,
        "url": api,
        "html_url": f"{urls.web}/{run.repo.full_name}/runs/{run.id}",
        "details_url": run.details_url,
        "status": run.status,
        "conclusion": run.conclusion,
        "started_at": stamp(run.started_at),
        "completed_at": stamp(run.completed_at),
        "output": {**output, "annotations_count": 0, "annotations_url": f"{api}/annotations"},
        "name": run.name,
        "check_suite": {"id": run.id},
        "app": app(urls, run.app),
        "pull_requests": [],
    }
