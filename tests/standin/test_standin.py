"""The GitHub stand-in, driven by PyGithub and GitPython exactly as the bot drives GitHub."""

from __future__ import annotations

from pathlib import Path

import git
import pytest
from github import Auth, BadCredentialsException, Github, GithubException, GithubIntegration
from github.Repository import Repository

from tests.standin import gitrepo
from tests.standin.fixtures import World, add_org_runner, create_app, git_env, open_issue

BRANCH = "kevolve/softmax/h100"


def _github(auth: Auth.Auth, api: str) -> Github:
    """Return a PyGithub client for the stand-in, without PyGithub's pauses between requests."""
    return Github(auth=auth, base_url=api, seconds_between_requests=0, seconds_between_writes=0)


def _client(world: World) -> Github:
    """Return a PyGithub client authenticated as the app's installation on the stand-in."""
    app_auth = Auth.AppAuth(world.app.app_id, world.app.private_key)
    installation_auth = app_auth.get_installation_auth(world.installation.id)
    return _github(installation_auth, world.standin.urls.api)


def _repo(world: World) -> Repository:
    """Return the seeded repo through PyGithub."""
    return _client(world).get_repo(world.repo.full_name)


def _token(world: World) -> str:
    """Return a fresh installation token, asked for with the app JWT."""
    integration = GithubIntegration(
        auth=Auth.AppAuth(world.app.app_id, world.app.private_key),
        base_url=world.standin.urls.api,
    )
    return integration.get_access_token(world.installation.id).token


def _clone(world: World, into: Path) -> git.Repo:
    """Clone the seeded repo over HTTP with an installation token."""
    url = world.standin.clone_url(world.repo, _token(world))
    clone = git.Repo.clone_from(url, into, env=git_env())
    clone.git.update_environment(**git_env())
    with clone.config_writer() as config:
        config.set_value("user", "name", "kevolve[bot]")
        config.set_value("user", "email", "bot@example.com")
    return clone


def _commit_file(clone: git.Repo, name: str, text: str) -> str:
    """Write, add and commit one file; return the new head sha."""
    Path(clone.working_tree_dir or ".", name).write_text(text)
    clone.index.add([name])
    return clone.index.commit(f"Add {name}").hexsha


def test_app_jwt_gets_app_and_installation_token(github_standin: World) -> None:
    integration = GithubIntegration(
        auth=Auth.AppAuth(github_standin.app.app_id, github_standin.app.private_key),
        base_url=github_standin.standin.urls.api,
    )
    assert integration.get_app().slug == "kevolve"
    token = integration.get_access_token(github_standin.installation.id)
    assert token.token.startswith("ghs_")
    assert token.expires_at is not None


def test_installation_reads_repo_and_seed_commit(github_standin: World) -> None:
    repo = _repo(github_standin)
    assert (repo.full_name, repo.default_branch, repo.private) == ("acme/kernels", "main", True)
    assert repo.clone_url == github_standin.standin.clone_url(github_standin.repo)
    head = repo.get_branch("main").commit
    assert repo.get_commit(head.sha).commit.message == "Initial commit"


def test_collaborator_permissions(github_standin: World) -> None:
    repo = _repo(github_standin)
    assert repo.get_collaborator_permission("alice") == "admin"
    assert repo.get_collaborator_permission("bob") == "write"
    assert repo.get_collaborator_permission("carol") == "read"
    assert repo.get_collaborator_role_name("bob") == "write"


def test_comment_is_edited_and_reacted_to(github_standin: World) -> None:
    number = open_issue(github_standin.standin, github_standin.repo, "bob").number
    issue = _repo(github_standin).get_issue(number)
    assert (issue.user.login, issue.pull_request) == ("bob", None)
    comment = issue.create_comment("Working on it")
    comment.edit("Done")
    reaction = comment.create_reaction("eyes")
    stored = github_standin.standin.state.comments[comment.id]
    assert (stored.body, stored.user.login, comment.body) == ("Done", "kevolve[bot]", "Done")
    assert reaction.content == "eyes"
    assert [r.content for r in stored.reactions] == ["eyes"]


def test_pushed_branch_shows_new_sha_and_gets_one_pull_request(
    github_standin: World, tmp_path: Path
) -> None:
    clone = _clone(github_standin, tmp_path / "clone")
    sha = _commit_file(clone, "faster.py", "print('fast')\n")
    clone.git.push("origin", f"HEAD:refs/heads/{BRANCH}")
    repo = _repo(github_standin)
    assert repo.get_branch(BRANCH).commit.sha == sha
    pr = repo.create_pull(title="Faster softmax", body="2x", head=BRANCH, base="main")
    assert pr.head.sha == sha and pr.number == 1
    listed = repo.get_pulls(state="open", head=f"acme:{BRANCH}")
    assert [p.number for p in listed] == [pr.number]
    with pytest.raises(GithubException) as again:
        repo.create_pull(title="Again", body="", head=BRANCH, base="main")
    assert again.value.status == 422
    pr.edit(state="closed")
    assert repo.get_pull(pr.number).state == "closed"
    assert list(repo.get_pulls(state="open", head=f"acme:{BRANCH}")) == []


def test_check_run_is_created_and_completed(github_standin: World) -> None:
    repo = _repo(github_standin)
    sha = repo.get_branch("main").commit.sha
    run = repo.create_check_run(
        "kevolve / softmax / h100", sha, status="in_progress", output={"title": "t", "summary": "s"}
    )
    assert (run.status, run.app.slug) == ("in_progress", "kevolve")
    assert run.conclusion is None
    run.edit(conclusion="success", output={"title": "2.1x", "summary": "done"})
    again = github_standin.standin.state.check_runs[run.id]
    assert (run.status, run.conclusion, again.output["title"]) == ("completed", "success", "2.1x")


def test_runners_are_listed(github_standin: World) -> None:
    runners = list(_repo(github_standin).get_self_hosted_runners())
    assert [r.name for r in runners] == ["gpu-1"]
    assert [label["name"] for label in runners[0].labels] == ["self-hosted", "linux", "h100"]


def test_push_without_a_valid_token_is_refused(github_standin: World, tmp_path: Path) -> None:
    clone = _clone(github_standin, tmp_path / "clone")
    _commit_file(clone, "sneaky.py", "x = 1\n")
    for token in (None, "ghs_not_a_token"):
        url = github_standin.standin.clone_url(github_standin.repo, token)
        with pytest.raises(git.GitCommandError):
            clone.git.push(url, f"HEAD:refs/heads/{BRANCH}")
    assert gitrepo.branch_sha(github_standin.repo.git_dir, BRANCH) is None


def test_bad_credentials_get_401(github_standin: World) -> None:
    api = github_standin.standin.urls.api
    stranger = _github(Auth.Token("ghs_forged"), api)
    with pytest.raises(BadCredentialsException):
        stranger.get_repo(github_standin.repo.full_name)
    other_key = create_app(github_standin.standin, slug="other").private_key
    forged = GithubIntegration(
        auth=Auth.AppAuth(github_standin.app.app_id, other_key), base_url=api
    )
    with pytest.raises(GithubException) as refused:
        forged.get_app()
    assert refused.value.status == 401


def test_secondary_rate_limit_is_retried_after_retry_after(github_standin: World) -> None:
    client = _client(github_standin)
    github_standin.standin.throttle_next(1, retry_after=0)
    assert client.get_repo(github_standin.repo.full_name).name == "kernels"
    remaining, limit = client.rate_limiting
    assert limit == 5000 and 0 < remaining < limit


def test_a_response_that_breaks_the_spec_is_caught(github_standin: World) -> None:
    repo = _repo(github_standin)
    github_standin.standin.tamper_next(lambda body: {**body, "permission": 7})
    repo.get_collaborator_permission("bob")
    violations = list(github_standin.standin.violations)
    assert len(violations) == 1 and "collaborators/bob/permission" in violations[0]
    with pytest.raises(AssertionError, match="broke the spec"):
        github_standin.standin.assert_clean()
    github_standin.standin.violations.clear()


def test_org_runners_need_the_organization_and_the_permission(github_standin: World) -> None:
    add_org_runner(github_standin.standin, "acme", "shared-1", ["self-hosted", "l40s"])
    client = _client(github_standin).withLazy(True)  # no GET /orgs/{org}: not stood in
    runners = list(client.get_organization("acme").get_self_hosted_runners())
    assert [(r.name, [label["name"] for label in r.labels]) for r in runners] == [
        ("shared-1", ["self-hosted", "l40s"])
    ]
    with pytest.raises(GithubException) as other:
        list(client.get_organization("elsewhere").get_self_hosted_runners())
    assert other.value.status == 404
    del github_standin.standin.state.apps[github_standin.app.app_id].permissions[
        "organization_self_hosted_runners"
    ]
    with pytest.raises(GithubException) as refused:
        list(client.get_organization("acme").get_self_hosted_runners())
    assert refused.value.status == 403
    assert "Retry-After" not in (refused.value.headers or {})  # a refusal, not a rate limit
