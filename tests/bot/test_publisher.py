"""The publisher, against real git repos on the GitHub stand-in over smart HTTP."""

from __future__ import annotations

from pathlib import Path

import git
import pytest
from kevolve.bot.publisher import Publication, Publisher, PublishError, PushOutcome, branch_name
from kevolve.bot.remote import GitRemote

from tests.standin import auth, gitrepo
from tests.standin.fixtures import World, git_env

BRANCH = "kevolve/softmax/h100"
KERNEL = "kernels/softmax_kevolve.py"
BOT = ("kevolve[bot]", "kevolve[bot]@users.noreply.github.com")


def _url(world: World, token: str | None = None) -> str:
    """Return the repo's clone URL with a fresh installation token (or the one given), as a
    person's git would use it."""
    value = token or auth.issue_token(world.standin.state, world.installation).value
    return world.standin.clone_url(world.repo, value)


def _remote(world: World, token: str | None = None) -> GitRemote:
    """The bot's remote: the plain clone URL and, apart, a fresh token (or the one given)."""
    value = token or auth.issue_token(world.standin.state, world.installation).value
    return GitRemote(world.standin.clone_url(world.repo), value)


def _publication(text: str, message: str = "Faster softmax\n\n1.8x on H100.") -> Publication:
    """Return a publication of one kernel file on BRANCH cut from main."""
    return Publication(branch=BRANCH, files={KERNEL: text}, message=message, base="main")


def _publish(world: World, workdir: Path, pub: Publication) -> PushOutcome:
    """Publish with a fresh token and check the clone directory was cleaned up."""
    outcome = Publisher(workdir, env=git_env()).publish(_remote(world), pub)
    assert list(workdir.iterdir()) == []
    return outcome


def _show(world: World, sha: str, path: str) -> str:
    """Return a file's content at a commit of the stand-in's bare repo."""
    return gitrepo.git("show", f"{sha}:{path}", cwd=world.repo.git_dir)


def _human_commit(world: World, into: Path) -> str:
    """Push a commit by alice onto BRANCH; return its sha."""
    clone = git.Repo.clone_from(_url(world), into, branch=BRANCH, env=git_env())
    clone.git.update_environment(**git_env())
    Path(into, "NOTES.md").write_text("tuned by hand\n")
    clone.index.add(["NOTES.md"])
    alice = git.Actor("Alice", "alice@example.com")
    sha = clone.index.commit("Hand tuning", author=alice, committer=alice).hexsha
    clone.git.push("origin", f"HEAD:refs/heads/{BRANCH}")
    return sha


def test_branch_name_is_a_safe_ref() -> None:
    assert branch_name("softmax", "H100 80GB") == "kevolve/softmax/h100-80gb"
    assert branch_name("Layer Norm", "..a100~^:sxm..") == "kevolve/layer-norm/a100-sxm"
    with pytest.raises(ValueError):
        branch_name("softmax", "~~")


def test_first_publish_creates_branch_with_one_bot_commit(
    github_standin: World, tmp_path: Path
) -> None:
    base = gitrepo.branch_sha(github_standin.repo.git_dir, "main")
    outcome = _publish(github_standin, tmp_path / "work", _publication("v1\n"))
    assert outcome.status == "pushed" and outcome.reason is None
    assert gitrepo.branch_sha(github_standin.repo.git_dir, BRANCH) == outcome.sha
    assert outcome.sha is not None
    info = gitrepo.commit_info(github_standin.repo.git_dir, outcome.sha)
    assert info.parents == [base]
    assert (info.author_name, info.author_email) == BOT
    assert (info.committer_name, info.committer_email) == BOT
    assert info.message == "Faster softmax\n\n1.8x on H100."
    assert _show(github_standin, outcome.sha, KERNEL) == "v1\n"


def test_new_content_replaces_the_bot_commit(github_standin: World, tmp_path: Path) -> None:
    base = gitrepo.branch_sha(github_standin.repo.git_dir, "main")
    first = _publish(github_standin, tmp_path / "work", _publication("v1\n"))
    second = _publish(github_standin, tmp_path / "work", _publication("v2\n", "Even faster"))
    assert second.status == "pushed" and second.sha not in (None, first.sha)
    assert second.sha is not None
    assert gitrepo.branch_sha(github_standin.repo.git_dir, BRANCH) == second.sha
    info = gitrepo.commit_info(github_standin.repo.git_dir, second.sha)
    assert (info.parents, info.message) == ([base], "Even faster")
    assert _show(github_standin, second.sha, KERNEL) == "v2\n"


def test_identical_content_is_unchanged(github_standin: World, tmp_path: Path) -> None:
    first = _publish(github_standin, tmp_path / "work", _publication("v1\n"))
    again = _publish(github_standin, tmp_path / "work", _publication("v1\n"))
    assert (again.status, again.sha) == ("unchanged", first.sha)
    assert gitrepo.branch_sha(github_standin.repo.git_dir, BRANCH) == first.sha


def test_branch_is_rebuilt_on_a_moved_base(github_standin: World, tmp_path: Path) -> None:
    first = _publish(github_standin, tmp_path / "work", _publication("v1\n"))
    clone = git.Repo.clone_from(_url(github_standin), tmp_path / "main", env=git_env())
    Path(tmp_path / "main" / "CHANGELOG.md").write_text("news\n")
    clone.index.add(["CHANGELOG.md"])
    alice = git.Actor("Alice", "alice@example.com")
    moved = clone.index.commit("News", author=alice, committer=alice).hexsha
    clone.git.push(_url(github_standin), "HEAD:refs/heads/main", env=git_env())
    again = _publish(github_standin, tmp_path / "work", _publication("v1\n"))
    assert again.status == "pushed" and again.sha != first.sha
    assert again.sha is not None
    assert gitrepo.commit_info(github_standin.repo.git_dir, again.sha).parents == [moved]


def test_a_person_commit_blocks_publishing(github_standin: World, tmp_path: Path) -> None:
    _publish(github_standin, tmp_path / "work", _publication("v1\n"))
    human = _human_commit(github_standin, tmp_path / "human")
    outcome = _publish(github_standin, tmp_path / "work", _publication("v2\n"))
    assert (outcome.status, outcome.sha) == ("blocked", human)
    assert outcome.reason == f"{BRANCH} has 1 commit by other authors ({human[:7]})"
    assert gitrepo.branch_sha(github_standin.repo.git_dir, BRANCH) == human


def test_bad_token_raises_a_redacted_error(github_standin: World, tmp_path: Path) -> None:
    token = "ghs_not_a_real_token_0123456789"
    publisher = Publisher(tmp_path / "work", env=git_env())
    with pytest.raises(PublishError) as failed:
        publisher.publish(_remote(github_standin, token), _publication("v1\n"))
    assert token not in str(failed.value)
    assert failed.value.__suppress_context__
    assert list((tmp_path / "work").iterdir()) == []
    assert gitrepo.branch_sha(github_standin.repo.git_dir, BRANCH) is None


def test_paths_outside_the_tree_are_refused(github_standin: World, tmp_path: Path) -> None:
    pub = Publication(branch=BRANCH, files={"../evil.py": "x"}, message="m", base="main")
    with pytest.raises(PublishError, match="outside the working tree"):
        _publish(github_standin, tmp_path / "work", pub)


def test_checkout_yields_the_tree_at_a_branch_or_commit_and_removes_it(
    github_standin: World, tmp_path: Path
) -> None:
    publisher = Publisher(tmp_path / "work", env=git_env())
    main = gitrepo.branch_sha(github_standin.repo.git_dir, "main")
    assert main is not None
    pushed = _publish(github_standin, tmp_path / "work", _publication("v1\n"))
    assert pushed.sha is not None
    with publisher.checkout(_remote(github_standin), "refs/heads/main") as tree:
        assert tree.sha == main and not (tree.root / KERNEL).exists()
    with publisher.checkout(_remote(github_standin), pushed.sha) as tree:
        assert tree.sha == pushed.sha and (tree.root / KERNEL).read_text() == "v1\n"
    assert list((tmp_path / "work").iterdir()) == []
    unknown = publisher.checkout(_remote(github_standin), "0" * 40)
    with pytest.raises(PublishError, match="0" * 40), unknown:
        pass
    assert list((tmp_path / "work").iterdir()) == []


def test_no_file_of_a_publishing_clone_holds_the_token(
    github_standin: World, tmp_path: Path
) -> None:
    """The token reaches git per command: neither the checkout a merge reads nor the clone
    that pushes keeps it in `.git/config` or anywhere else."""
    remote = _remote(github_standin)
    seen: list[Path] = []

    class Watching(Publisher):
        def _publish(self, repo: git.Repo, pub: Publication) -> PushOutcome:
            root = Path(repo.working_tree_dir or ".")
            seen.extend(p for p in root.rglob("*") if p.is_file() and _holds(p, remote.token))
            outcome = super()._publish(repo, pub)
            seen.extend(p for p in root.rglob("*") if p.is_file() and _holds(p, remote.token))
            return outcome

    outcome = Watching(tmp_path / "work", env=git_env()).publish(remote, _publication("v1\n"))
    assert outcome.status == "pushed"
    with Publisher(tmp_path / "work", env=git_env()).checkout(remote, "refs/heads/main") as tree:
        seen.extend(p for p in tree.root.rglob("*") if p.is_file() and _holds(p, remote.token))
    assert seen == []


def _holds(path: Path, token: str) -> bool:
    return token.encode() in path.read_bytes()
