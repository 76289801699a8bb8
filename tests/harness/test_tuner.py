"""Tests for `harness.search.tuner`: knobs in real kernel modules, exact rewrites, and proposals
that stay legal, untried, seeded and correct under Triton's interpreter."""

from __future__ import annotations

import ast
import random
from pathlib import Path

import pytest
from kevolve.harness.evaluate import EvalOptions, evaluate
from kevolve.harness.evaluation import CaseTiming, Evaluation, KernelInfo, Timing, Verdict
from kevolve.harness.search.candidate import Candidate, Elite, candidate_id
from kevolve.harness.search.knobs import Knob, apply, find_knobs
from kevolve.harness.search.proposal import Proposal, ProposalContext
from kevolve.harness.search.tuner import TunerProposer
from kevolve.harness.spec.load import load_problems, select
from kevolve.harness.spec.problem import Problem

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"
KERNELS = DEMO / "demo_kernels"
CORPUS = ROOT / "tests" / "corpus"
TILE = (16, 32, 64, 128, 256, 512, 1024)
BLOCK = (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
WARPS, STAGES, SMALL = (1, 2, 4, 8, 16, 32), (1, 2, 3, 4, 5, 6), (1, 2, 4, 8, 16)
LEGAL = {"BLOCK": BLOCK, "GROUP_M": SMALL, "num_warps": WARPS, "num_stages": STAGES}
LAUNCH = ["num_warps", "num_stages"]
KNOB_NAMES = {  # every demo kernel and corpus good_* file, with the knobs it should expose
    KERNELS / "bias_gelu.py": ["BLOCK", *LAUNCH],
    KERNELS / "matmul_bias_relu.py": ["BLOCK_M", "BLOCK_N", "BLOCK_K", "GROUP_M", *LAUNCH],
    KERNELS / "rmsnorm.py": LAUNCH,
    KERNELS / "softmax.py": LAUNCH,
    KERNELS / "reference.py": [],
    CORPUS / "bias_gelu" / "good_tiled_2d.py": ["BLOCK_R", "BLOCK_C", *LAUNCH],
    CORPUS / "matmul_bias_relu" / "good_grouped.py": [
        *("BLOCK_M", "BLOCK_N", "BLOCK_K", "GROUP_M", "num_stages", "num_warps")
    ],
    CORPUS / "rmsnorm" / "good_looped.py": ["BLOCK", *LAUNCH],
    CORPUS / "softmax" / "good_online.py": ["BLOCK", *LAUNCH],
    CORPUS / "kernelbench" / "gelu_scale__good.py": ["BLOCK", *LAUNCH],
    CORPUS / "kernelbench" / "linear_relu__good.py": ["BLOCK_M", "BLOCK_N", "BLOCK_K", *LAUNCH],
    CORPUS / "kernelbench" / "softmax__good_online.py": ["BLOCK", *LAUNCH],
}
ROW_KERNEL = """
import triton
import triton.language as tl

BLOCK = 1024


@triton.jit
def _row_kernel(x_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    tl.store(x_ptr + row * n_cols + cols, 0.0, mask=cols < n_cols)


@triton.jit
def _loop_kernel(x_ptr, n_cols, BLOCK: tl.constexpr):
    for start in tl.range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        tl.store(x_ptr + cols, 0.0, mask=cols < n_cols)


def run(x, n_rows, n_cols):
    _row_kernel[(n_rows,)](x, n_cols, BLOCK=BLOCK)
    _loop_kernel[(1,)](x, n_cols, BLOCK=triton.next_power_of_2(n_cols))  # computed: capped
    _row_kernel[(n_rows,)](x, n_cols, BLOCK=512)
"""
AUTOTUNED = """
import triton
import triton.language as tl


@triton.autotune(
    configs=[
        triton.Config({"BLOCK_SIZE": 256}, num_warps=4),
        triton.Config({"BLOCK_SIZE": 1024}, num_warps=8, num_stages=2),  # the big one
    ],
    key=["n"],
)
@triton.jit
def _fill_kernel(x_ptr, n, BLOCK_SIZE: tl.constexpr):
    offs = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    tl.store(x_ptr + offs, 0.0, mask=offs < n)


def fill(x):
    _fill_kernel[lambda meta: (triton.cdiv(x.numel(), meta["BLOCK_SIZE"]),)](x, x.numel())
"""


def problem(name: str) -> Problem:
    """A demo problem by op name."""
    return select(load_problems(DEMO), name, DEMO)


def source(name: str) -> str:
    """The demo kernel module of that op."""
    return (KERNELS / f"{name}.py").read_text()


def evaluation(
    kernels: list[KernelInfo] | None = None, timings: list[CaseTiming] | None = None
) -> Evaluation:
    """A correct GPU evaluation with these kernels and timings."""
    return Evaluation(
        Verdict.CORRECT, "ok", "op", "cuda", kernels=kernels or [], timings=timings or []
    )


def context(
    op: str, ev: Evaluation | None = None, tried: frozenset[str] = frozenset()
) -> ProposalContext:
    """A context for the demo op: its kernel as parent (with `ev`), or only as baseline."""
    src = source(op)
    parents = (Elite(Candidate(src), 1.0, ev),) if ev else ()
    return ProposalContext(problem(op), src, parents, None, tried=tried)


def propose(ctx: ProposalContext, seed: int = 0, count: int = 8) -> list[Proposal]:
    """The tuner's proposals for a seed."""
    return TunerProposer().propose(ctx, random.Random(seed), count)


def changes(before: str, after: str) -> dict[str, tuple[int | None, int | None]]:
    """The knobs whose values differ, as name -> (before, after)."""
    old = {k.name: k.value for k in find_knobs(before)}
    new = {k.name: k.value for k in find_knobs(after)}
    return {name: (old[name], new[name]) for name in old if old[name] != new[name]}


@pytest.mark.parametrize("path", list(KNOB_NAMES), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_knobs_of_demo_kernels_and_good_corpus_files(path: Path) -> None:
    src = path.read_text()
    knobs = find_knobs(src)
    assert [k.name for k in knobs] == KNOB_NAMES[path]
    for k in knobs:
        legal = LEGAL.get(k.name, TILE)  # the others are sides of 2D tiles
        assert set(k.choices) <= set(legal) and k.choices == tuple(sorted(k.choices))
        assert k.value is None or k.value in k.choices
        value = next(c for c in k.choices if c != k.value)
        new = apply(src, {k.name: value})
        assert new is not None and changes(src, new) == {k.name: (k.value, value)}


def test_demo_matmul_knobs_are_pinned() -> None:
    assert find_knobs(source("matmul_bias_relu")) == [
        Knob("constexpr", "BLOCK_M", 11, 64, TILE),
        Knob("constexpr", "BLOCK_N", 12, 64, TILE),
        Knob("constexpr", "BLOCK_K", 13, 32, TILE),
        Knob("constexpr", "GROUP_M", 14, 1, SMALL),
        Knob("num_warps", "num_warps", 78, None, WARPS),
        Knob("num_stages", "num_stages", 78, None, STAGES),
    ]


def test_demo_softmax_keeps_its_computed_row_block_and_tunes_launch_keywords() -> None:
    assert find_knobs(source("softmax")) == [
        Knob("num_warps", "num_warps", 35, None, WARPS),
        Knob("num_stages", "num_stages", 35, None, STAGES),
    ]


def test_apply_changes_exactly_the_intended_values() -> None:
    src = source("matmul_bias_relu")
    expected = ast.parse(src)
    for node in ast.walk(expected):
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "BLOCK_K":
            node.value = ast.Constant(16)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Subscript):
            node.keywords.append(ast.keyword("num_warps", ast.Constant(8)))
    new = apply(src, {"BLOCK_K": 16, "num_warps": 8})
    assert new is not None
    assert ast.dump(ast.parse(new)) == ast.dump(expected)
    assert len(new.splitlines()) == len(src.splitlines()) and "# Triton's interpreter" in new
    assert changes(src, new) == {"BLOCK_K": (32, 16), "num_warps": (None, 8)}


def test_apply_returns_none_when_nothing_changes_and_refuses_illegal_settings() -> None:
    src = source("matmul_bias_relu")
    assert apply(src, {}) is None
    assert apply(src, {"BLOCK_M": 64}) is None
    with pytest.raises(ValueError, match="BLOCK_M"):
        apply(src, {"BLOCK_M": 48})
    with pytest.raises(ValueError, match="GROUP_M"):
        apply(src, {"GROUP_M": 3})
    with pytest.raises(ValueError, match="NO_SUCH_KNOB"):
        apply(src, {"NO_SUCH_KNOB": 4})


def test_single_block_row_kernels_only_grow_and_loop_kernels_get_capped() -> None:
    knobs = {k.name: k for k in find_knobs(ROW_KERNEL)}
    assert knobs["BLOCK@5"].choices == BLOCK[BLOCK.index(1024) :]  # a constant for a row kernel
    assert knobs["BLOCK@24"] == Knob("constexpr", "BLOCK@24", 24, None, BLOCK)
    assert knobs["BLOCK@25"].choices == BLOCK[BLOCK.index(512) :]
    capped = apply(ROW_KERNEL, {"BLOCK@24": 2048})
    assert capped is not None and "BLOCK=min(triton.next_power_of_2(n_cols), 2048))" in capped
    for seed in range(5):
        for p in TunerProposer().propose(context("softmax"), random.Random(seed), 20):
            assert "BLOCK=triton.next_power_of_2(n_cols)," in p.source
    ctx = ProposalContext(problem("softmax"), ROW_KERNEL, (), None)
    diffs = [changes(ROW_KERNEL, p.source) for p in propose(ctx, count=200)]
    moved = {name: (old, new) for diff in diffs for name, (old, new) in diff.items()}
    assert {"BLOCK@5", "BLOCK@24", "BLOCK@25"} <= set(moved)
    sizes = [diff[n] for diff in diffs for n in ("BLOCK@5", "BLOCK@25") if n in diff]
    assert all(old is not None and new is not None and new > old for old, new in sizes)


def test_autotune_configs_are_knobs_and_keep_at_least_one() -> None:
    knobs = {k.name: k for k in find_knobs(AUTOTUNED)}
    assert list(knobs) == [
        *("configs", "configs[0].BLOCK_SIZE", "configs[0].num_warps", "configs[1].BLOCK_SIZE"),
        *("configs[1].num_warps", "configs[1].num_stages"),
    ]
    assert knobs["configs"] == Knob("autotune", "configs", 7, 2, (1, 2))
    new = apply(AUTOTUNED, {"configs[0].BLOCK_SIZE": 128, "configs[1].num_stages": 3})
    assert new is not None and '{"BLOCK_SIZE": 128}' in new and "num_stages=3)" in new
    one = apply(AUTOTUNED, {"configs": 1})
    assert one is not None and "1024" not in one and "_fill_kernel[lambda meta" in one
    with pytest.raises(ValueError):
        apply(AUTOTUNED, {"configs": 1, "configs[1].num_warps": 4})


def test_proposals_are_valid_unique_untried_legal_and_seeded() -> None:
    ctx = context("matmul_bias_relu")
    first = propose(ctx, seed=3, count=12)
    assert len(first) == 12 and first == propose(ctx, seed=3, count=12)
    assert [p.source for p in first] != [p.source for p in propose(ctx, seed=4, count=12)]
    parent = candidate_id(ctx.baseline_source)
    legal = {k.name: k.choices for k in find_knobs(ctx.baseline_source)}
    for p in first:
        ast.parse(p.source)
        assert (p.parents, p.proposer) == ((parent,), "tuner")
        diff = changes(ctx.baseline_source, p.source)
        assert 1 <= len(diff) <= 2 and all(new in legal[n] for n, (_, new) in diff.items())
    ids = {candidate_id(p.source) for p in first}
    assert len(ids) == 12
    again = propose(context("matmul_bias_relu", tried=frozenset(ids)), seed=3, count=12)
    assert ids.isdisjoint(candidate_id(p.source) for p in again)


def test_spills_put_smaller_blocks_and_more_warps_first() -> None:
    spilled = evaluation(kernels=[KernelInfo("_matmul_bias_relu_kernel", 1, 255, 40)])
    ctx = context("matmul_bias_relu", spilled)
    first = [changes(ctx.baseline_source, p.source) for p in propose(ctx, count=4)]
    assert sorted(first, key=str) == sorted(
        [
            *({"BLOCK_M": (64, 32)}, {"BLOCK_N": (64, 32)}, {"BLOCK_K": (32, 16)}),
            {"num_warps": (None, 8)},
        ],
        key=str,
    )
    assert all(p.parents == (ctx.parents[0].candidate.id,) for p in propose(ctx))


def test_low_roofline_on_a_memory_bound_op_puts_larger_blocks_and_more_warps_first() -> None:
    timing = Timing(n=10, median_ms=1.0, q10_ms=1.0, q90_ms=1.0, min_ms=1.0)
    slow = CaseTiming([8192, 8192], "float16", timing, bytes=2**28, roofline_fraction=0.3)
    ctx = context("bias_gelu", evaluation(timings=[slow]))
    first = [changes(ctx.baseline_source, p.source) for p in propose(ctx, count=2)]
    assert sorted(first, key=str) == [{"BLOCK": (1024, 2048)}, {"num_warps": (None, 8)}]


def test_a_parent_that_does_not_parse_gets_no_proposals() -> None:
    ctx = ProposalContext(problem("softmax"), "def broken(:\n", (), None)
    assert propose(ctx) == []


def test_tuner_proposals_are_correct_under_the_interpreter() -> None:
    spilled = evaluation(kernels=[KernelInfo("_matmul_bias_relu_kernel", 1, 255, 40)])
    matmul = propose(context("matmul_bias_relu", spilled), count=4)
    blocks = [p for p in matmul if "num_warps=" not in p.source][:2]
    assert all(
        changes(source("matmul_bias_relu"), p.source).keys() <= {"BLOCK_M", "BLOCK_N", "BLOCK_K"}
        for p in blocks
    )
    softmax = propose(context("softmax"), count=1)
    options = EvalOptions(device="cpu", timeout=60)
    for op, p in [
        ("matmul_bias_relu", blocks[0]),
        ("matmul_bias_relu", blocks[1]),
        ("softmax", softmax[0]),
    ]:
        ev = evaluate(problem(op), p.source, options)
        assert ev.verdict is Verdict.CORRECT, (op, ev.reason, changes(source(op), p.source))


def test_once_the_nearest_steps_were_tried_the_tuner_reaches_further() -> None:
    nearest = propose(context("softmax"), count=8)
    near = {2, 4, 8, None}  # one choice from the defaults (4 warps, 3 stages), or unchanged
    assert all(
        set(changes(source("softmax"), p.source).get(k, (None, None))[1] for k in LAUNCH) <= near
        for p in nearest
    )
    tried = frozenset(candidate_id(p.source) for p in nearest)
    further = propose(context("softmax", tried=tried), count=8)
    assert len(further) == 8 and not tried & {candidate_id(p.source) for p in further}
    for p in further:
        values = {changes(source("softmax"), p.source).get(k, (None, None))[1] for k in LAUNCH}
        assert values & {1, 5, 16}, values  # two choices away: 1 or 16 warps, 1 or 5 stages
