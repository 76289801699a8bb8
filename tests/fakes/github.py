"""The one in-memory fake of `bot.github.GitHub`, for feature tests: it records what the bot did."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kevolve.bot.github import GitHubError, PullRef, SelfHostedRunner
from kevolve.bot.remote import GitRemote

CONCLUSIONS = ("success", "failure", "neutral", "cancelled")
REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")


@dataclass
class Comment:
    """A comment the bot posted, with the reactions it added."""

    repo: str
    issue: int
    body: str
    reactions: list[str] = field(default_factory=list)


@dataclass
class Check:
    """A check run: status, conclusion and the latest output."""

    repo: str
    sha: str
    name: str
    title: str
    summary: str
    status: str = "in_progress"
    conclusion: str | None = None


@dataclass
class Pull:
    """A pull request between two branches of a repo."""

    repo: str
    number: int
    head: str
    base: str
    title: str
    body: str
    state: str = "open"

    def ref(self, sha: str) -> PullRef:
        """Return the PullRef of this pull request, its head at `sha`."""
        url = f"https://github.com/{self.repo}/pull/{self.number}"
        return PullRef(self.number, url, self.head, sha, self.state)


class FakeGitHub:
    """GitHub in memory: seed roles, branches, runners_of; read comments, checks, pulls."""

    def __init__(self, token: str = "ghs_fake") -> None:
        self.token = token
        self.roles: dict[tuple[str, str], str] = {}  # (repo, user) -> role
        self.branches: dict[tuple[str, str], str] = {}  # (repo, branch) -> sha
        self.defaults: dict[str, str] = {}  # repo -> default branch; "main" if unset
        self.runners_of: dict[str, list[SelfHostedRunner]] = {}
        self.comments: dict[int, Comment] = {}
        self.checks: dict[int, Check] = {}
        self.pulls: list[Pull] = []
        self.dispatches: list[tuple[str, str, str, dict[str, str]]] = []  # repo, file, ref, inputs
        self.cancelled_runs: list[tuple[str, int]] = []
        self._ids = itertools.count(1000)

    def push(self, repo: str, branch: str, sha: str) -> None:
        """Record that `branch` of `repo` now points at `sha` (what a git push does)."""
        self.branches[(repo, branch)] = sha

    def permission(self, repo: str, user: str) -> str:
        return self.roles.get((repo, user), "none")

    def react(self, repo: str, comment_id: int, content: str) -> None:
        if content not in REACTIONS:
            raise GitHubError(422, f"content {content!r} is not a reaction")
        note = self._comment(repo, comment_id)
        if content not in note.reactions:
            note.reactions.append(content)

    def comment(self, repo: str, issue: int, body: str) -> int:
        comment_id = next(self._ids)
        self.comments[comment_id] = Comment(repo, issue, body)
        return comment_id

    def edit_comment(self, repo: str, comment_id: int, body: str) -> None:
        self._comment(repo, comment_id).body = body

    def start_check(self, repo: str, sha: str, name: str, title: str, summary: str) -> int:
        check_id = next(self._ids)
        self.checks[check_id] = Check(repo, sha, name, title, summary)
        return check_id

    def update_check(self, repo: str, check_id: int, title: str, summary: str) -> None:
        check = self._check(repo, check_id)
        check.title, check.summary = title, summary

    def finish_check(
        self, repo: str, check_id: int, conclusion: str, title: str, summary: str
    ) -> None:
        if conclusion not in CONCLUSIONS:
            raise GitHubError(422, "Validation Failed: status or conclusion")
        check = self._check(repo, check_id)
        check.status, check.conclusion = "completed", conclusion
        check.title, check.summary = title, summary

    def open_pull(self, repo: str, head: str, base: str, title: str, body: str) -> PullRef:
        for branch in (head, base):
            if (repo, branch) not in self.branches:
                raise GitHubError(422, f"Validation Failed: no branch {branch}")
        if any(p.head == head and p.base == base for p in self._open(repo)):
            raise GitHubError(422, f"A pull request already exists for {head}.")
        number = 1 + sum(p.repo == repo for p in self.pulls)
        pull = Pull(repo, number, head, base, title, body)
        self.pulls.append(pull)
        return pull.ref(self.branches[(repo, head)])

    def find_pull(self, repo: str, head: str) -> PullRef | None:
        found = [p for p in self._open(repo) if p.head == head]
        return self._ref(found[-1]) if found else None

    def update_pull(self, repo: str, number: int, title: str, body: str) -> None:
        pull = self._pull(repo, number)
        pull.title, pull.body = title, body

    def close_pull(self, repo: str, number: int, comment: str | None) -> None:
        if comment:
            self.comment(repo, number, comment)
        self._pull(repo, number).state = "closed"

    def open_pulls(self, repo: str, prefix: str) -> list[PullRef]:
        return [self._ref(p) for p in self._open(repo) if p.head.startswith(prefix)]

    def default_branch(self, repo: str) -> str:
        return self.defaults.get(repo, "main")

    def runners(self, repo: str) -> list[SelfHostedRunner]:
        return list(self.runners_of.get(repo, []))

    def clone_url(self, repo: str, write: bool = False) -> GitRemote:
        return GitRemote(f"https://github.com/{repo}.git", self.token)

    def dispatch_workflow(
        self, repo: str, workflow: str, ref: str, inputs: Mapping[str, str]
    ) -> int | None:
        run_id = 9000 + len(self.dispatches)
        self.dispatches.append((repo, workflow, ref, dict(inputs)))
        return run_id

    def cancel_run(self, repo: str, run_id: int) -> None:
        self.cancelled_runs.append((repo, run_id))

    def _open(self, repo: str) -> list[Pull]:
        """Return the repo's open pull requests, oldest first."""
        return [p for p in self.pulls if p.repo == repo and p.state == "open"]

    def _ref(self, pull: Pull) -> PullRef:
        """Return a PullRef with the head branch's current sha."""
        return pull.ref(self.branches.get((pull.repo, pull.head), ""))

    def _comment(self, repo: str, comment_id: int) -> Comment:
        """Return a comment of the repo; GitHubError 404 if there is none."""
        note = self.comments.get(comment_id)
        if note is None or note.repo != repo:
            raise GitHubError(404, "Not Found")
        return note

    def _check(self, repo: str, check_id: int) -> Check:
        """Return a check run of the repo; GitHubError 404 if there is none."""
        check = self.checks.get(check_id)
        if check is None or check.repo != repo:
            raise GitHubError(404, "Not Found")
        return check

    def _pull(self, repo: str, number: int) -> Pull:
        """Return a pull request of the repo; GitHubError 404 if there is none."""
        found = [p for p in self.pulls if p.repo == repo and p.number == number]
        if not found:
            raise GitHubError(404, "Not Found")
        return found[0]


class LocalGitHub(FakeGitHub):
    """The fake GitHub, cloning from a bare repo on disk."""

    def __init__(self, bare: Path) -> None:
        super().__init__()
        self.bare = bare

    def clone_url(self, repo: str, write: bool = False) -> GitRemote:
        return GitRemote(str(self.bare))
