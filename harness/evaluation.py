"""`Evaluation`: the verdict on one candidate, as data that travels as JSON (no torch here)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
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
class AppliedTolerance:
    """The bounds a case was judged by: an element passes when |out - ref| <= atol * rms(ref) +
    rtol * |ref|, an output when ||out - ref|| / ||ref|| <= norm (`harness.judge.compare`)."""

    rtol: float
    atol: float  # relative to the reference's root mean square, not an absolute bound
    norm: float


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
    tolerance: AppliedTolerance | None = None  # None: an evaluation from before it was kept


@dataclass
class Timing:
    """Per-call times of one implementation in milliseconds."""

    n: int
    median_ms: float
    q10_ms: float
    q90_ms: float
    min_ms: float


class CompileMode(StrEnum):
    """The torch.compile modes the judge times the op's reference in."""

    DEFAULT = "default"
    MAX_AUTOTUNE = "max-autotune-no-cudagraphs"


COMPILE_MODES = (CompileMode.DEFAULT, CompileMode.MAX_AUTOTUNE)


@dataclass(frozen=True)
class CallBudget:
    """How long a candidate's call may run, and how long it may keep a timer waiting: the
    settings the judge's `budget.Budgets` and `preemption.Preemption` work from."""

    floor_s: float = 2.0  # a call's least budget on a GPU
    cpu_floor_s: float = 30.0  # Triton's interpreter runs kernels in numpy, far slower than torch
    factor: float = 20.0  # x the judge's own seconds for the same trial (inputs and references)
    compile_s: float = 60.0  # a first call not compiled ahead; also the compile pass's own budget
    tune_config_s: float = 0.5  # a first call compiled ahead, per autotune config it benchmarks
    # A reply's outputs cross to the judge through host memory and a pipe (a 6 GiB output took
    # several seconds on an H100 host): each call that returns them gets bytes / this rate.
    transfer_mib_s: float = 256.0
    grace_s: float = 2.0  # how long a timer waits on a check's call before the check yields
    preemptions: int = 3  # yields per evaluation; after them, calls run to their budgets

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            kinds = int if f.name == "preemptions" else int | float
            number = isinstance(value, kinds) and not isinstance(value, bool)
            may_be_zero = f.name in ("grace_s", "preemptions")  # yield at once; never yield
            if (
                not number
                or not math.isfinite(value)
                or value < 0
                or (value == 0 and not may_be_zero)
            ):
                unit = "yields" if f.name == "preemptions" else "seconds"
                least = "zero or more" if may_be_zero else "more than zero"
                raise ValueError(f"call budget: {f.name} must be {least} {unit}, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data, for the judge's request."""
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> CallBudget:
        """Settings from a request (unknown keys and bad values refused)."""
        unknown = sorted(set(data) - {f.name for f in fields(CallBudget)})
        if unknown:
            raise ValueError(f"call budget: unknown setting(s) {', '.join(unknown)}")
        return CallBudget(**data)


@dataclass
class CompiledTiming:
    """The op's reference under torch.compile in one mode on one case: its per-call times (the
    compile itself never timed), or why there are none."""

    mode: str  # a `CompileMode` value
    timing: Timing | None = None
    compile_s: float | None = None  # the first call's seconds: tracing and compiling
    error: str | None = None  # why torch.compile could not be timed, in one line
    from_seed: bool = False  # measured in the seed's evaluation, not in these rounds


@dataclass
class CaseTiming:
    """Candidate against baseline, the eager reference and (when asked) the reference under
    torch.compile in each `CompileMode`, on one production case, all in the same rounds."""

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
    compiled: list[CompiledTiming] = field(default_factory=list)  # empty: the arm did not run

    def compiled_in(self, mode: str) -> CompiledTiming | None:
        """The torch.compile arm of `mode`, if it ran on this case."""
        return next((c for c in self.compiled if c.mode == mode), None)

    def fastest_compiled(self) -> CompiledTiming | None:
        """The torch.compile mode with the lowest median on this case; None when none was timed."""
        timed = [(c.timing.median_ms, i) for i, c in enumerate(self.compiled) if c.timing]
        return self.compiled[min(timed)[1]] if timed else None

    def speedup_vs_compile(self) -> float | None:
        """The fastest torch.compile mode's median / the candidate's (> 1: the candidate is
        faster); None when torch.compile was not timed on this case."""
        fastest = self.fastest_compiled()
        if fastest is None or fastest.timing is None:
            return None
        return fastest.timing.median_ms / self.candidate.median_ms


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
    dims: list[str] = field(default_factory=list)  # the shapes' dimension names, from the config
    schema: int = SCHEMA_VERSION

    @property
    def ok(self) -> bool:
        """True exactly when the verdict is `correct`."""
        return self.verdict is Verdict.CORRECT

    def speedup(self) -> float | None:
        """The speedup: the geometric mean of the timed cases' speedups; None untimed."""
        if not self.timed:
            return None
        return geometric_mean([t.speedup for t in self.timings if t.speedup])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; the verdict as its string value."""
        data = asdict(self)
        data["verdict"] = self.verdict.value
        return data


def geometric_mean(values: Sequence[float]) -> float | None:
    """The geometric mean of positive values; None for none (every mean of ratios uses this)."""
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def evaluation_from_dict(data: dict[str, Any]) -> Evaluation:
    """Rebuild an `Evaluation` from `Evaluation.to_dict` output."""
    d = dict(data)
    timings = []
    for t in d.get("timings", []):
        t = dict(t)
        for key in ("candidate", "baseline", "reference"):
            if t.get(key) is not None:
                t[key] = Timing(**t[key])
        t["compiled"] = [_compiled_from_dict(c) for c in t.get("compiled", [])]
        timings.append(CaseTiming(**t))
    return Evaluation(
        verdict=Verdict(d["verdict"]),
        reason=d["reason"],
        problem=d["problem"],
        device=d["device"],
        timed=d.get("timed", False),
        candidate_hash=d.get("candidate_hash", ""),
        checks=[_check_from_dict(c) for c in d.get("checks", [])],
        timings=timings,
        kernels=[KernelInfo(**k) for k in d.get("kernels", [])],
        diagnostics=[Diagnostic(**x) for x in d.get("diagnostics", [])],
        flags=list(d.get("flags", [])),
        notes=list(d.get("notes", [])),
        hardware=d.get("hardware"),
        phases=dict(d.get("phases", {})),
        memory=dict(d.get("memory", {})),
        dims=list(d.get("dims", [])),
        schema=d.get("schema", SCHEMA_VERSION),
    )


def _check_from_dict(data: dict[str, Any]) -> CaseCheck:
    """A `CaseCheck` from its dict, its tolerance rebuilt."""
    c = dict(data)
    if c.get("tolerance") is not None:
        c["tolerance"] = AppliedTolerance(**c["tolerance"])
    return CaseCheck(**c)


def _compiled_from_dict(data: dict[str, Any]) -> CompiledTiming:
    """A `CompiledTiming` from its dict, its timing rebuilt."""
    c = dict(data)
    if c.get("timing") is not None:
        c["timing"] = Timing(**c["timing"])
    return CompiledTiming(**c)


def with_seed_compile(timings: Sequence[CaseTiming], seed: Evaluation | None) -> list[CaseTiming]:
    """The timings, each case that ran no torch.compile arm of its own given the seed
    evaluation's arms on the same case (marked `from_seed`). A search times torch.compile in
    its seed's evaluation only (`harness.evaluate.CompileArm.SEED`): the reference is the same
    for every candidate, on the same GPU, so the seed's figures stand for the best's too."""
    if seed is None:
        return list(timings)
    theirs = {(tuple(t.shape), t.dtype): t.compiled for t in seed.timings}
    merged = []
    for t in timings:
        borrowed = theirs.get((tuple(t.shape), t.dtype), [])
        if t.compiled or not borrowed:
            merged.append(t)
        else:
            merged.append(replace(t, compiled=[replace(c, from_seed=True) for c in borrowed]))
    return merged


def shape_heading(dims: Sequence[str]) -> str:
    """The shape column's heading: `shape (M×N×K)` with named dimensions, else `shape`."""
    return f"shape ({'×'.join(dims)})" if dims else "shape"


def shape_cell(shape: Sequence[int], dims: Sequence[str] = ()) -> str:
    """A shape as a table shows it: `33×17×45` under named dimensions, else `33x17x45`."""
    if not shape:
        return "(as given)"
    joiner = "×" if dims and len(dims) == len(shape) else "x"
    return joiner.join(map(str, shape))
