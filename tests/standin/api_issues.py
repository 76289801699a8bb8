"""Issue endpoints: read an issue; comment on an issue or pull request, edit it, react to it."""

from __future__ import annotations

from tests.standin import pulls_json
from tests.standin.routing import Call, Caller, HttpError, Reply, Route
from tests.standin.state import Comment, Issue, Pull, Reaction, User, now

REACTIONS = {"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"}


def _bot(call: Call) -> User:
    """Return the bot account that acts for the calling app (`<slug>[bot]`)."""
    assert call.app is not None
    return call.state.add_user(f"{call.app.slug}[bot]", "Bot")


def _text(call: Call, key: str) -> str:
    """Return a required string field of the request body; 422 when it is missing."""
    value = call.body.get(key)
    if not isinstance(value, str):
        raise HttpError(422, f"{key} is missing or not a string")
    return value


def _comment(call: Call) -> Comment:
    """Return the comment `{comment_id}` of the path's repo."""
    repo = call.repo()
    note = call.state.comments.get(call.number("comment_id"))
    if note is None or note.repo is not repo:
        raise HttpError(404, "Not Found")
    return note


def _issue(call: Call) -> Issue | Pull:
    """Return the issue or pull request `{issue_number}` of the path's repo."""
    repo = call.repo()
    number = call.number("issue_number")
    found = call.state.find_issue(repo, number) or call.state.find_pull(repo, number)
    if found is None:
        raise HttpError(404, "Not Found")
    return found


def get_issue(call: Call) -> Reply:
    """GET /repos/{owner}/{repo}/issues/{issue_number}."""
    return Reply(200, pulls_json.issue(call.urls, _issue(call)))


def create_comment(call: Call) -> Reply:
    """POST /repos/{owner}/{repo}/issues/{issue_number}/comments."""
    item = _issue(call)
    note = Comment(call.state.next_id(), item.repo, item.number, _bot(call), _text(call, "body"))
    with call.state.lock:
        call.state.comments[note.id] = note
    return Reply(201, pulls_json.comment(call.urls, note))


def update_comment(call: Call) -> Reply:
    """PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}."""
    note = _comment(call)
    note.body = _text(call, "body")
    note.updated_at = now()
    return Reply(200, pulls_json.comment(call.urls, note))


def create_reaction(call: Call) -> Reply:
    """POST .../issues/comments/{comment_id}/reactions: 201 when new, 200 when already there."""
    note = _comment(call)
    content = _text(call, "content")
    if content not in REACTIONS:
        raise HttpError(422, f"content {content!r} is not a reaction")
    bot = _bot(call)
    for existing in note.reactions:
        if existing.user is bot and existing.content == content:
            return Reply(200, pulls_json.reaction(call.urls, existing))
    emoji = Reaction(call.state.next_id(), bot, content)
    note.reactions.append(emoji)
    return Reply(201, pulls_json.reaction(call.urls, emoji))


_ISSUES = "/repos/{owner}/{repo}/issues"
ROUTES = [
    Route("GET", _ISSUES + "/{issue_number}", Caller.INSTALLATION, get_issue),
    Route("POST", _ISSUES + "/{issue_number}/comments", Caller.INSTALLATION, create_comment),
    Route("PATCH", _ISSUES + "/comments/{comment_id}", Caller.INSTALLATION, update_comment),
    Route(
        "POST", _ISSUES + "/comments/{comment_id}/reactions", Caller.INSTALLATION, create_reaction
    ),
]
