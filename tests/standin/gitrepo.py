"""Real bare git repositories on disk, read with the `git` command."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_SEED_IDENTITY = {
    "GIT_AUTHOR_NAME": "Seed",
    "GIT_AUTHOR_EMAIL": "seed@example.com",
    "GIT_COMMITTER_NAME": "Seed",
    "GIT_COMMITTER_EMAIL": "seed@example.com",
}
_FIELDS = ["%H", "%T", "%P", "%an", "%ae", "%aI", "%cn", "%ce", "%cI", "%B"]


@dataclass(frozen=True)
class CommitInfo:
    """What the REST API tells about one commit."""

    sha: str
    tree: str
    parents: list[str]
    author_name: str
    author_email: str
    author_date: str
    committer_name: str
    committer_email: str
    committer_date: str
    message: str


def git(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run git in `cwd` and return its stdout; raise CalledProcessError on failure."""
    full_env = {**os.environ, **(env or {})}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=full_env, capture_output=True, text=True, check=True
    )
    return done.stdout


def create_bare(git_dir: Path, default_branch: str) -> None:
    """Create a bare repo that accepts pushes over smart HTTP."""
    git_dir.mkdir(parents=True)
    git("init", "--bare", f"--initial-branch={default_branch}", ".", cwd=git_dir)
    git("config", "http.receivepack", "true", cwd=git_dir)


def seed(git_dir: Path, source: Path, branch: str) -> str:
    """Commit a copy of `source` as the first commit on `branch` of `git_dir`; return its sha."""
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch) / "work"
        shutil.copytree(source, work, ignore=shutil.ignore_patterns("__pycache__", ".git"))
        git("init", f"--initial-branch={branch}", ".", cwd=work)
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", "Initial commit", cwd=work, env=_SEED_IDENTITY)
        git("push", "-q", str(git_dir), f"{branch}:{branch}", cwd=work)
        return git("rev-parse", "HEAD", cwd=work).strip()


def resolve(git_dir: Path, ref: str) -> str | None:
    """Return the commit sha that `ref` (a branch or sha) names, or None."""
    try:
        out = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=git_dir)
    except subprocess.CalledProcessError:
        return None
    return out.strip() or None


def branch_sha(git_dir: Path, branch: str) -> str | None:
    """Return the tip of `branch`, or None when there is no such branch."""
    return resolve(git_dir, f"refs/heads/{branch}")


def commit_info(git_dir: Path, sha: str) -> CommitInfo:
    """Read one commit's metadata."""
    out = git("show", "-s", f"--format={'%x00'.join(_FIELDS)}", sha, cwd=git_dir)
    sha, tree, parents, an, ae, ad, cn, ce, cd, message = out.split("\x00")
    return CommitInfo(sha, tree, parents.split(), an, ae, ad, cn, ce, cd, message.rstrip("\n"))
