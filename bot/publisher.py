"""Publishing a winning kernel: one bot commit on a deterministic branch, never over a person's."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import git
from kevolve.bot.remote import GitRemote
from kevolve.bot.treepath import TreePathError, parts_of, write_inside

_UNSAFE = re.compile(r"[^a-z0-9._-]+")


class PublishError(RuntimeError):
    """A git operation failed; the message never holds the remote's token."""


@dataclass(frozen=True)
class Publication:
    """What to publish: files on a branch cut from `base`, with one commit message."""

    branch: str
    files: Mapping[str, str]
    message: str
    base: str


@dataclass(frozen=True)
class Tree:
    """A working tree of the repo at one commit."""

    root: Path
    sha: str


@dataclass(frozen=True)
class PushOutcome:
    """What publishing did: `pushed`, `unchanged` or `blocked`, the branch head, and why."""

    status: str
    sha: str | None
    reason: str | None = None


def branch_name(op: str, hardware: str) -> str:
    """Return `kevolve/<op>/<hardware>` with each label made a safe, lower-case ref component."""
    return f"kevolve/{_component(op)}/{_component(hardware)}"


def _component(label: str) -> str:
    """Return a label lower-cased, runs of unsafe characters as `-`, no leading/trailing dots."""
    cleaned = _UNSAFE.sub("-", label.strip().lower()).replace("..", "-").strip(".-")
    cleaned = cleaned.removesuffix(".lock")
    if not cleaned:
        raise ValueError(f"label {label!r} has no characters usable in a branch name")
    return cleaned


class Publisher:
    """Clones a repo, writes a publication on its branch as the bot, and pushes it safely."""

    def __init__(
        self,
        workdir: Path,
        author_name: str = "kevolve[bot]",
        author_email: str = "kevolve[bot]@users.noreply.github.com",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._workdir = workdir
        self._author = (author_name, author_email)
        identity = {
            "GIT_AUTHOR_NAME": author_name,
            "GIT_AUTHOR_EMAIL": author_email,
            "GIT_COMMITTER_NAME": author_name,
            "GIT_COMMITTER_EMAIL": author_email,
        }
        self._env = {"GIT_TERMINAL_PROMPT": "0", **(env or {}), **identity}

    def publish(self, remote: GitRemote, pub: Publication) -> PushOutcome:
        """Push `pub` to its branch unless a person committed there; return what happened."""
        try:
            with self._clone(remote) as repo:
                return self._publish(repo, pub)
        except git.GitCommandError as error:
            raise PublishError(remote.redact(str(error))) from None

    @contextmanager
    def checkout(self, remote: GitRemote, commit: str) -> Iterator[Tree]:
        """Yield a working tree at `commit` (a sha or `refs/heads/<branch>`), removed afterwards."""
        with self._clone(remote) as repo:
            ref = commit
            if ref.startswith("refs/heads/"):  # a branch as the job saw it: origin's copy of it
                ref = "origin/" + ref.removeprefix("refs/heads/")
            try:
                repo.git.checkout("--quiet", "--detach", ref)
            except git.GitCommandError as error:
                raise PublishError(remote.redact(str(error))) from None
            yield Tree(Path(repo.working_tree_dir or "."), repo.head.commit.hexsha)

    @contextmanager
    def _clone(self, remote: GitRemote) -> Iterator[git.Repo]:
        """Yield a fresh clone in a temporary directory under the workdir, removed afterwards;
        its git commands authenticate per command, so no file of the clone holds the token."""
        self._workdir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="publish-", dir=self._workdir))
        try:
            try:
                env = {**self._env, **remote.env()}
                repo = git.Repo.clone_from(remote.url, scratch / "repo", env=env)
            except git.GitCommandError as error:
                raise PublishError(remote.redact(str(error))) from None
            repo.git.update_environment(**env)
            yield repo
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _publish(self, repo: git.Repo, pub: Publication) -> PushOutcome:
        """Return the outcome of publishing `pub` from a fresh clone."""
        base = repo.git.rev_parse("--verify", f"refs/remotes/origin/{pub.base}^{{commit}}")
        remote = _remote_head(repo, pub.branch)
        if remote is not None:
            foreign = self._foreign_commits(repo, base, remote)
            if foreign:
                return PushOutcome("blocked", remote, _blocked_reason(pub.branch, foreign))
        tree = _tree_with(repo, base, pub.files)
        if remote is not None and _holds(repo, remote, base, tree):
            return PushOutcome("unchanged", remote)
        if tree == repo.git.rev_parse(f"{base}^{{tree}}"):
            return PushOutcome("unchanged", remote, "the files are already on the base branch")
        sha = repo.git.commit_tree(tree, "-p", base, "-m", pub.message)
        lease = f"--force-with-lease=refs/heads/{pub.branch}:{remote or ''}"
        repo.git.push("--porcelain", lease, "origin", f"{sha}:refs/heads/{pub.branch}")
        return PushOutcome("pushed", sha)

    def _foreign_commits(self, repo: git.Repo, base: str, remote: str) -> list[str]:
        """Return the shas on the branch since it left `base` that the bot did not author."""
        return [
            commit.hexsha
            for commit in repo.iter_commits(f"{base}..{remote}")
            if (commit.author.name, commit.author.email) != self._author
        ]


def _remote_head(repo: git.Repo, branch: str) -> str | None:
    """Return the sha of `branch` on origin as cloned, or None when there is no such branch."""
    ref = f"refs/remotes/origin/{branch}"
    listed: str = repo.git.for_each_ref("--format=%(objectname)", ref)
    return listed.strip() or None


def _tree_with(repo: git.Repo, base: str, files: Mapping[str, str]) -> str:
    """Return the tree id of `base` with `files` written over it."""
    repo.git.checkout("--quiet", "--detach", base)
    root = Path(repo.working_tree_dir or ".")
    for name, text in files.items():
        try:  # no symlink the repo committed is followed, and nothing lands outside the clone
            write_inside(root, name, text)
        except TreePathError as exc:
            raise PublishError(f"refusing to write outside the working tree: {exc}") from None
    repo.git.add("--", *[str(_safe_path(name)) for name in files])
    tree: str = repo.git.write_tree()
    return tree


def _safe_path(name: str) -> PurePosixPath:
    """Return a repo-relative path, refusing absolute paths, `..` and the `.git` directory."""
    try:
        return PurePosixPath(*parts_of(name))
    except TreePathError as exc:
        raise PublishError(f"refusing to write outside the working tree: {exc}") from None


def _holds(repo: git.Repo, remote: str, base: str, tree: str) -> bool:
    """Return whether the branch already has `tree` on top of the current `base`."""
    if repo.git.rev_parse(f"{remote}^{{tree}}") != tree:
        return False
    return bool(repo.is_ancestor(repo.commit(base), repo.commit(remote)))


def _blocked_reason(branch: str, shas: list[str]) -> str:
    """Return why publishing stops: the branch holds commits other authors made."""
    noun = "commit" if len(shas) == 1 else "commits"
    listed = ", ".join(sha[:7] for sha in shas)
    return f"{branch} has {len(shas)} {noun} by other authors ({listed})"
