"""`kevolve demo` as a newcomer runs it (one op here, to keep CI short): a fresh repository, a
branch with one commit for the winner, and a pull request body on disk; on a GPU, one timed case
per op."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import git
import pytest
from kevolve.bot.showcase import GPU_BUDGET, DemoOptions, kevolve_toml, run_demo, timed_cases
from kevolve.harness.search.status import StopKind
from kevolve.harness.spec.load import load_problems
from kevolve.harness.spec.problem import Tolerance
from kevolve.runners.intake import CheckedResult, read_result
from kevolve.runners.job import JobSpec
from kevolve.runners.runner import Cancelled, RunnerError

from tests.bot.fixtures import slower, timed_result, with_best
from tests.bot.processes import alive, descendants, group

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"


def demo(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KEVOLVE_CACHE_DIR": str(cwd / "cache")}
    env["KEVOLVE_PROGRESS_EVERY_S"] = "0.01"
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "demo", *args]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_demo_leaves_a_branch_and_a_pull_request_body_per_op(tmp_path: Path) -> None:
    done = demo(tmp_path, "--op", "softmax", "--budget", "2", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "kevolve-demo"
    body = out / "pull-requests" / "softmax.md"
    assert f"pull request body: {body}" in done.stdout
    assert "nothing was timed" in done.stdout
    assert "timed at one shape" not in done.stdout  # on CPU nothing is narrowed
    # Progress from the state file while the op runs (every 0.01 s here).
    assert re.search(
        r"\n    [12]/2 judged( \(correct \d folded\))?(, about \d+ s to go)?\n", done.stdout
    )
    assert "best so far" not in done.stdout  # nothing was timed: nothing is best
    assert not (out / "repo" / "kevolve.toml").exists()
    repo = git.Repo(out / "repo")
    assert repo.active_branch.name == "main" and not repo.is_dirty()
    [commit] = list(repo.iter_commits("main..kevolve/softmax/cpu"))
    assert commit.author.name == "kevolve[bot]"
    assert list(commit.stats.files) == ["demo_kernels/softmax.py"]
    published = repo.git.show("kevolve/softmax/cpu:demo_kernels/softmax.py")
    assert published != repo.git.show("main:demo_kernels/softmax.py")
    text = body.read_text()
    assert text.startswith("# Not proposed: nothing was timed (softmax)\n\n> **Not proposed")
    assert "On a GPU, `kevolve demo` times it against the current kernel" in text
    assert "softmax: not proposed: nothing was timed (CPU)" in done.stdout
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


def test_on_a_gpu_each_op_is_timed_in_its_first_dtype_at_its_first_shape() -> None:
    declared = load_problems(DEMO)
    timed = timed_cases(declared, narrowed=True)
    assert [(p.name, p.dtypes, p.shapes) for p in timed] == [
        ("softmax", ("bfloat16",), ((8192, 8192),)),
        ("rmsnorm", ("bfloat16",), ((8192, 8192),)),
        ("bias_gelu", ("bfloat16",), ((8192, 8192),)),
        ("matmul_bias_relu", ("bfloat16",), ((4096, 4096, 4096),)),
    ]
    for before, after in zip(declared, timed, strict=True):
        assert after.check_shapes == before.check_shapes  # correctness is never narrowed
        assert dataclasses.replace(after, dtypes=before.dtypes, shapes=before.shapes) == before
    assert timed_cases(declared, narrowed=False) == declared


def test_the_narrowed_config_reads_back_as_the_same_problems(tmp_path: Path) -> None:
    shutil.copytree(DEMO, tmp_path / "repo", ignore=shutil.ignore_patterns("__pycache__"))
    timed = timed_cases(load_problems(DEMO), narrowed=True)
    tolerance = {"bfloat16": Tolerance(rtol=1e-2, atol=1e-05, norm=3e-3)}
    timed[0] = dataclasses.replace(timed[0], tolerances=tolerance, allowed_imports=("math",))
    (tmp_path / "repo" / "kevolve.toml").write_text(kevolve_toml(timed))
    read = load_problems(tmp_path / "repo")  # kevolve.toml comes before pyproject.toml
    moved = [dataclasses.replace(p, root=DEMO, source=None) for p in read]
    assert moved == [dataclasses.replace(p, source=None) for p in timed]


class RecordingRunner:
    """Records what each search would see in the demo repository, then fails it (no GPU here)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, tuple[str, ...], tuple[tuple[int, ...], ...]]] = []

    def run(self, spec: JobSpec, cancelled: Cancelled) -> CheckedResult:
        [problem] = [p for p in load_problems(Path(spec.checkout)) if p.name == spec.op]
        self.seen.append((spec.op, spec.budget, problem.dtypes, problem.shapes))
        raise RunnerError(f"job {spec.job_id}: no GPU in this test")


def test_a_gpu_demo_searches_the_narrowed_ops_and_says_so(tmp_path: Path) -> None:
    runner, said = RecordingRunner(), list[str]()
    ops = ("softmax", "matmul_bias_relu")
    options = DemoOptions(out=tmp_path / "d", device="cuda", ops=ops, cache_dir=tmp_path)
    outcomes = run_demo(options, runner, said.append)
    assert runner.seen == [
        ("softmax", GPU_BUDGET, ("bfloat16",), ((8192, 8192),)),
        ("matmul_bias_relu", GPU_BUDGET, ("bfloat16",), ((4096, 4096, 4096),)),
    ]
    assert [o.summary for o in outcomes] == [
        "search failed: job 1: no GPU in this test",
        "search failed: job 2: no GPU in this test",
    ]
    assert all(o.failed and not o.paused for o in outcomes)
    assert said[1].startswith("kevolve demo: on a GPU each op runs in one dtype and is timed at")
    assert "--all-shapes" in said[1]
    assert said[2:4] == [
        "    softmax: bfloat16, timed at 8192x8192 "
        "(of 6 declared cases: bfloat16, float16, float32 at 8192x8192, 4096x32000)",
        "    matmul_bias_relu: bfloat16, timed at 4096x4096x4096 "
        "(of 4 declared cases: bfloat16, float16 at 4096x4096x4096, 8192x4096x1024)",
    ]
    repo = git.Repo(tmp_path / "d" / "repo")
    narrowed, original = list(repo.iter_commits("main"))
    assert list(narrowed.stats.files) == ["kevolve.toml"]
    assert str(original.message).startswith("The demo kernels, as their authors wrote them")

    wide = RecordingRunner()
    options = dataclasses.replace(options, out=tmp_path / "wide", all_shapes=True)
    run_demo(options, wide, lambda line: None)
    assert wide.seen[0] == (
        "softmax",
        GPU_BUDGET,
        ("bfloat16", "float16", "float32"),
        ((8192, 8192), (4096, 32000)),
    )
    assert not (tmp_path / "wide" / "repo" / "kevolve.toml").exists()


class PausedRunner:
    """Answers each search as one stopped (`stop`, paused by default) with the words a search
    paused for `n` replies of its reply queue gives."""

    def __init__(self, n: int, stop: StopKind = StopKind.PAUSED) -> None:
        self.reason = f"waiting for {n} {'reply' if n == 1 else 'replies'}"  # harness.search.engine
        self.stop = stop

    def run(self, spec: JobSpec, cancelled: Cancelled) -> CheckedResult:
        paused = {"problem": spec.op, "device": "cpu", "timed": False, "evaluated": 1}
        stopped = {**paused, "stop_reason": self.reason, "stop": self.stop.value}
        return read_result(stopped, spec.job_id)


@pytest.mark.parametrize(("n", "words"), [(1, "1 reply"), (3, "3 replies")])
def test_a_search_paused_for_replies_is_reported_and_nothing_is_published(
    tmp_path: Path, n: int, words: str
) -> None:
    said: list[str] = []
    options = DemoOptions(out=tmp_path / "d", device="cpu", ops=("softmax",), cache_dir=tmp_path)
    [outcome] = run_demo(options, PausedRunner(n), said.append)
    assert (outcome.summary, outcome.branch, outcome.pr_body) == (
        f"paused: waiting for {words}",
        None,
        None,
    )
    assert said[-1].startswith(f"    paused: waiting for {words} in ")
    assert outcome.paused and not outcome.failed
    assert git.Repo(tmp_path / "d" / "repo").git.branch("--list").split() == ["*", "main"]


def test_a_search_is_paused_by_its_stop_kind_not_by_the_words_of_its_reason(
    tmp_path: Path,
) -> None:
    options = DemoOptions(out=tmp_path / "d", device="cpu", ops=("softmax",), cache_dir=tmp_path)
    [outcome] = run_demo(options, PausedRunner(3, StopKind.BUDGET), lambda line: None)
    assert not outcome.paused
    assert outcome.summary == (
        "no correct candidate other than the current kernel; nothing to propose"
    )


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_the_demo_its_search_and_every_child(
    tmp_path: Path, stop: signal.Signals
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KEVOLVE_CACHE_DIR": str(tmp_path / "cache")}
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "demo"]
    argv += ["--op", "softmax", "--budget", "500"]
    demo = subprocess.Popen(
        [*argv, "--device", "cpu"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, which must be empty at the end
    )
    try:
        state = tmp_path / "kevolve-demo" / "state" / "softmax.sqlite"
        deadline = time.monotonic() + 120
        while not (state.exists() and len(descendants(demo.pid)) >= 2):  # the search is under way
            assert demo.poll() is None, demo.communicate()[0]
            assert time.monotonic() < deadline, "the demo's search never started"
            time.sleep(0.1)
        under = descendants(demo.pid)
        demo.send_signal(stop)
        output, _ = demo.communicate(timeout=60)
        deadline = time.monotonic() + 30
        while (left := {p for p in under if alive(p)} | group(demo.pid)) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.1)
        assert not left, f"still running after {stop.name}: {sorted(left)}"
        assert demo.returncode == 128 + stop, output
        assert f"kevolve demo: {stop.name}: stopped while searching softmax" in output
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()


class RefusedRunner:
    """Answers each search with a timed result whose first case is slower than the kernel."""

    def run(self, spec: JobSpec, cancelled: Cancelled) -> CheckedResult:
        kernel = (DEMO / "demo_kernels" / f"{spec.op}.py").read_text() + "# tuned\n"
        return read_result(slower(with_best(timed_result(), kernel, None)), spec.job_id)


def test_a_timed_winner_the_gate_refuses_is_not_committed_and_its_file_says_why(
    tmp_path: Path,
) -> None:
    said: list[str] = []
    options = DemoOptions(out=tmp_path / "d", device="cpu", ops=("softmax",), cache_dir=tmp_path)
    [outcome] = run_demo(options, RefusedRunner(), said.append)
    assert outcome.branch is None and outcome.pr_body is not None
    assert "(not publishable: " in outcome.summary and outcome.summary.endswith("not committed")
    assert "slower" in outcome.summary  # the gate's own reason, not a generic one
    text = outcome.pr_body.read_text()
    assert text.startswith("# Not proposed: the publish gate was not passed (softmax)\n\n")
    assert "> **Not proposed: the publish gate was not passed** (" in text
    assert "## Benchmark" in text  # what the pull request would have held
    assert said[-1] == f"    no branch; what the pull request would have said: {outcome.pr_body}"
    # Nothing committed: the demo repo has main alone.
    assert git.Repo(tmp_path / "d" / "repo").git.branch("--list").split() == ["*", "main"]
