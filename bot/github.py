"""GitHub as the bot sees it: a small interface and its PyGithub-backed app client."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import github
from github import Auth, GithubIntegration
from github.PullRequest import PullRequest
from github.Repository import Repository
from github.SelfHostedActionsRunner import SelfHostedActionsRunner
from kevolve.bot.remote import GitRemote

log = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], float]
RETRIES = 3  # retries after a rate-limited answer
MAX_PAUSE_S = 900.0  # the longest single wait for a rate limit to lift
REFRESH_MARGIN_S = 300.0  # refresh an installation token this long before it expires
ROLES = ("admin", "maintain", "write", "triage", "read", "none")


@dataclass(frozen=True)
class PullRef:
    """A pull request as the bot needs it."""

    number: int
    url: str
    head: str  # branch name
    head_sha: str
    state: str  # open | closed


@dataclass(frozen=True)
class SelfHostedRunner:
    """A self-hosted runner and its labels."""

    name: str
    labels: tuple[str, ...]
    online: bool


class GitHubError(Exception):
    """A GitHub call failed; `message` never holds a credential."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"GitHub answered {status}: {message}")
        self.status = status
        self.message = message


class GitHub(Protocol):
    """What the bot's features ask of GitHub, nothing more."""

    def permission(self, repo: str, user: str) -> str: ...
    def react(self, repo: str, comment_id: int, content: str) -> None: ...
    def comment(self, repo: str, issue: int, body: str) -> int: ...
    def edit_comment(self, repo: str, comment_id: int, body: str) -> None: ...
    def start_check(self, repo: str, sha: str, name: str, title: str, summary: str) -> int: ...
    def finish_check(
        self, repo: str, check_id: int, conclusion: str, title: str, summary: str
    ) -> None: ...
    def update_check(self, repo: str, check_id: int, title: str, summary: str) -> None: ...
    def open_pull(self, repo: str, head: str, base: str, title: str, body: str) -> PullRef: ...
    def find_pull(self, repo: str, head: str) -> PullRef | None: ...
    def update_pull(self, repo: str, number: int, title: str, body: str) -> None: ...
    def close_pull(self, repo: str, number: int, comment: str | None) -> None: ...
    def open_pulls(self, repo: str, prefix: str) -> list[PullRef]: ...
    def default_branch(self, repo: str) -> str: ...
    def runners(self, repo: str) -> list[SelfHostedRunner]: ...
    def clone_url(self, repo: str, write: bool = False) -> GitRemote: ...
    def dispatch_workflow(
        self, repo: str, workflow: str, ref: str, inputs: Mapping[str, str]
    ) -> int | None: ...
    def cancel_run(self, repo: str, run_id: int) -> None: ...


def retry_delay(headers: Mapping[str, str], now: float) -> float | None:
    """Return seconds to wait before retrying a refused call, or None if it is not rate-limited."""
    lower = {k.lower(): v for k, v in headers.items()}
    if "retry-after" in lower:
        return min(MAX_PAUSE_S, max(0.0, float(lower["retry-after"])))
    if lower.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in lower:
        return min(MAX_PAUSE_S, max(0.0, float(lower["x-ratelimit-reset"]) - now))
    return None


class _InstallationToken(Auth.Auth):
    """An installation token fetched with the app JWT, refreshed near expiry by `clock`."""

    def __init__(self, integration: GithubIntegration, installation_id: int, clock: Clock):
        self._integration, self._installation_id, self._clock = integration, installation_id, clock
        self._value: str | None = None
        self._expires = 0.0
        self.seen: set[str] = set()  # every token handed out, to redact from messages

    @property
    def token_type(self) -> str:
        return "token"

    @property
    def token(self) -> str:
        """Return a token valid for at least REFRESH_MARGIN_S more seconds."""
        if self._value is None or self._clock() >= self._expires - REFRESH_MARGIN_S:
            fresh = self._integration.get_access_token(self._installation_id)
            expires: datetime | None = fresh.expires_at
            self._value = fresh.token
            self._expires = expires.timestamp() if expires else self._clock() + 3600
            self.seen.add(fresh.token)
        return self._value


class _RepoTokens:
    """Installation tokens for git, each scoped to one repository and its contents (read, or
    write to push), fetched with the app JWT and reused until near expiry."""

    def __init__(
        self, integration: GithubIntegration, installation_id: int, clock: Clock, seen: set[str]
    ) -> None:
        self._integration, self._installation_id, self._clock = integration, installation_id, clock
        self._seen = seen  # shared with the installation token: every token is redacted
        self._held: dict[tuple[str, bool], tuple[str, float]] = {}  # (repo, write) -> token
        self._lock = threading.Lock()

    def token(self, repo: str, write: bool) -> str:
        """A token for `repo` alone, valid for at least REFRESH_MARGIN_S more seconds."""
        with self._lock:
            held = self._held.get((repo, write))
            if held is not None and self._clock() < held[1] - REFRESH_MARGIN_S:
                return held[0]
            # PyGithub's get_access_token takes permissions but not repositories.
            url = f"/app/installations/{self._installation_id}/access_tokens"
            body = {
                "repositories": [repo.partition("/")[2]],
                "permissions": {"contents": "write" if write else "read"},
            }
            data = self._integration.requester.requestJsonAndCheck("POST", url, input=body)[1]
            value = str(data["token"])
            expires = datetime.fromisoformat(str(data["expires_at"])).timestamp()
            self._held[(repo, write)] = (value, expires)
            self._seen.add(value)
            return value


class AppClient:
    """The GitHub interface for one installation of the app, through PyGithub."""

    def __init__(
        self,
        app_id: int | str,
        private_key: str,
        installation_id: int,
        base_url: str,
        *,
        throttle: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        clock: Clock = time.time,
    ) -> None:
        no_pauses = {"seconds_between_requests": 0.0, "seconds_between_writes": 0.0}
        pauses: dict[str, Any] = {} if throttle else no_pauses
        integration = GithubIntegration(
            auth=Auth.AppAuth(app_id, private_key), base_url=base_url, retry=None, **pauses
        )
        self._auth = _InstallationToken(integration, installation_id, clock)
        self._repo_tokens = _RepoTokens(integration, installation_id, clock, self._auth.seen)
        self._gh = github.Github(
            auth=self._auth, base_url=base_url, retry=None, lazy=True, **pauses
        )
        self._eager = self._gh.withLazy(False)
        self._sleep, self._clock = sleep, clock
        self._refused_orgs: set[str] = set()  # owners whose runners GitHub would not list

    def permission(self, repo: str, user: str) -> str:
        """Return the user's role on the repo, from the permission API; "none" if unknown."""
        try:
            data = self._rest("GET", f"/repos/{repo}/collaborators/{user}/permission")
        except GitHubError as error:
            if error.status == 404:
                return "none"
            raise
        role = data.get("role_name")
        return role if role in ROLES else str(data.get("permission") or "none")

    def react(self, repo: str, comment_id: int, content: str) -> None:
        """Add a reaction to an issue comment."""
        url = f"/repos/{repo}/issues/comments/{comment_id}/reactions"
        self._call(
            lambda: self._gh.requester.requestJsonAndCheck("POST", url, input={"content": content})
        )

    def comment(self, repo: str, issue: int, body: str) -> int:
        """Comment on an issue or pull request; return the comment id."""
        return self._call(lambda: self._repo(repo).get_issue(issue).create_comment(body)).id

    def edit_comment(self, repo: str, comment_id: int, body: str) -> None:
        """Replace the body of an issue comment."""
        url = f"/repos/{repo}/issues/comments/{comment_id}"
        self._call(
            lambda: self._gh.requester.requestJsonAndCheck("PATCH", url, input={"body": body})
        )

    def start_check(self, repo: str, sha: str, name: str, title: str, summary: str) -> int:
        """Create an in-progress check run on a commit; return its id."""
        output = _output(title, summary)
        run = self._call(
            lambda: self._repo(repo).create_check_run(
                name, sha, status="in_progress", output=output
            )
        )
        return run.id

    def update_check(self, repo: str, check_id: int, title: str, summary: str) -> None:
        """Replace the text of an in-progress check run."""
        run = self._repo(repo).get_check_run(check_id)
        self._call(lambda: run.edit(output=_output(title, summary)))

    def finish_check(
        self, repo: str, check_id: int, conclusion: str, title: str, summary: str
    ) -> None:
        """Complete a check run with a conclusion: success, failure, neutral or cancelled."""
        run = self._repo(repo).get_check_run(check_id)
        output = _output(title, summary)
        self._call(lambda: run.edit(status="completed", conclusion=conclusion, output=output))

    def open_pull(self, repo: str, head: str, base: str, title: str, body: str) -> PullRef:
        """Open a pull request from branch `head` into `base`."""
        pr = self._call(
            lambda: self._repo(repo).create_pull(title=title, body=body, head=head, base=base)
        )
        return _pull_ref(pr)

    def find_pull(self, repo: str, head: str) -> PullRef | None:
        """Return the open pull request from branch `head`, or None."""
        owner = repo.partition("/")[0]
        found = self._call(
            lambda: list(self._repo(repo).get_pulls(state="open", head=f"{owner}:{head}"))
        )
        return _pull_ref(found[0]) if found else None

    def update_pull(self, repo: str, number: int, title: str, body: str) -> None:
        """Replace a pull request's title and body."""
        pr = self._repo(repo).get_pull(number)
        self._call(lambda: pr.edit(title=title, body=body))

    def close_pull(self, repo: str, number: int, comment: str | None) -> None:
        """Close a pull request, first commenting when given a comment."""
        if comment:
            self.comment(repo, number, comment)
        pr = self._repo(repo).get_pull(number)
        self._call(lambda: pr.edit(state="closed"))

    def open_pulls(self, repo: str, prefix: str) -> list[PullRef]:
        """Return the open pull requests whose head branch starts with `prefix`."""
        pulls = self._call(lambda: list(self._repo(repo).get_pulls(state="open")))
        return [_pull_ref(pr) for pr in pulls if pr.head.ref.startswith(prefix)]

    def default_branch(self, repo: str) -> str:
        """Return the repo's default branch."""
        return self._call(lambda: self._eager.get_repo(repo).default_branch)

    def runners(self, repo: str) -> list[SelfHostedRunner]:
        """Return the self-hosted runners the repo may use, with their labels: its own and, for
        an organization's repo, the organization's (none where GitHub refuses to list those)."""
        own = self._call(lambda: list(self._repo(repo).get_self_hosted_runners()))
        return [_runner(r) for r in own] + self._org_runners(repo.partition("/")[0])

    def _org_runners(self, org: str) -> list[SelfHostedRunner]:
        """The organization's runners; none, logged once per owner, on a 403 (the app lacks the
        `organization_self_hosted_runners` permission) or a 404 (the owner is a person)."""
        organization = self._gh.get_organization(org)  # lazy: no request
        try:
            found = self._call(lambda: list(organization.get_self_hosted_runners()))
        except GitHubError as error:
            if error.status not in (403, 404):
                raise
            if org not in self._refused_orgs:
                self._refused_orgs.add(org)
                level = logging.WARNING if error.status == 403 else logging.INFO
                log.log(level, "no organization runners for %s: %s", org, error)
            return []
        return [_runner(r) for r in found]

    def clone_url(self, repo: str, write: bool = False) -> GitRemote:
        """The repo's plain HTTPS clone URL and, apart, a token for that repo alone: its
        contents to read, or with `write` to push. Git gets the token per command."""
        url = self._call(lambda: self._eager.get_repo(repo).clone_url)
        return GitRemote(url, self._call(lambda: self._repo_tokens.token(repo, write)))

    def dispatch_workflow(
        self, repo: str, workflow: str, ref: str, inputs: Mapping[str, str]
    ) -> int | None:
        """Start a `workflow_dispatch` run of `workflow` (its file name) at `ref`; the run's id
        when GitHub returns it (`return_run_details`), else None."""
        url = f"/repos/{repo}/actions/workflows/{quote(workflow, safe='')}/dispatches"
        body = {"ref": ref, "inputs": dict(inputs), "return_run_details": True}
        answer = self._rest("POST", url, body)
        run_id = (answer or {}).get("workflow_run_id")
        return int(run_id) if run_id is not None else None

    def cancel_run(self, repo: str, run_id: int) -> None:
        """Ask GitHub to cancel a workflow run."""
        self._rest("POST", f"/repos/{repo}/actions/runs/{run_id}/cancel")

    def _repo(self, repo: str) -> Repository:
        """Return a lazy repository: no request until one of its calls."""
        return self._gh.get_repo(repo)

    def _rest(self, verb: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one REST call through PyGithub's requester; the JSON answer ({} for none)."""
        requester = self._gh.requester
        answer: dict[str, Any] | None = self._call(
            lambda: requester.requestJsonAndCheck(verb, url, input=body)
        )[1]
        return answer or {}

    def _call(self, request: Callable[[], T]) -> T:
        """Run a request, waiting out rate limits up to RETRIES times; raise GitHubError."""
        for attempt in range(RETRIES + 1):
            try:
                return request()
            except github.GithubException as error:
                delay = retry_delay(error.headers or {}, self._clock())
                if error.status not in (403, 429) or delay is None or attempt == RETRIES:
                    raise self._redacted(error) from None
                log.warning("GitHub rate limit (%s); retrying in %.0f s", error.status, delay)
                self._sleep(delay)
        raise AssertionError("unreachable")

    def _redacted(self, error: github.GithubException) -> GitHubError:
        """Return a GitHubError for a PyGithub error, every token we hold masked."""
        data = error.data
        text = str(data.get("message", data)) if isinstance(data, dict) else str(data)
        for secret in self._auth.seen:
            text = text.replace(secret, "***")
        return GitHubError(error.status, text)


def _runner(runner: SelfHostedActionsRunner) -> SelfHostedRunner:
    """Return the SelfHostedRunner of a PyGithub self-hosted runner."""
    labels = tuple(str(label["name"]) for label in runner.labels)
    return SelfHostedRunner(runner.name, labels, runner.status == "online")


def _pull_ref(pr: PullRequest) -> PullRef:
    """Return the PullRef of a PyGithub pull request."""
    return PullRef(pr.number, pr.html_url, pr.head.ref, pr.head.sha, pr.state)


def _output(title: str, summary: str) -> dict[str, str | list[dict[str, str | int]]]:
    """Return a check run's output object."""
    return {"title": title, "summary": summary}
