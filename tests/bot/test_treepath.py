"""Writing into a tree: no symlink a repo committed is followed, nothing lands outside the clone,
in `bot.treepath` and through the real publisher on a real git repository."""

from __future__ import annotations

import os
from pathlib import Path

import git
import pytest
from kevolve.bot.publisher import Publication, Publisher, PublishError
from kevolve.bot.remote import GitRemote
from kevolve.bot.treepath import TreePathError, checked, read_inside, write_inside

ALICE = git.Actor("Alice", "alice@example.com")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory of the host beside the tree, holding a file the bot must never touch."""
    where = tmp_path / "outside"
    where.mkdir()
    (where / "victim.py").write_text("the host's file\n")
    return where


def test_paths_that_leave_the_tree_or_pass_a_symlink_are_refused(
    tmp_path: Path, outside: Path
) -> None:
    root = tmp_path / "tree"
    (root / "kernels").mkdir(parents=True)
    (root / "kernels" / "softmax.py").write_text("# kernel\n")
    os.symlink(outside, root / "linked")
    os.symlink(outside / "victim.py", root / "kernels" / "pointed.py")
    (root / "kernels" / "dir.py").mkdir()
    refused = {
        "/etc/passwd": "not a path relative",
        "../outside/victim.py": "'..'",
        "kernels/../../outside/victim.py": "'..'",
        ".git/config": "no .git",
        "linked/victim.py": "linked is a symlink",
        "linked/new.py": "linked is a symlink",
        "kernels/pointed.py": "kernels/pointed.py is a symlink",
        "kernels/softmax.py/x.py": "is not a directory",
        "kernels/dir.py": "is not a regular file",
        "kernels/$(touch x).py": "is not allowed",
        "kernels/a\nb.py": "is not allowed",
        "": "not a path relative",
    }
    for name, why in refused.items():
        with pytest.raises(TreePathError, match=None) as caught:
            write_inside(root, name, "owned\n")
        assert why in str(caught.value), (name, str(caught.value))
    with pytest.raises(TreePathError, match="is a symlink"):
        read_inside(root, "kernels/pointed.py")
    assert [p.name for p in outside.iterdir()] == ["victim.py"]
    assert (outside / "victim.py").read_text() == "the host's file\n"

    write_inside(root, "kernels/new/deep.py", "fine\n")
    assert read_inside(root, "kernels/new/deep.py") == "fine\n"
    assert checked(root, "kernels/softmax.py") == root / "kernels" / "softmax.py"


def test_the_publisher_refuses_a_path_through_a_symlink_the_repo_committed(
    tmp_path: Path, outside: Path
) -> None:
    work = git.Repo.init(tmp_path / "src", initial_branch="main")
    (tmp_path / "src" / "kernels").mkdir()
    (tmp_path / "src" / "kernels" / "softmax.py").write_text("# kernel\n")
    os.symlink(outside, tmp_path / "src" / "linked")
    os.symlink(outside / "victim.py", tmp_path / "src" / "kernels" / "pointed.py")
    work.git.add("-A")
    work.index.commit("kernels and links", author=ALICE, committer=ALICE)
    bare = work.clone(tmp_path / "bare.git", bare=True)
    publisher = Publisher(tmp_path / "publish")
    for name in ("linked/owned.py", "linked/victim.py", "kernels/pointed.py"):
        publication = Publication("kevolve/softmax/h100", {name: "owned\n"}, "owned", "main")
        with pytest.raises(PublishError, match="is a symlink"):
            publisher.publish(GitRemote(str(bare.git_dir)), publication)
    assert [p.name for p in outside.iterdir()] == ["victim.py"]
    assert (outside / "victim.py").read_text() == "the host's file\n"
    assert not bare.git.for_each_ref("refs/heads/kevolve/")
