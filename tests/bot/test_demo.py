"""`kevolve demo` as a newcomer runs it (one op here, to keep CI short): a fresh repository, a
branch with one commit for the winner, and a pull request body on disk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import git

ROOT = Path(__file__).resolve().parents[2]


def demo(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KEVOLVE_CACHE_DIR": str(cwd / "cache")}
    argv = [sys.executable, "-m", "bot.cli", "demo", *args]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_demo_leaves_a_branch_and_a_pull_request_body_per_op(tmp_path: Path) -> None:
    done = demo(tmp_path, "--op", "softmax", "--budget", "2", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "kevolve-demo"
    body = out / "pull-requests" / "softmax.md"
    assert f"pull request body: {body}" in done.stdout
    assert "nothing was timed" in done.stdout
    repo = git.Repo(out / "repo")
    assert repo.active_branch.name == "main" and not repo.is_dirty()
    [commit] = list(repo.iter_commits("main..kevolve/softmax/cpu"))
    assert commit.author.name == "kevolve[bot]"
    assert list(commit.stats.files) == ["demo_kernels/softmax.py"]
    published = repo.git.show("kevolve/softmax/cpu:demo_kernels/softmax.py")
    assert published != repo.git.show("main:demo_kernels/softmax.py")
    text = body.read_text()
    assert text.startswith("# kevolve: new softmax kernel (correctness only, not timed)")
    assert "## Correctness" in text and "--device cpu --no-time" in text

    again = demo(tmp_path, "--op", "softmax", "--budget", "1", "--device", "cpu")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "kevolve-demo-2" / "repo").is_dir()  # a second run never reuses the first
    assert "the current kernel stayed the best; nothing to propose" in again.stdout


def test_an_unknown_op_is_a_usage_error(tmp_path: Path) -> None:
    done = demo(tmp_path, "--op", "sofmax", "--device", "cpu", "--out", str(tmp_path / "d"))
    assert done.returncode == 2
    assert done.stderr.startswith("kevolve: error: ")
    assert "the demo has no such op. Fix: did you mean 'softmax'?" in done.stderr
    assert not (tmp_path / "d").exists()
