"""Builders for a GitHub world on the stand-in: an app and its key, an installation, repos."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.standin import gitrepo
from tests.standin.server import StandIn
from tests.standin.state import App, Installation, Issue, Repo, Runner

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
APP_PERMISSIONS = {
    "contents": "write",
    "pull_requests": "write",
    "issues": "write",
    "checks": "write",
    "actions": "write",
    "organization_self_hosted_runners": "read",  # the runners an organization shares
}
APP_EVENTS = ["push", "issue_comment", "pull_request", "workflow_job", "workflow_run"]


@dataclass(frozen=True)
class AppCredentials:
    """What the bot is configured with: the app id and its PEM private key."""

    app_id: int
    private_key: str


@dataclass(frozen=True)
class World:
    """A running stand-in with one app installed on one account that owns one seeded repo."""

    standin: StandIn
    app: AppCredentials
    installation: Installation
    repo: Repo


def create_app(
    standin: StandIn, slug: str = "kevolve", owner: str = "kevolve-dev"
) -> AppCredentials:
    """Register a GitHub App with an RSA key pair of its own; return its id and private key."""
    key = _key_for(slug)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    state = standin.state
    app = App(
        state.next_id(), slug, slug.capitalize(), state.add_user(owner, "Organization"), public
    )
    app.permissions, app.events = dict(APP_PERMISSIONS), list(APP_EVENTS)
    state.apps[app.id] = app
    return AppCredentials(app.id, private.decode())


@functools.cache
def _key_for(slug: str) -> rsa.RSAPrivateKey:
    """Return the RSA key of an app slug, made once per process (making one takes up to 0.5 s)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def install(standin: StandIn, app_id: int, account: str) -> Installation:
    """Install an app on an account (an organization here)."""
    state = standin.state
    installation = Installation(state.next_id(), app_id, state.add_user(account, "Organization"))
    state.installations[installation.id] = installation
    return installation


def create_repo(
    standin: StandIn, installation: Installation, name: str, source: Path = DEMO
) -> Repo:
    """Create a repo owned by the installation's account, seeded with one commit of `source`."""
    owner = installation.account
    git_dir = standin.git_root / owner.login / f"{name}.git"
    repo = Repo(standin.state.next_id(), owner, name, git_dir, installation.id)
    gitrepo.create_bare(git_dir, repo.default_branch)
    gitrepo.seed(git_dir, source, repo.default_branch)
    standin.state.repos[repo.full_name] = repo
    return repo


def add_collaborator(standin: StandIn, repo: Repo, login: str, role: str) -> None:
    """Give a user a role (read, triage, write, maintain, admin) on a repo."""
    standin.state.add_user(login)
    repo.roles[login] = role


def add_runner(standin: StandIn, repo: Repo, name: str, labels: list[str]) -> Runner:
    """Register a self-hosted runner on a repo."""
    runner = Runner(standin.state.next_id(), name, labels)
    repo.runners.append(runner)
    return runner


def add_org_runner(standin: StandIn, org: str, name: str, labels: list[str]) -> Runner:
    """Register a self-hosted runner on an organization (every repo of it may use it)."""
    runner = Runner(standin.state.next_id(), name, labels)
    standin.state.org_runners.setdefault(org, []).append(runner)
    return runner


def open_issue(standin: StandIn, repo: Repo, author: str, title: str = "Make it faster") -> Issue:
    """Open an issue by `author` on a repo."""
    state = standin.state
    number = state.next_issue_number(repo)
    issue = Issue(state.next_id(), number, repo, state.add_user(author), title)
    state.issues.append(issue)
    return issue


def build_world(root: Path) -> World:
    """Start a stand-in under `root` with app `kevolve` on `acme`, repo `acme/kernels`, users.

    Users: alice (admin), bob (write), carol (read); one runner labelled `h100`.
    """
    standin = StandIn(root).start()
    try:
        credentials = create_app(standin)
        installation = install(standin, credentials.app_id, "acme")
        repo = create_repo(standin, installation, "kernels")
        for login, role in (("alice", "admin"), ("bob", "write"), ("carol", "read")):
            add_collaborator(standin, repo, login, role)
        add_runner(standin, repo, "gpu-1", ["self-hosted", "linux", "h100"])
    except BaseException:
        standin.stop()
        raise
    return World(standin, credentials, installation, repo)


def git_env() -> dict[str, str]:
    """Return an environment for git commands that never prompts for credentials."""
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_ASKPASS", "SSH_ASKPASS")}
    return {**env, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
