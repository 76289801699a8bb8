"""Pull request and check run texts for each outcome a maintainer meets: the gate passed, the gate
missed, a kernel still slower than torch.compile, a repo that requires beating torch.compile, and
a CPU run where nothing was timed; words and numbers pinned."""

from __future__ import annotations

import shutil
from importlib.metadata import version
from pathlib import Path
from typing import Any

import git
import pytest
from kevolve.bot.messages import Messages
from kevolve.bot.proposals import Caps, PullRequests
from kevolve.bot.publisher import Publisher, Tree
from kevolve.bot.repoconfig import load_settings
from kevolve.bot.reproduce import Checkout, reproduce_lines
from kevolve.bot.storage import Storage
from kevolve.bot.vetting import Unfit, vet
from kevolve.harness.evaluation import CompileMode, Evaluation, Verdict
from kevolve.harness.spec.load import SpecError
from kevolve.harness.spec.problem import Problem
from kevolve.runners.intake import CheckedResult, read_result

from tests.bot import fixtures
from tests.bot.conftest import CLOCK
from tests.fakes.github import LocalGitHub

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = Messages(ROOT / "templates" / "github")
DEMO = ROOT / "examples" / "demo"
OP = "bias_gelu"
KERNEL = "demo_kernels/bias_gelu.py"
ORIGINAL = (DEMO / KERNEL).read_text()
TUNED = ORIGINAL.replace("BLOCK = 1024", "BLOCK = 4096")
REPO = "octo/kernels"
FIRST_LINE_GPU = (
    "kevolve found a kernel **1.31x** faster than the current `softmax` on NVIDIA H100 80GB "
    "HBM3 (geometric mean over 2 timed cases)"
)


def _arm(mode: CompileMode, median: float | None, error: str | None = None) -> dict[str, Any]:
    """A torch.compile arm as the judge reports it: timed at `median` ms, or failed."""
    timing = None
    if median is not None:
        timing = {
            "n": 50,
            "median_ms": median,
            "q10_ms": median * 0.98,
            "q90_ms": median * 1.03,
            "min_ms": median * 0.97,
        }
    return {"mode": mode.value, "timing": timing, "compile_s": 3.5, "error": error}


def _compiled(result: dict[str, Any], *cases: tuple[float | None, float | None]) -> None:
    """Give the best's timed cases torch.compile arms: (default, max-autotune) medians each."""
    for timing, (default, autotune) in zip(
        result["best"]["evaluation"]["timings"], cases, strict=True
    ):
        failed = None if autotune is not None else "BackendCompilerFailed: <b>no</b> [x](y)"
        timing["compiled"] = [
            _arm(CompileMode.DEFAULT, default),
            _arm(CompileMode.MAX_AUTOTUNE, autotune, failed),
        ]


# The timed fixture's candidate runs 0.0060 ms and 0.0521 ms on its two cases.


def test_gate_passed_and_faster_than_torch_compile() -> None:
    result = fixtures.timed_result()
    _compiled(result, (0.0079, 0.0071), (0.0700, 0.0650))
    body = MESSAGES.pr_body(result, fixtures.REPRO)
    # 0.0071 / 0.0060 = 1.183 and 0.0650 / 0.0521 = 1.248: 1.215 geometric mean.
    assert body.splitlines()[0] == (
        f"{FIRST_LINE_GPU}, and 1.22x faster than torch.compile of the PyTorch reference."
    )
    assert (
        "| 4096x1024 | float16 | 0.0118 | 0.00790 | 0.00710 | 0.00852 | 0.00600 "
        "| 1.42x [1.38–1.46] | 1.18x | 95% |"
    ) in body
    assert (
        "| 8192x4096 | float16 | 0.0712 | 0.0700 | 0.0650 | 0.0630 | 0.0521 "
        "| 1.21x [1.19–1.23] | 1.25x | 87% |"
    ) in body
    assert "Slower than torch.compile" not in body and "seed's evaluation" not in body
    assert MESSAGES.pr_title(result, "h100") == "kevolve: softmax 1.31x faster on h100"
    title, summary = MESSAGES.check_summary(result)
    assert title == "softmax: 1.31x faster on NVIDIA H100 80GB HBM3"
    assert summary.startswith(
        f"The best candidate, `{fixtures.BEST_ID}`, is 1.31x faster than the current `softmax` "
        "on NVIDIA H100 80GB HBM3 (geometric mean over 2 timed cases), and 1.22x faster than "
        "torch.compile of the PyTorch reference.\n\nThe publish gate passed"
    )


def test_gate_missed_names_each_reason() -> None:
    regressed = fixtures.slower(fixtures.timed_result())
    title, summary = MESSAGES.check_summary(regressed)
    assert title == "softmax: nothing to publish"
    assert summary.startswith(
        f"The best candidate, `{fixtures.BEST_ID}`, runs at 0.98x the speed of the current "
        "`softmax` on NVIDIA H100 80GB HBM3 (geometric mean over 2 timed cases)"
    )
    # The gate's reasons are escaped as text (the brackets would otherwise make a link).
    assert "Not published:\n- 4096x1024 float16 regressed: speedup 0.800x \\[0.750-0.850\\]\n" in (
        summary
    )
    small = fixtures.timed_result()
    for timing, interval in zip(
        small["best"]["evaluation"]["timings"], ([1.01, 1.5], [1.02, 1.3]), strict=True
    ):
        timing["speedup_ci"] = interval
    title, summary = MESSAGES.check_summary(small)
    assert title == "softmax: nothing to publish"
    assert (
        "- the gain is too small: 1.015x at the low end of the 95% intervals (geometric mean "
        "over 2 timed cases), below the 1.05x this repo asks for (min_speedup)\n"
    ) in summary


def test_slower_than_torch_compile_everywhere_says_so_in_title_and_first_line() -> None:
    result = fixtures.timed_result()
    _compiled(result, (0.0050, 0.0046), (0.0400, None))
    # 0.0046 / 0.0060 = 0.767 and 0.0400 / 0.0521 = 0.768.
    assert MESSAGES.pr_title(result, "h100") == (
        "kevolve: softmax 1.31x faster on h100, still slower than torch.compile"
    )
    body = MESSAGES.pr_body(result, fixtures.REPRO)
    assert body.splitlines()[0] == (
        f"{FIRST_LINE_GPU}, **but it is still slower than torch.compile** of the PyTorch "
        "reference on every timed case (it runs at 0.77x of torch.compile's speed, geometric "
        "mean): compiling the reference may serve you better than this kernel."
    )
    assert (
        "| 4096x1024 | float16 | 0.0118 | 0.00500 | 0.00460 | 0.00852 | 0.00600 "
        "| 1.42x [1.38–1.46] | **0.77x** | 95% |"
    ) in body
    assert "| 0.0712 | 0.0400 | — | 0.0630 | 0.0521 | 1.21x [1.19–1.23] | **0.77x** |" in body
    assert (
        "**Slower than torch.compile** on 4096x1024 float16 (0.77x of torch.compile "
        "max-autotune); 8192x4096 float16 (0.77x of torch.compile default).\n"
    ) in body
    # The failure's text came from the runner: shown, escaped, never as markup.
    assert (
        "- torch.compile max-autotune on 8192x4096 float16: BackendCompilerFailed: "
        "\\<b\\>no\\</b\\> \\[x\\](y)\n"
    ) in body
    title, summary = MESSAGES.check_summary(result)
    assert (
        title == "softmax: 1.31x faster on NVIDIA H100 80GB HBM3, still slower than torch.compile"
    )
    assert summary.startswith(
        f"The best candidate, `{fixtures.BEST_ID}`, is 1.31x faster than the current `softmax` "
        "on NVIDIA H100 80GB HBM3 (geometric mean over 2 timed cases), but still slower than "
        "torch.compile of the PyTorch reference on 2 of 2 (0.77x of its speed, geometric mean).\n"
    )


def test_slower_than_torch_compile_on_some_cases_counts_them() -> None:
    result = fixtures.timed_result()
    _compiled(result, (0.0050, 0.0046), (0.0600, 0.0610))
    # 0.0046 / 0.0060 = 0.767 and 0.0600 / 0.0521 = 1.152: 0.940 geometric mean.
    assert MESSAGES.pr_title(result, "h100") == (
        "kevolve: softmax 1.31x faster on h100, slower than torch.compile on 1 of 2 cases"
    )
    first = MESSAGES.pr_body(result, fixtures.REPRO).splitlines()[0]
    assert first.endswith(
        "**but it is still slower than torch.compile** of the PyTorch reference on 1 of 2 timed "
        "cases (it runs at 0.94x of torch.compile's speed, geometric mean): compiling the "
        "reference may serve you better than this kernel."
    )
    title, _ = MESSAGES.check_summary(result)
    assert title.endswith(", slower than torch.compile on 1 of 2 cases")


def test_torch_compile_measured_in_the_seed_evaluation_is_shown_and_said() -> None:
    result = fixtures.timed_result()
    seed = {**result["best"]["evaluation"], "candidate_hash": fixtures.SEED_ID}
    seed["timings"] = [dict(t) for t in seed["timings"]]
    result["baseline"] = seed
    _compiled({"best": {"evaluation": seed}}, (0.0050, 0.0046), (0.0600, 0.0610))
    for timing in result["best"]["evaluation"]["timings"]:
        timing["compiled"] = []  # the best's own evaluation did not run the arm
    body = MESSAGES.pr_body(result, fixtures.REPRO)
    assert "| 0.00500 | 0.00460 | 0.00852 | 0.00600 | 1.42x [1.38–1.46] | **0.77x** |" in body
    assert "| 0.0600 | 0.0610 | 0.0630 | 0.0521 | 1.21x [1.19–1.23] | 1.15x |" in body
    assert (
        "Where the best's own evaluation did not time torch.compile, its columns come from the "
        "seed's evaluation"
    ) in body
    assert MESSAGES.pr_title(result, "h100").endswith(", slower than torch.compile on 1 of 2 cases")


def test_torch_compile_not_measured_shows_dashes_and_why() -> None:
    body = MESSAGES.pr_body(fixtures.timed_result(), fixtures.REPRO)
    assert (
        "— in both torch.compile columns: not measured on 8192x4096 float16 (the compile arm "
        "did not run).\n"
    ) in body


def test_cpu_run_claims_no_speed_and_still_names_the_machine_and_versions() -> None:
    result = fixtures.untimed_result()
    body = MESSAGES.pr_body(result, fixtures.REPRO_CPU)
    assert body.splitlines()[0].startswith(
        "kevolve found a `softmax` kernel that passes every correctness check. **Nothing was "
        "timed**"
    )
    assert "## Benchmark" not in body and "faster" not in body and "torch.compile" not in body
    assert "- Device: x86_64 (CPU, Triton interpreter)\n- torch 2.5.1+cpu, triton 3.1.0\n" in body
    assert "| 4096x1024 | float32 | 5 | 9.77e-08 | 3.10e-07 | 2.20e-08 | 1.00e-04 | 1.00e-05 " in (
        body
    )
    assert (
        ".venv/bin/kevolve check . --op softmax --candidate kernels/softmax.py --baseline "
        "/tmp/kevolve-baseline.py --dtype float32 --device cpu --no-time\n"
    ) in body
    assert "draws its inputs from a secret seed, new on every run, so the error figures vary" in (
        body
    )
    assert MESSAGES.pr_title(result) == "kevolve: new softmax kernel (correctness only, not timed)"
    title, summary = MESSAGES.check_summary(result)
    assert title == "softmax: correct, not timed"
    assert "nothing was timed (correctness-only run on CPU), so nothing says it is faster" in (
        summary
    )


def test_correctness_rows_name_the_dimensions_and_show_the_tolerance_applied() -> None:
    result = fixtures.timed_result()
    evaluation = result["best"]["evaluation"]
    evaluation["dims"] = ["rows", "cols"]
    body = MESSAGES.pr_body(result, fixtures.REPRO)
    assert "| shape (rows×cols) | dtype | trials | max abs err |" in body
    assert ("| 1×50257 | bfloat16 | 5 | 0 | 0 | 0 | 1.60e-02 | 1.00e-02 | 8.00e-03 | ✅ |") in body
    assert "| shape (rows×cols) | dtype | eager (ms) |" in body
    assert "atol × rms(ref) + rtol × |ref|" in body


def test_the_reproduce_section_checks_the_candidate_against_the_baseline_from_a_clone() -> None:
    body = MESSAGES.pr_body(fixtures.timed_result(), fixtures.REPRO)
    section = body.split("## Reproduce\n", 1)[1].split("\n---\n", 1)[0]
    assert section.splitlines()[4:10] == [
        "git clone https://github.com/octo/kernels.git kevolve-repro && cd kevolve-repro",
        "git fetch origin kevolve/softmax/h100 && git checkout --detach FETCH_HEAD",
        f"git show {fixtures.JOB_SHA}:kernels/softmax.py > /tmp/kevolve-baseline.py",
        f"python3 -m venv .venv && .venv/bin/pip install 'kevolve[gpu]=={_version()}'",
        ".venv/bin/kevolve check . --op softmax --candidate kernels/softmax.py --baseline "
        "/tmp/kevolve-baseline.py --dtype float16 --shape 4096x1024 --shape 8192x4096 "
        "--device cuda",
        "```",
    ]


def test_reproduce_lines_quote_names_and_refuse_a_fence_breaker() -> None:
    best = _evaluation()
    odd = Checkout("kernels/my kernel.py", "kevolve/k/h100", "abc123")
    assert reproduce_lines("k", odd, best, timed=False)[1] == (
        "git show 'abc123:kernels/my kernel.py' > /tmp/kevolve-baseline.py"
    )
    with pytest.raises(ValueError, match="code block"):
        reproduce_lines("k", Checkout("kernels/`x`.py", "kevolve/k/h100", "abc123"), best, False)


# What a repo that requires beating torch.compile gets.


@pytest.fixture
def compile_required(tmp_path: Path) -> Tree:
    """The demo repo whose config asks every proposed kernel to beat torch.compile."""
    repo = tmp_path / "demo"
    shutil.copytree(DEMO, repo, ignore=shutil.ignore_patterns("__pycache__"))
    config = repo / "pyproject.toml"
    config.write_text(config.read_text() + '\n[tool.kevolve]\nrequire_beats = "compile"\n')
    return Tree(repo, "c0ffee" + "0" * 34)


class Approves:
    """The bot's own check of a winner, answering that it is correct (the harness's own check
    of this kernel runs in the proposals tests)."""

    def check(self, problem: Problem, source: str) -> str | None:
        return None


def _demo_result(compile_ms: float | None) -> dict[str, Any]:
    """A timed bias_gelu result (candidate 0.01 ms on each case) whose seed's evaluation timed
    torch.compile at `compile_ms` on each case (None: not at all)."""
    result = fixtures.demo_result(OP, TUNED, 7)
    seed = {**result["best"]["evaluation"], "candidate_hash": ""}
    seed["timings"] = [dict(t) for t in seed["timings"]]
    if compile_ms is not None:
        for timing in seed["timings"]:
            timing["compiled"] = [_arm(CompileMode.DEFAULT, compile_ms)]
    result["baseline"] = seed
    return result


def test_require_beats_compile_refuses_a_kernel_slower_than_torch_compile(
    compile_required: Tree,
) -> None:
    assert load_settings(compile_required.root).require_beats == "compile"
    with pytest.raises(Unfit) as refused:
        vet(compile_required, OP, _read(_demo_result(0.008)), Approves(), untimed=False)
    reason = str(refused.value)
    assert reason.startswith(
        "publish gate: 8192x8192 bfloat16 (0.80x of torch.compile default) is slower than "
        'torch.compile (require_beats = "compile"); '
    )
    assert reason.count("is slower than torch.compile") == 6  # every timed case
    with pytest.raises(Unfit, match=r"torch.compile was not measured on 8192x8192 bfloat16 "):
        vet(compile_required, OP, _read(_demo_result(None)), Approves(), untimed=False)
    vetted = vet(compile_required, OP, _read(_demo_result(0.012)), Approves(), untimed=False)
    assert vetted.gate.passed


def test_without_require_beats_a_kernel_slower_than_torch_compile_is_proposed_and_says_so(
    tmp_path: Path,
) -> None:
    tree = Tree(DEMO, "c0ffee" + "0" * 34)
    assert load_settings(DEMO).require_beats == "kernel"
    result = _read(_demo_result(0.008))
    assert vet(tree, OP, result, Approves(), untimed=False).gate.passed
    assert MESSAGES.pr_title(result, "h100").endswith(", still slower than torch.compile")


def test_require_beats_compile_opens_no_pull_request_and_says_why(
    compile_required: Tree, tmp_path: Path, storage: Storage
) -> None:
    work = git.Repo.init(compile_required.root, initial_branch="main")
    work.git.add("-A")
    work.index.commit("demo kernels")
    bare = work.clone(tmp_path / "bare.git", bare=True)
    github = LocalGitHub(Path(bare.git_dir))
    github.push(REPO, "main", bare.head.commit.hexsha)
    proposer = PullRequests(
        github, Publisher(tmp_path / "work"), MESSAGES, storage, Caps(), clock=lambda: CLOCK
    )
    job_id = storage.add_job(REPO, bare.head.commit.hexsha, OP, "h100", "push", 10)
    job = storage.job(job_id)
    assert job is not None
    result = _demo_result(0.008)
    result["job"]["id"] = job_id
    proposed = proposer.propose(job, OP, read_result(result, job_id))
    assert proposed.status == "skipped" and proposed.pull is None
    assert 'is slower than torch.compile (require_beats = "compile")' in proposed.reason
    assert github.pulls == []
    heads = git.Repo(bare.git_dir).git.for_each_ref("--format=%(refname:short)", "refs/heads/")
    assert heads.split() == ["main"]  # nothing pushed
    title, summary = MESSAGES.check_summary(result)
    assert (
        title == "bias_gelu: 1.31x faster on NVIDIA H100 80GB HBM3, still slower than torch.compile"
    )
    assert "but still slower than torch.compile of the PyTorch reference on 6 of 6" in summary


def test_require_beats_must_name_a_known_requirement(tmp_path: Path) -> None:
    repo = tmp_path / "demo"
    shutil.copytree(DEMO, repo, ignore=shutil.ignore_patterns("__pycache__"))
    config = repo / "pyproject.toml"
    config.write_text(config.read_text() + '\n[tool.kevolve]\nrequire_beats = "compiler"\n')
    with pytest.raises(SpecError) as caught:
        load_settings(repo)
    assert str(caught.value) == (
        f"{config}: [tool.kevolve] field 'require_beats': unknown requirement 'compiler'. "
        'Fix: did you mean \'compile\'? write require_beats = "compile" (or "kernel", the '
        "default)"
    )


def _read(result: dict[str, Any]) -> CheckedResult:
    """The result as the bot reads it."""
    return read_result(result)


def _evaluation() -> Evaluation:
    return Evaluation(verdict=Verdict.CORRECT, reason="", problem="k", device="cpu")


def _version() -> str:
    return version("kevolve")
