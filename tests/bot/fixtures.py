"""Hand-built `SearchResult` dicts for the message tests: a timed H100 run and a CPU dry run,
and the repo's kernel their best was found from."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

from kevolve.bot.reproduce import Checkout
from kevolve.harness.evaluation import (
    AppliedTolerance,
    CaseCheck,
    CaseTiming,
    CompiledTiming,
    CompileMode,
    Evaluation,
    Timing,
    Verdict,
)
from kevolve.harness.search.candidate import candidate_id
from kevolve.harness.search.result import SearchResult, publish_gate
from kevolve.harness.spec.load import load_problems
from kevolve.runners.intake import AST_LOCK

JOB_SHA = "0123456789abcdef0123456789abcdef01234567"
REPRO = Checkout(
    "kernels/softmax.py", "kevolve/softmax/h100", JOB_SHA, "https://github.com/octo/kernels.git"
)
REPRO_CPU = Checkout("kernels/softmax.py", "kevolve/softmax/cpu", JOB_SHA)
# Per-dtype tolerances as the judge applies them (`harness.judge.compare.DEFAULT_TOLERANCES`).
TOLERANCES = {
    "float16": AppliedTolerance(rtol=2e-3, atol=1e-3, norm=1e-3),
    "bfloat16": AppliedTolerance(rtol=1.6e-2, atol=1e-2, norm=8e-3),
    "float32": AppliedTolerance(rtol=1e-4, atol=1e-5, norm=1e-5),
}
# The repo's kernel at the job's commit, and the best: the same module with two values retuned.
ORIGINAL = '''"""Row softmax: one program per row."""

import triton
import triton.language as tl

BLOCK = 1024


@triton.jit
def _softmax(x_ptr, y_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + row * n_cols + cols, mask=cols < n_cols, other=-float("inf"))
    num = tl.exp(x - tl.max(x, axis=0))
    tl.store(y_ptr + row * n_cols + cols, num / tl.sum(num, axis=0), mask=cols < n_cols)


def softmax(x, y):
    _softmax[(x.shape[0],)](x, y, x.shape[1], BLOCK=BLOCK, num_warps=4)
'''
SOURCE = ORIGINAL.replace("BLOCK = 1024", "BLOCK = 512").replace("num_warps=4", "num_warps=8")
# A rewrite of the best: one line of code replaced by two.
REWRITTEN = SOURCE.replace(
    "    num = tl.exp(x - tl.max(x, axis=0))\n",
    "    x = (x - tl.max(x, axis=0)) * 1.4426950408889634\n    num = tl.exp2(x)\n",
)
BEST_ID = candidate_id(SOURCE)  # a result names its best by the hash of its source
SEED_ID = candidate_id(ORIGINAL)
FAILED_ID = "a1b2c3d4e5f60718"  # the best's grandparent: an LLM candidate that failed, repaired
REPAIR_ID = "9f8e7d6c5b4a3921"  # the best's parent: the repair
RATIONALE = "Eight warps per row hide the load latency; a 512-wide block halves the registers."
SPEEDUPS = (1.42, 1.21)
BEST_SCORE = math.sqrt(SPEEDUPS[0] * SPEEDUPS[1])  # 1.3108...

H100 = {
    "device": "cuda",
    "name": "NVIDIA H100 80GB HBM3",
    "capability": "9.0",
    "memory_gib": 79.1,
    "sm_count": 132,
    "l2_bytes": 52428800,
    "driver": "550.54.15",
    "cuda": "12.4",
    "torch": "2.5.1+cu124",
    "triton": "3.1.0",
    "python": "3.11.9",
    "ceilings": {"copy_gbps": 2950.4, "matmul_tflops": 712.35},
}
CPU = {
    "device": "cpu",
    "cpu": "x86_64",
    "torch": "2.5.1+cpu",
    "triton": "3.1.0",
    "python": "3.11.9",
}
LLM = {
    "configured": True,
    "prompt_tokens": 48213,
    "completion_tokens": 9876,
    "requests": 7,
    "failures": 1,
    "cost_usd": 0.5312,
}
_ERRORS = ((9.77e-4, 3.1e-3, 2.2e-4), (1.95e-3, 7.8e-3, 4.1e-4), (0.0, 0.0, 0.0))
# (verdict, score) of each evaluation in order; the seed comes first.
EVALUATIONS = [
    ("correct", 1.0),
    ("compile_error", None),
    ("correct", 0.97),
    ("correct", 1.08),
    ("incorrect", None),
    ("correct", 1.17),
    ("timeout", None),
    ("correct", 1.12),
    ("correct", BEST_SCORE),
    ("incorrect", None),
]


def _timing(median: float) -> Timing:
    """Per-call times around a median, as the harness reports them."""
    return Timing(
        n=200, median_ms=median, q10_ms=median * 0.97, q90_ms=median * 1.04, min_ms=median * 0.95
    )


def _checks(dtypes: tuple[str, ...], scale: float) -> list[CaseCheck]:
    """Three passing correctness cases, their errors multiplied by `scale`."""
    shapes = ([4096, 1024], [8192, 4096], [1, 50257])
    errors = [(a * scale, r * scale, n * scale) for a, r, n in _ERRORS]
    return [
        CaseCheck(
            shape=s,
            dtype=d,
            trials=5,
            passed=True,
            max_abs=a,
            max_rel=r,
            rel_norm=n,
            elements=math.prod(s),
            tolerance=TOLERANCES[d],
        )
        for s, d, (a, r, n) in zip(shapes, dtypes, errors, strict=True)
    ]


def _timings() -> list[CaseTiming]:
    """Two production cases, timed against the baseline and the eager reference."""
    small = CaseTiming(
        shape=[4096, 1024],
        dtype="float16",
        candidate=_timing(0.0060),
        baseline=_timing(0.00852),
        reference=_timing(0.0118),
        speedup=SPEEDUPS[0],
        speedup_ci=[1.38, 1.46],
        bytes=16777216,
        achieved_gbps=2796.2,
        roofline_fraction=0.948,
        rechecked=True,
        compiled=[
            CompiledTiming(CompileMode.DEFAULT.value, _timing(0.0079), compile_s=4.2),
            CompiledTiming(CompileMode.MAX_AUTOTUNE.value, _timing(0.0071), compile_s=31.5),
        ],
    )
    large = CaseTiming(
        shape=[8192, 4096],
        dtype="float16",
        candidate=_timing(0.0521),
        baseline=_timing(0.0630),
        reference=_timing(0.0712),
        speedup=SPEEDUPS[1],
        speedup_ci=[1.187, 1.234],
        bytes=134217728,
        achieved_gbps=2576.2,
        roofline_fraction=0.873,
        rechecked=True,
    )
    return [small, large]


def _history(scores: list[tuple[str, float | None]]) -> list[dict[str, Any]]:
    """The best score after each evaluation, as `Search` records it."""
    history, best = [], None
    for i, (verdict, value) in enumerate(scores, start=1):
        if value is not None:
            best = value if best is None else max(best, value)
        history.append(
            {
                "evaluated": i,
                "candidate": f"{i:016x}",
                "verdict": verdict,
                "score": value,
                "best_score": best,
            }
        )
    return history


def _result(
    evaluation: Evaluation, history: list[dict[str, Any]], proposer: str, **fields: Any
) -> SearchResult:
    """A `SearchResult` whose best is `evaluation`, found in generation 3 by `proposer`."""
    best = {
        "id": BEST_ID,
        "proposer": proposer,
        "generation": 3,
        "parents": [REPAIR_ID],
        "score": history[-1]["best_score"],
        "source": SOURCE,
        "evaluation": evaluation.to_dict(),
    }
    counts: dict[str, int] = {}
    for h in history:
        counts[h["verdict"]] = counts.get(h["verdict"], 0) + 1
    return SearchResult(
        problem="softmax",
        evaluated=len(history),
        counts=counts,
        best=best,
        baseline=None,
        history=history,
        stop_reason="budget of 10 candidates spent",
        gate=publish_gate(evaluation, is_seed=False),
        **fields,
    )


def lineage(best_id: str = BEST_ID, rationale: str | None = RATIONALE) -> list[dict[str, Any]]:
    """The best's lineage back to the seed, as `campaign.lineage` writes it: the best (an LLM's,
    with `rationale`), the repair of a failed LLM candidate, that candidate, the seed."""

    def step(cid: str, proposer: str, generation: int, why: str | None) -> dict[str, Any]:
        llm = proposer.startswith("llm")
        prompt = f"softmax-g{generation:03d}-s00" if llm else None
        return {
            "id": cid,
            "proposer": proposer,
            "generation": generation,
            "prompt": prompt,
            "model": "m-1" if llm else None,
            "rationale": why,
        }

    return [
        step(best_id, "llm", 3, rationale),
        step(REPAIR_ID, "llm:m-1:repair", 2, "The mask missed the last block; fixed."),
        step(FAILED_ID, "llm:m-1", 1, "Two rows per program."),
        step(SEED_ID, "seed", 0, None),
    ]


def with_best(result: dict[str, Any], source: str, rationale: str | None) -> dict[str, Any]:
    """`result` whose best is `source`, named by its hash, with `rationale` on its lineage."""
    with AST_LOCK:
        named = candidate_id(source)
    result["best"].update(id=named, source=source)
    result["lineage"] = lineage(named, rationale)
    return result


def timed_result() -> dict[str, Any]:
    """A timed H100 search: 10 evaluations, three checks, two timed cases, an LLM, and the
    best's lineage (a repair on it)."""
    ev = Evaluation(
        verdict=Verdict.CORRECT,
        reason="correct on 3 cases",
        problem="softmax",
        device="cuda",
        timed=True,
        candidate_hash=BEST_ID,
        checks=_checks(("float16", "float16", "bfloat16"), 1.0),
        timings=_timings(),
        hardware=H100,
    )
    result = _result(
        ev,
        _history(EVALUATIONS),
        "llm",
        device="cuda",
        timed=True,
        hardware=H100,
        llm=LLM,
        wall_s=754.2,
        gpu_s=41.73,
        lineage=lineage(),
    ).to_dict()
    return copy.deepcopy(result)  # nothing shared with the module's dicts: tests change it


def untimed_result() -> dict[str, Any]:
    """A correctness-only CPU run of the tuner alone: every correct candidate scores 1.0."""
    scores = [(v, None if s is None else 1.0) for v, s in EVALUATIONS]
    ev = Evaluation(
        verdict=Verdict.CORRECT,
        reason="correct on 3 cases",
        problem="softmax",
        device="cpu",
        candidate_hash=BEST_ID,
        checks=_checks(("float32", "float32", "float32"), 1e-4),
        hardware=CPU,
    )
    notes = [
        "no LLM configured: the tuner alone proposed candidates",
        "no GPU timing: a correctness-only dry run; nothing was ranked by speed",
    ]
    result = _result(
        ev,
        _history(scores),
        "tuner",
        device="cpu",
        timed=False,
        hardware=CPU,
        llm={"configured": False},
        wall_s=38.46,
        gpu_s=0.0,
        notes=notes,
    ).to_dict()
    return copy.deepcopy(result)


def slower(result: dict[str, Any]) -> dict[str, Any]:
    """`result` with its first timed case slower than the baseline, and a forged gate that says
    it passed."""
    timing = result["best"]["evaluation"]["timings"][0]
    timing["candidate"] = vars(_timing(0.0107))
    timing["speedup"], timing["speedup_ci"] = 0.8, [0.75, 0.85]
    return {**result, "publish_gate": {"passed": True, "reasons": []}}


DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
# Read once, here: job slots build results on two threads at once, and CPython 3.11 cannot parse
# on two threads at once (see runners.intake.AST_LOCK).
DEMO_PROBLEMS = {p.name: p for p in load_problems(DEMO)}


def demo_result(
    op: str, source: str, job_id: int, timed: bool = True, speedup: float = 1.31
) -> dict[str, Any]:
    """A result for one of the demo repo's ops whose best is `source`, checked on every case the
    config names (the production ones too when `timed`) and, when timed, `speedup` times faster
    on each production case, as a runner of job `job_id` would post it."""
    problem = DEMO_PROBLEMS[op]
    shapes = list(problem.check_shapes) + (list(problem.shapes) if timed else [])
    checks = [
        CaseCheck(shape=list(s), dtype=d, trials=5, passed=True, elements=math.prod(s))
        for s in shapes
        for d in problem.dtypes
    ]
    timings = [
        CaseTiming(
            shape=list(s),
            dtype=d,
            candidate=_timing(0.01),
            baseline=_timing(0.01 * speedup),
            speedup=speedup,
            speedup_ci=[speedup * 0.97, speedup * 1.03],
            rechecked=True,
        )
        for s in problem.shapes
        for d in problem.dtypes
    ]
    ev = Evaluation(
        verdict=Verdict.CORRECT,
        reason="correct on every case",
        problem=op,
        device="cuda" if timed else "cpu",
        timed=timed,
        checks=checks,
        timings=timings if timed else [],
        hardware=H100 if timed else CPU,
    )
    history = _history([("correct", 1.0), ("correct", speedup if timed else 1.0)])
    result = _result(
        ev,
        history,
        "llm:demo-model",
        device="cuda" if timed else "cpu",
        timed=timed,
        hardware=H100 if timed else CPU,
        llm=LLM,
        wall_s=60.0,
        gpu_s=5.0 if timed else 0.0,
    ).to_dict()
    result["problem"] = op
    with AST_LOCK:  # runners on two job slots build results at once
        named = candidate_id(source)
    result["best"].update(id=named, source=source)
    result["job"] = {"id": job_id, "hardware": "h100", "kernel": problem.kernel}
    return copy.deepcopy(result)
