"""A publisher in memory: records publications and moves the fake GitHub's branches."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kevolve.bot.publisher import Publication, Publisher, PushOutcome, Tree
from kevolve.bot.remote import GitRemote

from tests.fakes.github import FakeGitHub


class FakePublisher:
    """Pushes succeed unless a branch is marked as holding a person's commits."""

    def __init__(self, github: FakeGitHub, repo: str) -> None:
        self.github, self.repo = github, repo
        self.published: list[Publication] = []
        self.human_branches: set[str] = set()

    def publish(self, remote: GitRemote, pub: Publication) -> PushOutcome:
        if pub.branch in self.human_branches:
            return PushOutcome(
                "blocked", "h" * 40, f"{pub.branch} has 1 commit by other authors (hhhhhhh)"
            )
        self.published.append(pub)
        sha = hashlib.sha1(repr(sorted(pub.files.items())).encode()).hexdigest()
        self.github.push(self.repo, pub.branch, sha)
        return PushOutcome("pushed", sha)

    @contextmanager
    def checkout(self, remote: GitRemote, commit: str) -> Iterator[Tree]:
        """The real publisher's working tree: the bot vets a result in its own checkout (a
        `LocalGitHub` clones from a repo on disk)."""
        with (
            tempfile.TemporaryDirectory() as scratch,
            Publisher(Path(scratch)).checkout(remote, commit) as tree,
        ):
            yield tree
