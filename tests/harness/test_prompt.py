"""Tests for harness.search.prompt: the exact prompt for a softmax context, and what it selects."""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any

import pytest
from kevolve.harness.evaluation import (
    CaseCheck,
    CaseTiming,
    Diagnostic,
    Evaluation,
    KernelInfo,
    Timing,
    Verdict,
)
from kevolve.harness.search.candidate import Candidate, Elite
from kevolve.harness.search.prompt import (
    MAX_ELITES,
    PromptBuilder,
    basis,
    knowledge_files,
    op_family,
    reference_source,
)
from kevolve.harness.search.proposal import Attempt, ProposalContext
from kevolve.harness.spec.load import load_problems
from kevolve.harness.spec.problem import Problem

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates" / "prompts"
EXPECTED = Path(__file__).parent / "expected" / "softmax_prompt.txt"
DEMO = ROOT / "examples" / "demo"
KERNELBENCH = ROOT / "examples" / "kernelbench"
H100: dict[str, Any] = {
    "device": "cuda",
    "name": "NVIDIA H100 80GB HBM3",
    "capability": "9.0",
    "memory_gib": 79.1,
    "sm_count": 132,
    "l2_bytes": 52428800,
    "ceilings": {"copy_gbps": 2950.3, "matmul_tflops": 712.4},
}


def demo(op: str) -> Problem:
    """A demo op's problem, loaded from the example repository's config."""
    return next(p for p in load_problems(DEMO) if p.name == op)


def kernelbench(name: str) -> Problem:
    """A KernelBench example's problem."""
    return load_problems(KERNELBENCH / f"{name}.py")[0]


def timed(problem: str, speedup: float) -> Evaluation:
    """A correct, timed evaluation with one case and one kernel."""
    case = CaseTiming(
        shape=[8192, 8192],
        dtype="bfloat16",
        candidate=Timing(n=50, median_ms=0.1234, q10_ms=0.12, q90_ms=0.13, min_ms=0.11),
        baseline=Timing(n=50, median_ms=0.2, q10_ms=0.19, q90_ms=0.21, min_ms=0.18),
        speedup=speedup,
        roofline_fraction=0.71,
    )
    kernel = KernelInfo("_online_softmax_kernel", launches=1, n_regs=32, n_spills=0)
    return Evaluation(
        Verdict.CORRECT, "correct", problem, "cuda", timed=True, timings=[case], kernels=[kernel]
    )


def elite(source: str, score: float, problem: str = "softmax") -> Elite:
    """An elite of `source` with a timed evaluation."""
    return Elite(Candidate(source, proposer="llm:test"), score, timed(problem, score))


def failure(verdict: Verdict, source: str, *diagnostics: Diagnostic) -> Attempt:
    """A failed attempt with the given diagnostics."""
    ev = Evaluation(
        verdict, f"{verdict.value} (test)", "softmax", "cuda", diagnostics=[*diagnostics]
    )
    return Attempt(source, ev)


def softmax_context() -> ProposalContext:
    """The fixed context the pinned prompt is rendered from."""
    problem = demo("softmax")
    baseline = problem.kernel_path.read_text() if problem.kernel_path else ""
    online = (ROOT / "tests/corpus/softmax/good_online.py").read_text()
    best = elite(online, 1.62)
    seed = Elite(Candidate(baseline), 1.0, timed("softmax", 1.0))
    failures = (
        failure(
            Verdict.COMPILE_ERROR,
            "import triton\nx = tl.load(p)\n",
            Diagnostic("compile", "NameError: name 'tl' is not defined", 2),
        ),
        failure(
            Verdict.REJECTED,
            "import torch\n\ndef softmax(x):\n    return torch.softmax(x, -1)\n",
            Diagnostic("static", "torch.softmax computes with PyTorch", 4),
        ),
    )
    return ProposalContext(problem, baseline, (best, seed), best, failures, H100, 0, 3)


def render(ctx: ProposalContext) -> str:
    """Both messages as one text: role headers, then contents."""
    messages = PromptBuilder(TEMPLATES).messages(ctx)
    return "".join(f"=== {m['role']} ===\n{m['content']}" for m in messages)


def test_softmax_prompt_matches_the_pinned_text() -> None:
    text = render(softmax_context())
    expected = EXPECTED.read_text()
    diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True)))
    assert text == expected, f"prompt changed; if intended, rewrite {EXPECTED}:\n{diff}"


def test_messages_are_one_system_and_one_user_message() -> None:
    messages = PromptBuilder(TEMPLATES).messages(softmax_context())
    assert [m["role"] for m in messages] == ["system", "user"]


def test_prompt_without_elites_shows_the_baseline_for_editing() -> None:
    ctx = dataclasses.replace(softmax_context(), parents=(), best=None, failures=(), hardware=None)
    user = PromptBuilder(TEMPLATES).messages(ctx)[1]["content"]
    assert "The repository's current kernel" in user
    assert ctx.baseline_source.rstrip() in user
    assert "## Hardware" not in user and "## Recent failures" not in user


def test_cpu_hardware_and_untimed_elites_say_nothing_was_timed() -> None:
    ctx = softmax_context()
    untimed = dataclasses.replace(
        ctx.parents[0], evaluation=Evaluation(Verdict.CORRECT, "correct", "softmax", "cpu")
    )
    ctx = dataclasses.replace(ctx, parents=(untimed,), best=untimed, hardware={"device": "cpu"})
    user = PromptBuilder(TEMPLATES).messages(ctx)[1]["content"]
    assert "correct under the Triton interpreter (CPU); nothing was timed" in user
    assert "no GPU: kernels run under the Triton interpreter" in user
    assert "Per case" not in user


def test_failures_show_three_newest_with_the_located_line() -> None:
    located = Diagnostic("compile", "bad index", 3)
    attempts = tuple(
        failure(
            Verdict.COMPILE_ERROR, f"a = {i}\nb = 2\nc = x[{i}]\n", Diagnostic("log", "x"), located
        )
        for i in range(5)
    )
    ctx = dataclasses.replace(softmax_context(), failures=attempts)
    user = PromptBuilder(TEMPLATES).messages(ctx)[1]["content"]
    assert [f"`c = x[{i}]`" in user for i in range(5)] == [True, True, True, False, False]


def test_incorrect_failure_without_diagnostics_shows_the_failed_check() -> None:
    check = CaseCheck([3, 17], "float16", 3, False, failure="max abs error 0.5 at [0, 1]")
    ev = Evaluation(Verdict.INCORRECT, "wrong values", "softmax", "cpu", checks=[check])
    ctx = dataclasses.replace(softmax_context(), failures=(Attempt("x = 1\n", ev),))
    user = PromptBuilder(TEMPLATES).messages(ctx)[1]["content"]
    assert "- incorrect: wrong values\n  detail: max abs error 0.5 at [0, 1]" in user


def test_basis_edits_the_first_parent_and_shows_diverse_others() -> None:
    base = (ROOT / "tests/corpus/softmax/good_online.py").read_text()
    near = base.replace("BLOCK = 256", "BLOCK = 512")
    far = (DEMO / "demo_kernels/softmax.py").read_text()
    other = "import triton\n\n\ndef softmax(x):\n    return x\n"
    first, close, distant, fourth = (
        elite(s, 2 - i / 10) for i, s in enumerate((base, near, far, other))
    )
    ctx = dataclasses.replace(softmax_context(), parents=(first, close, first, distant, fourth))
    chosen = basis(ctx)
    assert chosen.source == base and chosen.current is first
    assert len(chosen.elites) == MAX_ELITES and chosen.elites[-1] is close  # most alike: last
    assert chosen.parent_ids[0] == first.candidate.id
    assert len(set(chosen.parent_ids)) == len(chosen.parent_ids) == 4


def test_basis_without_parents_is_the_best_else_the_baseline() -> None:
    ctx = softmax_context()
    assert basis(dataclasses.replace(ctx, parents=())).current is ctx.best
    empty = basis(dataclasses.replace(ctx, parents=(), best=None))
    assert empty.source == ctx.baseline_source and empty.parent_ids == ()


@pytest.mark.parametrize(
    ("op", "family"),
    [
        ("softmax", "row_reduction"),
        ("rmsnorm", "row_reduction"),
        ("bias_gelu", "elementwise"),
        ("matmul_bias_relu", "matmul"),
    ],
)
def test_op_family_of_the_demo_ops(op: str, family: str) -> None:
    problem = demo(op)
    assert op_family(problem, reference_source(problem)) == family


@pytest.mark.parametrize(
    ("name", "reference", "family"),
    [
        ("linear_relu", "", "matmul"),
        ("bmm", "", "matmul"),
        ("my-gemm", "", "matmul"),
        ("LayerNorm", "", "row_reduction"),
        ("summation", "", "elementwise"),
        ("op", "return torch.matmul(a, b)", "matmul"),
        ("op", "return a @ b", "matmul"),
        ("op", "return F.layer_norm(x, s)", "row_reduction"),
        ("op", "return x * 2", "elementwise"),
    ],
)
def test_op_family_by_name_then_reference_code(name: str, reference: str, family: str) -> None:
    problem = dataclasses.replace(demo("bias_gelu"), name=name)
    assert op_family(problem, reference) == family


@pytest.mark.parametrize(
    ("name", "family"),
    [("linear_relu", "matmul"), ("gelu_scale", "elementwise"), ("softmax", "row_reduction")],
)
def test_op_family_of_kernelbench_examples(name: str, family: str) -> None:
    problem = kernelbench(name)
    assert op_family(problem, reference_source(problem)) == family


def test_hopper_notes_only_on_compute_capability_9() -> None:
    ctx = dataclasses.replace(softmax_context(), failures=())
    assert knowledge_files(ctx, "") == ["row_reduction.md", "hopper.md"]
    a100 = {**H100, "capability": "8.0"}
    assert knowledge_files(dataclasses.replace(ctx, hardware=a100), "") == ["row_reduction.md"]
    assert knowledge_files(dataclasses.replace(ctx, hardware=None), "") == ["row_reduction.md"]


def test_triton_pitfalls_follow_a_recent_compile_error() -> None:
    ctx = dataclasses.replace(softmax_context(), hardware=None)
    assert knowledge_files(ctx, "")[-1] == "triton_pitfalls.md"
    wrong = failure(Verdict.INCORRECT, "x = 1\n")
    for failures in ((wrong,), (wrong, wrong, wrong, *ctx.failures)):
        assert "triton_pitfalls.md" not in knowledge_files(
            dataclasses.replace(ctx, failures=failures), ""
        )


def test_every_knowledge_file_exists() -> None:
    names = {"row_reduction.md", "elementwise.md", "matmul.md", "hopper.md", "triton_pitfalls.md"}
    assert {p.name for p in (TEMPLATES / "knowledge").glob("*.md")} >= names


def test_reference_source_of_a_repo_op_holds_its_definitions_and_constants() -> None:
    text = reference_source(demo("rmsnorm"))
    assert text.startswith("RMSNORM_EPS = 1e-6\n\ndef rmsnorm(")
    assert "def rmsnorm_inputs(" in text and "def softmax(" not in text


def test_kernelbench_prompt_shows_the_whole_file_and_the_model_new_signature() -> None:
    problem = kernelbench("linear_relu")
    source = (KERNELBENCH / "linear_relu.py").read_text()
    ctx = ProposalContext(problem, source, (), None)
    user = PromptBuilder(TEMPLATES).messages(ctx)[1]["content"]
    assert source.rstrip() in user
    assert (
        "class ModelNew(nn.Module):\n"
        "    def __init__(self, in_features: int, out_features: int) -> None\n"
        "    def forward(self, x: torch.Tensor) -> torch.Tensor\n"
    ) in user
    assert "matmul.md" in knowledge_files(ctx, reference_source(problem))


def test_partial_hardware_facts_render_what_is_known() -> None:
    ctx = dataclasses.replace(softmax_context(), hardware={"device": "cuda", "name": "GPU X"})
    user = PromptBuilder(TEMPLATES).messages(ctx)[1]["content"]
    assert "## Hardware\n\n- GPU: GPU X\n\n" in user
