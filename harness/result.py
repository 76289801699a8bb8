"""`SearchResult`: what one search found, as versioned JSON and as a markdown report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.evaluation import Evaluation

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
    notes: list[str] = field(default_factory=list)
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
            "notes": self.notes,
        }


def publish_gate(best: Evaluation | None, is_seed: bool) -> GateResult:
    """Correct everywhere, faster with confidence, no case regressed, plausible timings."""
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
        if high < 1.0:
            reasons.append(f"{case} regressed: speedup {t.speedup:.3f}x [{low:.3f}-{high:.3f}]")
        elif low <= 1.0:
            reasons.append(
                f"{case} is not faster with 95% confidence "
                f"({t.speedup:.3f}x [{low:.3f}-{high:.3f}])"
            )
    reasons += [f"implausible timing: {f}" for f in best.flags]
    return GateResult(not reasons, reasons)


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
