"""A repo's kevolve config as the bot reads it: from a shallow fetch of one commit, never run."""

from __future__ import annotations

import tempfile
from pathlib import Path

import git
from kevolve.bot.github import GitHub
from kevolve.bot.repoconfig import RepoConfig, load_config


def read_config(workdir: Path, github: GitHub, repo: str, sha: str) -> RepoConfig:
    """The ops and settings a repo's config declares at `sha`; a SpecError when it is broken."""
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workdir) as scratch:
        clone = git.Repo.init(scratch)
        remote = github.clone_url(repo)
        clone.git.update_environment(**remote.env())
        try:
            clone.git.fetch("--quiet", "--depth=1", remote.url, sha)
        except git.GitCommandError as exc:
            raise RuntimeError(f"cannot fetch {repo} at {sha}: {remote.redact(str(exc))}") from None
        clone.git.checkout("--quiet", "--detach", "FETCH_HEAD")
        return load_config(Path(scratch))


def head_sha(github: GitHub, repo: str) -> str:
    """The commit at the head of the repo's default branch, from one `git ls-remote`."""
    branch = github.default_branch(repo)
    remote = github.clone_url(repo)
    lister = git.Git()
    lister.update_environment(**remote.env())
    try:
        listed = str(lister.ls_remote(remote.url, f"refs/heads/{branch}"))
    except git.GitCommandError as exc:
        raise RuntimeError(f"cannot list {repo}: {remote.redact(str(exc))}") from None
    if not listed.strip():
        raise RuntimeError(f"{repo} has no default branch {branch!r} to read its config from")
    return listed.split()[0]
