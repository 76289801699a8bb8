"""In-memory GitHub state behind the stand-in: accounts, apps, installations, repos and more."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LEVELS = ("none", "read", "write", "admin")  # a permission's levels, weakest first


def now() -> datetime:
    """Return the current time in UTC, to the second, as GitHub reports it."""
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class User:
    """A GitHub account: a person, an organization or a bot."""

    id: int
    login: str
    type: str = "User"


@dataclass
class App:
    """A GitHub App and the public key that checks its JWTs."""

    id: int
    slug: str
    name: str
    owner: User
    public_key_pem: bytes
    events: list[str] = field(default_factory=list)
    permissions: dict[str, str] = field(default_factory=dict)
    created_at: datetime = field(default_factory=now)
    webhook_url: str | None = None  # where its events go (an App made from a manifest)
    webhook_secret: str | None = None  # what signs them
    client_secret: str | None = None  # its OAuth client's secret (tests.standin.user_auth)


@dataclass(frozen=True)
class ManifestCode:
    """What a manifest flow's code hands over once, within the hour: the new App's secrets."""

    app_id: int
    pem: str
    client_secret: str
    expires_at: datetime


@dataclass(frozen=True)
class OAuthCode:
    """A code the OAuth web flow handed a browser: whom it signs in, for which App, once."""

    app_id: int
    login: str
    redirect_uri: str
    expires_at: datetime


@dataclass(frozen=True)
class UserToken:
    """A user's access token for an App (`ghu_...`): it acts as the person, through the App."""

    value: str
    login: str
    app_id: int
    expires_at: datetime


@dataclass
class Installation:
    """An installation of an app on one account."""

    id: int
    app_id: int
    account: User


@dataclass
class Token:
    """An installation access token, for some of the installation's repos and permissions."""

    value: str
    installation_id: int
    expires_at: datetime
    permissions: dict[str, str] = field(default_factory=dict)  # e.g. {"contents": "read"}
    repository_ids: frozenset[int] | None = None  # None: every repo of the installation

    def covers(self, repo: Repo) -> bool:
        """Whether this token may touch `repo` at all."""
        if repo.installation_id != self.installation_id:
            return False
        return self.repository_ids is None or repo.id in self.repository_ids

    def grants(self, permission: str, level: str) -> bool:
        """Whether the token holds `permission` at `level` (read < write < admin) or above."""
        held = self.permissions.get(permission, "none")
        return LEVELS.index(held) >= LEVELS.index(level)


@dataclass
class Runner:
    """A self-hosted Actions runner registered on a repo."""

    id: int
    name: str
    labels: list[str]
    os: str = "Linux"
    status: str = "online"
    busy: bool = False


@dataclass
class Repo:
    """A repository: a bare git repo on disk plus collaborators and runners."""

    id: int
    owner: User
    name: str
    git_dir: Path
    installation_id: int
    default_branch: str = "main"
    private: bool = True
    roles: dict[str, str] = field(default_factory=dict)
    runners: list[Runner] = field(default_factory=list)
    created_at: datetime = field(default_factory=now)

    @property
    def full_name(self) -> str:
        """Return `owner/name`."""
        return f"{self.owner.login}/{self.name}"


@dataclass
class Reaction:
    """An emoji reaction on an issue comment."""

    id: int
    user: User
    content: str
    created_at: datetime = field(default_factory=now)


@dataclass
class Issue:
    """An issue; pull requests share its numbering."""

    id: int
    number: int
    repo: Repo
    user: User
    title: str
    body: str | None = None
    state: str = "open"
    created_at: datetime = field(default_factory=now)


@dataclass
class Comment:
    """A comment on an issue or a pull request."""

    id: int
    repo: Repo
    issue_number: int
    user: User
    body: str
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)
    reactions: list[Reaction] = field(default_factory=list)


@dataclass
class Pull:
    """A pull request from a head branch to a base branch of the same repo."""

    id: int
    number: int
    repo: Repo
    user: User
    title: str
    body: str | None
    head: str
    base: str
    state: str = "open"
    draft: bool = False
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)
    closed_at: datetime | None = None


@dataclass
class CheckRun:
    """A check run created by an app on a commit."""

    id: int
    repo: Repo
    app: App
    name: str
    head_sha: str
    status: str = "queued"
    conclusion: str | None = None
    details_url: str | None = None
    external_id: str | None = None
    output: dict[str, Any] = field(default_factory=dict)
    started_at: datetime = field(default_factory=now)
    completed_at: datetime | None = None


@dataclass
class WorkflowRun:
    """A `workflow_dispatch` run of a repo's workflow: one job, run by a self-hosted runner."""

    id: int
    repo: Repo
    workflow: str  # the workflow's file name
    ref: str
    head_sha: str
    inputs: dict[str, str]
    name: str  # the run's (and its one job's) name
    job_id: int  # the id of its one job
    status: str = "queued"
    conclusion: str | None = None
    runner_name: str | None = None
    cancel_requested: bool = False
    created_at: datetime = field(default_factory=now)


@dataclass
class GitHubState:
    """Everything the stand-in knows, guarded by one lock for its request threads."""

    users: dict[str, User] = field(default_factory=dict)
    apps: dict[int, App] = field(default_factory=dict)
    installations: dict[int, Installation] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    repos: dict[str, Repo] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    comments: dict[int, Comment] = field(default_factory=dict)
    pulls: list[Pull] = field(default_factory=list)
    check_runs: dict[int, CheckRun] = field(default_factory=dict)
    runs: dict[int, WorkflowRun] = field(default_factory=dict)
    # Called with each new run, as GitHub Actions hands it to a runner (tests.standin.actions).
    on_dispatch: list[Callable[[WorkflowRun], None]] = field(default_factory=list)
    issue_numbers: dict[str, int] = field(default_factory=dict)
    org_runners: dict[str, list[Runner]] = field(default_factory=dict)  # org login -> runners
    manifest_codes: dict[str, ManifestCode] = field(default_factory=dict)  # code -> new App
    oauth_codes: dict[str, OAuthCode] = field(default_factory=dict)  # code -> who signs in
    user_tokens: dict[str, UserToken] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))

    def next_id(self) -> int:
        """Return a fresh id, unique across every kind of object."""
        with self.lock:
            return next(self._ids)

    def next_issue_number(self, repo: Repo) -> int:
        """Return the next issue or pull request number in `repo` (they share one sequence)."""
        with self.lock:
            number = self.issue_numbers.get(repo.full_name, 0) + 1
            self.issue_numbers[repo.full_name] = number
            return number

    def add_user(self, login: str, kind: str = "User") -> User:
        """Register an account and return it (the same one if it exists)."""
        with self.lock:
            if login not in self.users:
                self.users[login] = User(self.next_id(), login, kind)
            return self.users[login]

    def pulls_of(self, repo: Repo) -> list[Pull]:
        """Return the pull requests of `repo`, oldest first."""
        return [p for p in self.pulls if p.repo is repo]

    def find_pull(self, repo: Repo, number: int) -> Pull | None:
        """Return pull request `number` of `repo`, or None."""
        return next((p for p in self.pulls_of(repo) if p.number == number), None)

    def find_issue(self, repo: Repo, number: int) -> Issue | None:
        """Return issue `number` of `repo` (not a pull request), or None."""
        return next((i for i in self.issues if i.repo is repo and i.number == number), None)
