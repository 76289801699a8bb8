"""`SearchResult`: what one search found, as versioned JSON and as a markdown report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kevolve.harness.evaluation import CaseTiming, Evaluation, Verdict, geometric_mean
from kevolve.harness.search.status import StopKind

SCHEMA_VERSION = 1


@dataclass
class GateResult:
    """Whether the best candidate may be published, and every reason it may not."""

    passed: bool
    reasons: list[str] = field(default_factory=list)


@dataclass
class SearchResult:
    """The outcome of a search (schema in DESIGN.md section 2)."""

    problem: str
    device: str
    timed: bool
    evaluated: int
    counts: dict[str, int]
    best: dict[str, Any] | None  # id, proposer, generation, score, source, evaluation
    baseline: dict[str, Any] | None  # the seed's evaluation
    history: list[dict[str, Any]]
    hardware: dict[str, Any] | None
    llm: dict[str, Any]  # tokens, requests, failures, cost
    wall_s: float
    gpu_s: float  # seconds the GPU spent timing
    gate: GateResult
    stop_reason: str
    stop: StopKind = StopKind.OTHER  # what `stop_reason` says, as data
    notes: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # queued prompts without replies: paused
    lineage: list[dict[str, Any]] = field(default_factory=list)  # the best's, back to the seed
    schema: int = SCHEMA_VERSION

    def throughput(self) -> dict[str, float | None]:
        """Evaluations per hour of wall time and the share of it the GPU spent timing."""
        hours = self.wall_s / 3600
        return {
            "evaluations_per_hour": round(self.evaluated / hours, 1) if hours > 0 else None,
            "timing_fraction": round(self.gpu_s / self.wall_s, 4) if self.wall_s > 0 else None,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with a stable layout."""
        return {
            "schema": self.schema,
            "problem": self.problem,
            "device": self.device,
            "timed": self.timed,
            "evaluated": self.evaluated,
            "counts": self.counts,
            "best": self.best,
            "baseline": self.baseline,
            "history": self.history,
            "hardware": self.hardware,
            "llm": self.llm,
            "wall_s": self.wall_s,
            "gpu_s": self.gpu_s,
            "throughput": self.throughput(),
            "publish_gate": {"passed": self.gate.passed, "reasons": self.gate.reasons},
            "stop_reason": self.stop_reason,
            "stop": self.stop.value,
            "notes": self.notes,
            "waiting": self.waiting,
            "lineage": self.lineage,
        }


MIN_SPEEDUP = 1.05  # what a maintainer would review a pull request for, by default


def publish_gate(
    best: Evaluation | None, is_seed: bool, min_speedup: float = MIN_SPEEDUP
) -> GateResult:
    """Correct everywhere; over the timed cases, the geometric mean of the intervals' low ends
    at least `min_speedup`; no case slower or not faster with confidence; plausible timings."""
    if best is None:
        return GateResult(False, ["no correct candidate was found"])
    reasons = []
    if is_seed:
        reasons.append("the best candidate is the repo's current kernel")
    if not best.timed:
        reasons.append("nothing was timed (no GPU): speed was not established")
    for t in best.timings:
        low, high = (t.speedup_ci or [0.0, 0.0])[:2]
        case = f"{'x'.join(map(str, t.shape))} {t.dtype}"
        if t.speedup is None:
            reasons.append(f"{case} has no measured speedup")
        elif high < 1.0:
            reasons.append(f"{case} regressed: speedup {t.speedup:.3f}x [{low:.3f}-{high:.3f}]")
        elif low <= 1.0:
            reasons.append(
                f"{case} is not faster with 95% confidence "
                f"({t.speedup:.3f}x [{low:.3f}-{high:.3f}])"
            )
    lows = [t.speedup_ci[0] for t in best.timings if t.speedup_ci and t.speedup_ci[0] > 1.0]
    # Every case faster with confidence, but by how much: the repo's minimum decides.
    if best.timed and lows and len(lows) == len(best.timings):
        low = geometric_mean(lows) or 0.0
        if low < min_speedup:
            reasons.append(
                f"the gain is too small: {low:.3f}x at the low end of the 95% intervals "
                f"(geometric mean over {len(lows)} timed cases), below the {min_speedup:.2f}x "
                "this repo asks for (min_speedup)"
            )
    reasons += [f"implausible timing: {f}" for f in best.flags]
    return GateResult(not reasons, reasons)


Case = tuple[Sequence[int], str]  # (shape, dtype)


def checked_gate(
    best: Evaluation | None,
    is_seed: bool,
    checked: Sequence[Case] = (),
    timed: Sequence[Case] = (),
    min_speedup: float = MIN_SPEEDUP,
) -> GateResult:
    """`publish_gate` once the evaluation's own figures agree: a correct verdict, every check
    passed, each case of `checked` checked and of `timed` timed (when timed), each case's medians
    and interval agreeing with its speedup, and no timing beyond the roofline."""
    gate = publish_gate(best, is_seed, min_speedup)
    if best is None:
        return gate
    reasons = []
    if best.verdict is not Verdict.CORRECT:
        reasons.append(f"the verdict is {best.verdict.value}, not correct")
    if not best.checks:
        reasons.append("no case was checked for correctness")
    reasons += [
        f"{_case(c.shape, c.dtype)} failed its correctness check"
        for c in best.checks
        if not c.passed
    ]
    passed = {(tuple(c.shape), c.dtype) for c in best.checks if c.passed}
    reasons += [f"{_case(s, d)} was not checked" for s, d in checked if (tuple(s), d) not in passed]
    if best.timed:
        measured = {(tuple(t.shape), t.dtype) for t in best.timings}
        reasons += [
            f"{_case(s, d)} was not timed" for s, d in timed if (tuple(s), d) not in measured
        ]
        if not best.timings:
            reasons.append("no case was timed")
    for t in best.timings:
        reasons += _disagreements(t)
    return GateResult(not (reasons or gate.reasons), [*reasons, *gate.reasons])


def _disagreements(t: CaseTiming) -> list[str]:
    """Why one timed case's figures contradict each other (a speedup its medians do not show)."""
    case = _case(t.shape, t.dtype)
    if t.baseline is None or t.speedup is None or not t.speedup_ci:
        return [f"{case} has no baseline timing to compare with"]
    reasons = []
    low, high = t.speedup_ci[:2]
    if not low <= t.speedup <= high:
        reasons.append(f"{case}: speedup {t.speedup:.3f}x lies outside its interval")
    pooled = t.baseline.median_ms / t.candidate.median_ms
    if t.speedup > 1.0 >= pooled:
        reasons.append(
            f"{case}: its medians ({t.baseline.median_ms:.4g} ms baseline, "
            f"{t.candidate.median_ms:.4g} ms candidate) show no speedup"
        )
    if t.roofline_fraction is not None and t.roofline_fraction > 1.0:
        reasons.append(f"implausible timing: {case} is faster than the roofline allows")
    return reasons


def _case(shape: Sequence[int], dtype: str) -> str:
    """A case as the gate's reasons name it: `4096x1024 float16`."""
    return f"{'x'.join(map(str, shape))} {dtype}"


def render_markdown(result: SearchResult) -> str:
    """A short markdown report of the search."""
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items()))
    lines = [
        f"# kevolve search: {result.problem}",
        "",
        f"- device: {result.device} ({'timed' if result.timed else 'correctness only'})",
        f"- evaluated: {result.evaluated} ({counts})",
        f"- stopped: {result.stop_reason}",
        f"- wall time: {result.wall_s:.1f} s, GPU timing: {result.gpu_s:.1f} s ({_rate(result)})",
        f"- LLM: {result.llm.get('requests', 0)} requests, "
        f"{result.llm.get('prompt_tokens', 0) + result.llm.get('completion_tokens', 0)} "
        f"tokens",
    ]
    if result.best:
        lines.append(
            f"- best: `{result.best['id']}` from {result.best['proposer']} "
            f"(generation {result.best['generation']}), score {result.best['score']:.3f}"
        )
    gate = "passed" if result.gate.passed else "not passed: " + "; ".join(result.gate.reasons)
    lines += [f"- publish gate: {gate}", *[f"- note: {n}" for n in result.notes], ""]
    return "\n".join(lines)


def _rate(result: SearchResult) -> str:
    """Throughput in words."""
    t = result.throughput()
    per_hour, share = t["evaluations_per_hour"], t["timing_fraction"]
    words = f"{per_hour:.0f} evaluations per hour" if per_hour else "no rate"
    return words + (f", timing {100 * share:.0f}% of wall time" if share is not None else "")
