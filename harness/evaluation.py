"""`Evaluation`: the verdict on one candidate, as data that travels as JSON (no torch here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 1


class Verdict(StrEnum):
    """What the harness concluded; only `CORRECT` lets a candidate be timed and ranked."""

    CORRECT = "correct"
    INCORRECT = "incorrect"
    REJECTED = "rejected"
    COMPILE_ERROR = "compile_error"
    RUNTIME_ERROR = "runtime_error"
    TIMEOUT = "timeout"
    CRASHED = "crashed"


@dataclass
class Diagnostic:
    """One piece of feedback for the next proposal: what, where in the candidate, and the text."""

    kind: str  # "static", "compile", "runtime", "mismatch", "kernel", "sandbox", "timing"
    message: str
    line: int | None = None


@dataclass
class CaseCheck:
    """Correctness of one (shape, dtype) case over all its trials; figures are the worst trial's."""

    shape: list[int]
    dtype: str
    trials: int
    passed: bool
    max_abs: float = 0.0
    max_rel: float = 0.0
    rel_norm: float = 0.0
    mismatches: int = 0
    elements: int = 0
    first_indices: list[list[int]] = field(default_factory=list)
    failure: str | None = None  # the first thing that was wrong, in words


@dataclass
class Timing:
    """Per-call times of one implementation in milliseconds."""

    n: int
    median_ms: float
    q10_ms: float
    q90_ms: float
    min_ms: float


@dataclass
class CaseTiming:
    """Candidate against baseline (and the eager reference) on one production case."""

    shape: list[int]
    dtype: str
    candidate: Timing
    baseline: Timing | None = None
    reference: Timing | None = None
    speedup: float | None = None  # baseline median / candidate median
    speedup_ci: list[float] | None = None  # 95% bootstrap interval [low, high]
    speedup_vs_reference: float | None = None
    bytes: int = 0
    flops: int | None = None
    achieved_gbps: float | None = None
    achieved_tflops: float | None = None
    roofline_fraction: float | None = None  # roofline time / measured time; > 1 is impossible
    rechecked: bool = False  # the last timed call's output matched the reference


@dataclass
class KernelInfo:
    """A Triton kernel the candidate launched, with what the compiler reported."""

    name: str
    launches: int
    n_regs: int | None = None
    n_spills: int | None = None
    shared_bytes: int | None = None


@dataclass
class Evaluation:
    """The verdict on one candidate for one problem on one device."""

    verdict: Verdict
    reason: str
    problem: str
    device: str  # "cpu" (Triton interpreter, nothing timed) or "cuda"
    timed: bool = False
    candidate_hash: str = ""
    checks: list[CaseCheck] = field(default_factory=list)
    timings: list[CaseTiming] = field(default_factory=list)
    kernels: list[KernelInfo] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # e.g. faster than the roofline allows
    notes: list[str] = field(default_factory=list)
    hardware: dict[str, Any] | None = None
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase
    # GPU bytes: "device_total"; "check" (judge and worker at most while checking) and "peak"
    # (at most overall, timing included). Empty without a GPU.
    memory: dict[str, int] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION

    @property
    def ok(self) -> bool:
        """True exactly when the verdict is `correct`."""
        return self.verdict is Verdict.CORRECT

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; the verdict as its string value."""
        data = asdict(self)
        data["verdict"] = self.verdict.value
        return data


def evaluation_from_dict(data: dict[str, Any]) -> Evaluation:
    """Rebuild an `Evaluation` from `Evaluation.to_dict` output."""
    d = dict(data)
    timings = []
    for t in d.get("timings", []):
        t = dict(t)
        for key in ("candidate", "baseline", "reference"):
            if t.get(key) is not None:
                t[key] = Timing(**t[key])
        timings.append(CaseTiming(**t))
    return Evaluation(
        verdict=Verdict(d["verdict"]),
        reason=d["reason"],
        problem=d["problem"],
        device=d["device"],
        timed=d.get("timed", False),
        candidate_hash=d.get("candidate_hash", ""),
        checks=[CaseCheck(**c) for c in d.get("checks", [])],
        timings=timings,
        kernels=[KernelInfo(**k) for k in d.get("kernels", [])],
        diagnostics=[Diagnostic(**x) for x in d.get("diagnostics", [])],
        flags=list(d.get("flags", [])),
        notes=list(d.get("notes", [])),
        hardware=d.get("hardware"),
        phases=dict(d.get("phases", {})),
        memory=dict(d.get("memory", {})),
        schema=d.get("schema", SCHEMA_VERSION),
    )
