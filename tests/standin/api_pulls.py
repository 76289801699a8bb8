"""Pull request endpoints: list, open, read and edit pull requests between branches of a repo."""

from __future__ import annotations

from typing import Any

from tests.standin import gitrepo, pulls_json
from tests.standin.routing import Call, Caller, HttpError, Reply, Route
from tests.standin.state import Pull, Repo, now

_STATES = {"open", "closed", "all"}


def _json(call: Call, pr: Pull) -> dict[str, Any]:
    """Return a pull request with its head and base shas read from the repo."""
    head = gitrepo.branch_sha(pr.repo.git_dir, pr.head) or ""
    base = gitrepo.branch_sha(pr.repo.git_dir, pr.base) or ""
    return pulls_json.pull(call.urls, pr, head, base)


def _branch(repo: Repo, ref: str) -> str:
    """Return a branch name given as `branch` or `owner:branch`; 422 when it does not exist."""
    owner, _, name = ref.rpartition(":")
    if owner not in ("", repo.owner.login) or gitrepo.branch_sha(repo.git_dir, name) is None:
        raise HttpError(422, f"Validation Failed: no branch {ref}")
    return name


def _wanted(pr: Pull, query: dict[str, str]) -> bool:
    """Return whether a pull request passes the `state`, `head` and `base` filters."""
    state = query.get("state", "open")
    if state not in _STATES:
        raise HttpError(422, f"Validation Failed: state {state}")
    head = query.get("head")
    if head is not None and head != f"{pr.repo.owner.login}:{pr.head}":
        return False
    return state in ("all", pr.state) and query.get("base", pr.base) == pr.base


def list_pulls(call: Call) -> Reply:
    """GET /repos/{owner}/{repo}/pulls?state=&head=owner:branch&base=."""
    pulls = [pr for pr in call.state.pulls_of(call.repo()) if _wanted(pr, call.query)]
    return Reply(200, [_json(call, pr) for pr in reversed(pulls)])


def create_pull(call: Call) -> Reply:
    """POST /repos/{owner}/{repo}/pulls; 422 when an open one has the same head and base."""
    repo = call.repo()
    head = _branch(repo, str(call.body.get("head", "")))
    base = _branch(repo, str(call.body.get("base", "")))
    open_ = [p for p in call.state.pulls_of(repo) if p.state == "open"]
    if any(p.head == head and p.base == base for p in open_):
        raise HttpError(422, f"A pull request already exists for {repo.owner.login}:{head}.")
    title = call.body.get("title")
    if not isinstance(title, str) or not title:
        raise HttpError(422, "Validation Failed: title")
    assert call.app is not None
    bot = call.state.add_user(f"{call.app.slug}[bot]", "Bot")
    number = call.state.next_issue_number(repo)
    pr = Pull(call.state.next_id(), number, repo, bot, title, call.body.get("body"), head, base)
    pr.draft = bool(call.body.get("draft", False))
    with call.state.lock:
        call.state.pulls.append(pr)
    return Reply(201, _json(call, pr))


def _pull(call: Call) -> Pull:
    """Return the pull request `{pull_number}` of the path's repo."""
    pr = call.state.find_pull(call.repo(), call.number("pull_number"))
    if pr is None:
        raise HttpError(404, "Not Found")
    return pr


def get_pull(call: Call) -> Reply:
    """GET /repos/{owner}/{repo}/pulls/{pull_number}."""
    return Reply(200, _json(call, _pull(call)))


def update_pull(call: Call) -> Reply:
    """PATCH /repos/{owner}/{repo}/pulls/{pull_number}: title, body, state, base."""
    pr = _pull(call)
    pr.title = str(call.body.get("title", pr.title))
    pr.body = call.body.get("body", pr.body)
    if "base" in call.body:
        pr.base = _branch(pr.repo, str(call.body["base"]))
    state = call.body.get("state", pr.state)
    if state not in ("open", "closed"):
        raise HttpError(422, f"Validation Failed: state {state}")
    pr.closed_at = None if state == "open" else (pr.closed_at or now())
    pr.state = state
    pr.updated_at = now()
    return Reply(200, _json(call, pr))


_PULLS = "/repos/{owner}/{repo}/pulls"
ROUTES = [
    Route("GET", _PULLS, Caller.INSTALLATION, list_pulls),
    Route("POST", _PULLS, Caller.INSTALLATION, create_pull),
    Route("GET", _PULLS + "/{pull_number}", Caller.INSTALLATION, get_pull),
    Route("PATCH", _PULLS + "/{pull_number}", Caller.INSTALLATION, update_pull),
]
