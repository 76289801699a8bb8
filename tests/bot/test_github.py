"""The GitHub interface: the PyGithub app client against the stand-in, and its in-memory fake."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import git
import github
import pytest
from kevolve.bot.github import AppClient, GitHub, GitHubError, SelfHostedRunner, retry_delay
from kevolve.bot.remote import GitRemote

from tests.fakes.github import FakeGitHub
from tests.standin import gitrepo
from tests.standin.fixtures import (
    World,
    build_world,
    create_repo,
    git_env,
    install,
    open_issue,
)

REPO = "acme/kernels"
BRANCH = "kevolve/softmax/h100"


def _client(
    world: World,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> AppClient:
    """Return an app client for the world's installation, without pauses between requests."""
    app, api = world.app, world.standin.urls.api
    return AppClient(
        app.app_id,
        app.private_key,
        world.installation.id,
        api,
        throttle=False,
        sleep=sleep,
        clock=clock,
    )


def _clone(remote: GitRemote, into: Path) -> git.Repo:
    """Clone over HTTP with git identity set, the token per command; no credential prompts."""
    env = {**git_env(), **remote.env()}
    clone = git.Repo.clone_from(remote.url, into, env=env)
    clone.git.update_environment(**env)
    with clone.config_writer() as config:
        config.set_value("user", "name", "kevolve[bot]")
        config.set_value("user", "email", "bot@example.com")
    return clone


def _push_branch(client: AppClient, into: Path, branch: str) -> str:
    """Clone with the client's URL, commit one file, push it to `branch`; return the sha."""
    clone = _clone(client.clone_url(REPO, write=True), into)
    Path(clone.working_tree_dir or ".", "faster.py").write_text(f"# {branch}\n")
    clone.index.add(["faster.py"])
    sha = clone.index.commit(f"Faster on {branch}").hexsha
    clone.git.push("origin", f"HEAD:refs/heads/{branch}")
    return sha


@dataclass
class Side:
    """One implementation of GitHub under test and a way to push a branch to it."""

    github: GitHub
    push: Callable[[str], str]  # branch -> sha


@pytest.fixture(params=["fake", "real"])
def side(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Side]:
    """The fake and the real client, each with `main` and a way to push new branches."""
    if request.param == "fake":
        fake = FakeGitHub()
        fake.push(REPO, "main", "0" * 40)

        def push(branch: str) -> str:
            fake.push(REPO, branch, "1" * 40)
            return "1" * 40

        yield Side(fake, push)
        return
    world = build_world(tmp_path / "github")
    try:
        client = _client(world)
        yield Side(client, lambda branch: _push_branch(client, tmp_path / branch, branch))
        world.standin.assert_clean()
    finally:
        world.standin.stop()


def test_pull_request_lifecycle(side: Side) -> None:
    gh = side.github
    sha = side.push(BRANCH)
    other = side.push("feature/x")
    assert gh.find_pull(REPO, BRANCH) is None
    pr = gh.open_pull(REPO, BRANCH, "main", "Faster softmax", "2x")
    assert (pr.head, pr.head_sha, pr.state) == (BRANCH, sha, "open")
    assert gh.find_pull(REPO, BRANCH) == pr
    with pytest.raises(GitHubError) as again:
        gh.open_pull(REPO, BRANCH, "main", "Again", "")
    assert again.value.status == 422
    gh.open_pull(REPO, "feature/x", "main", "Human work", "")
    assert [p.number for p in gh.open_pulls(REPO, "kevolve/")] == [pr.number]
    assert gh.find_pull(REPO, "feature/x") is not None and other
    gh.update_pull(REPO, pr.number, "Faster softmax (2.1x)", "2.1x")
    gh.close_pull(REPO, pr.number, "Superseded")
    assert gh.find_pull(REPO, BRANCH) is None
    assert gh.open_pulls(REPO, "kevolve/") == []


def test_missing_branch_is_a_422(side: Side) -> None:
    with pytest.raises(GitHubError) as refused:
        side.github.open_pull(REPO, "kevolve/nothing/here", "main", "t", "b")
    assert refused.value.status == 422


def test_fake_records_comments_checks_and_reactions() -> None:
    fake = FakeGitHub()
    fake.roles[(REPO, "bob")] = "write"
    cid = fake.comment(REPO, 3, "Working on it")
    fake.react(REPO, cid, "eyes")
    fake.edit_comment(REPO, cid, "Done")
    check = fake.start_check(REPO, "a" * 40, "kevolve / softmax", "Searching", "...")
    fake.update_check(REPO, check, "Round 2", "1.4x so far")
    fake.finish_check(REPO, check, "success", "2.1x", "done")
    assert (fake.comments[cid].body, fake.comments[cid].reactions) == ("Done", ["eyes"])
    assert (fake.checks[check].status, fake.checks[check].conclusion) == ("completed", "success")
    assert (fake.permission(REPO, "bob"), fake.permission(REPO, "eve")) == ("write", "none")
    with pytest.raises(GitHubError):
        fake.finish_check(REPO, check, "done", "t", "s")


def test_permission_uses_the_role(github_standin: World) -> None:
    client = _client(github_standin)
    roles = [client.permission(REPO, u) for u in ("alice", "bob", "carol", "nobody")]
    assert roles == ["admin", "write", "read", "none"]


def test_comment_edit_and_react(github_standin: World) -> None:
    number = open_issue(github_standin.standin, github_standin.repo, "bob").number
    client = _client(github_standin)
    cid = client.comment(REPO, number, "Working on it")
    client.react(REPO, cid, "eyes")
    client.edit_comment(REPO, cid, "Done")
    stored = github_standin.standin.state.comments[cid]
    assert (stored.body, [r.content for r in stored.reactions]) == ("Done", ["eyes"])


def test_check_run_progress_and_outcome(github_standin: World) -> None:
    client = _client(github_standin)
    sha = _head(github_standin)
    check = client.start_check(REPO, sha, "kevolve / softmax / h100", "Searching", "round 0")
    client.update_check(REPO, check, "Round 3", "1.4x so far")
    run = github_standin.standin.state.check_runs[check]
    assert (run.status, run.output["title"]) == ("in_progress", "Round 3")
    client.finish_check(REPO, check, "success", "2.1x", "done")
    assert (run.status, run.conclusion, run.output["summary"]) == ("completed", "success", "done")


def _head(world: World) -> str:
    """Return the sha of the seeded repo's default branch."""
    sha = gitrepo.branch_sha(world.repo.git_dir, "main")
    assert sha is not None
    return sha


def test_default_branch_runners_and_clone_url(github_standin: World, tmp_path: Path) -> None:
    client = _client(github_standin)
    assert client.default_branch(REPO) == "main"
    runners = client.runners(REPO)
    assert [(r.name, r.labels) for r in runners] == [("gpu-1", ("self-hosted", "linux", "h100"))]
    assert all(isinstance(r, SelfHostedRunner) for r in runners)
    remote = client.clone_url(REPO)
    assert remote.url == f"{github_standin.standin.urls.web}/{REPO}.git"  # no credential in it
    assert remote.token.startswith("ghs_") and remote.token not in repr(remote)
    clone = _clone(remote, tmp_path / "clone")
    assert clone.head.commit.hexsha == _head(github_standin)


def test_throttled_call_is_retried_after_the_injected_sleep(github_standin: World) -> None:
    slept: list[float] = []
    client = _client(github_standin, sleep=slept.append)
    client.default_branch(REPO)  # fetch the token first
    github_standin.standin.throttle_next(2, retry_after=7)
    assert client.default_branch(REPO) == "main"
    assert slept == [7.0, 7.0]
    github_standin.standin.throttle_next(4, retry_after=1)
    with pytest.raises(GitHubError) as refused:
        client.default_branch(REPO)
    assert refused.value.status == 403 and slept == [7.0, 7.0, 1.0, 1.0, 1.0]


def test_rate_limit_headers_give_the_wait() -> None:
    assert retry_delay({"Retry-After": "30"}, now=0) == 30
    reset = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1100"}
    assert retry_delay(reset, now=1000) == 100
    assert retry_delay({**reset, "X-RateLimit-Reset": "999999"}, now=0) == 900  # capped
    assert retry_delay({"X-RateLimit-Remaining": "12"}, now=0) is None


def test_error_messages_never_hold_the_token(github_standin: World) -> None:
    client = _client(github_standin)
    token = client.clone_url(REPO).token
    with pytest.raises(GitHubError) as refused:
        client.open_pull(REPO, token, "main", "t", "b")  # the stand-in echoes the head back
    assert refused.value.status == 422
    assert token not in str(refused.value) and "***" in str(refused.value)


def test_token_near_expiry_is_refreshed(github_standin: World) -> None:
    now = [time.time()]
    client = _client(github_standin, clock=lambda: now[0])
    first = client.clone_url(REPO)
    assert client.clone_url(REPO) == first
    assert len(github_standin.standin.state.tokens) == 2  # the API's and the repo's for git
    now[0] += 3600 - 60  # within the refresh margin of the one-hour token
    assert client.clone_url(REPO) != first  # (the stand-in dates new tokens by the real clock)


def _push_with(remote: GitRemote, clone: git.Repo, branch: str) -> str:
    """Try to push the clone's HEAD to `branch` of `remote` with its token; git's stderr, or
    "" when the push went through."""
    env = {**git_env(), **remote.env()}
    try:
        clone.git.push(remote.url, f"HEAD:refs/heads/{branch}", env=env)
    except git.GitCommandError as refused:
        return str(refused.stderr)
    return ""


def test_a_clone_holds_no_token_and_its_token_reaches_no_other_repo(
    github_standin: World, tmp_path: Path
) -> None:
    """A job's checkout is readable by repo code: nothing in it may hold a token, and the
    token git used must not open another repo of the same installation, nor push."""
    world = github_standin
    other = create_repo(world.standin, world.installation, "secrets")
    client = _client(world)
    remote = client.clone_url(REPO)
    clone = _clone(remote, tmp_path / "clone")
    every_token = set(world.standin.state.tokens)
    assert not _files_holding(tmp_path / "clone", every_token)  # .git/config included
    Path(tmp_path / "clone" / "payload.py").write_text("print('owned')\n")
    clone.index.add(["payload.py"])
    clone.index.commit("payload")

    # The read token: this repo's contents alone. No push, not even here.
    other_remote = GitRemote(world.standin.clone_url(other), remote.token)
    assert "not found" in _push_with(other_remote, clone, "main").lower()
    assert "403" in _push_with(remote, clone, "kevolve/stolen")
    api = github.Github(auth=github.Auth.Token(remote.token), base_url=world.standin.urls.api)
    with pytest.raises(github.GithubException) as hidden:
        api.get_repo(other.full_name)
    assert hidden.value.status == 404
    assert api.get_repo(REPO).full_name == REPO  # the token does work on its own repo

    # The write token the publisher gets pushes here, and still nowhere else.
    writer = client.clone_url(REPO, write=True)
    assert _push_with(writer, clone, "kevolve/pushed") == ""
    stolen = GitRemote(world.standin.clone_url(other), writer.token)
    assert "not found" in _push_with(stolen, clone, "main").lower()
    assert gitrepo.branch_sha(other.git_dir, "main") != clone.head.commit.hexsha
    assert not _files_holding(tmp_path / "clone", set(world.standin.state.tokens))
    world.standin.assert_clean()


def test_a_token_for_a_repo_outside_the_installation_is_refused(github_standin: World) -> None:
    world = github_standin
    stranger = install(world.standin, world.app.app_id, "globex")
    create_repo(world.standin, stranger, "kernels")
    client = _client(world)
    with pytest.raises(GitHubError) as refused:
        client.clone_url("globex/kernels")
    assert refused.value.status == 404  # the client's own installation cannot see it


def _files_holding(root: Path, secrets: set[str]) -> list[Path]:
    """Every file under `root` whose bytes contain one of `secrets`."""
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and any(s.encode() in path.read_bytes() for s in secrets)
    ]
