"""A `SearchResult` as kevolve takes it in: typed, every number finite and in range, every id
hex of the right length, the winner's source UTF-8 text under a cap, free text capped.

A result reaches the bot from a runner's post or from the local runner's job process; either way
it is data written by code the bot does not trust (DESIGN.md §7). `read_result` keeps what the bot
renders and checks, refuses what does not fit with the field and the reason, and drops the rest:
the posted publish gate and kernel path are never read (the bot recomputes the one and takes the
other from the repo's config).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
from kevolve.harness.search.result import (
    MIN_SPEEDUP,
    SCHEMA_VERSION,
    GateResult,
    checked_gate,
)
from kevolve.harness.search.status import StopKind
from kevolve.runners.fieldread import (
    MAX_CASES,
    MAX_HISTORY,
    IntakeError,
    quoted,
    read_bool,
    read_count,
    read_dtype,
    read_error,
    read_figure,
    read_interval,
    read_list,
    read_match,
    read_object,
    read_optional,
    read_positive,
    read_shape,
    read_source,
    read_text,
    read_word,
)

OP = re.compile(r"[A-Za-z0-9_-]{1,100}")  # as the run board names an op
CANDIDATE = re.compile(
    r"[0-9a-f]{16}"
)  # harness.search.candidate: the first 16 hex digits of a sha256
DIGEST = re.compile(r"[0-9a-f]{0,64}")
PROPOSER = re.compile(r"[A-Za-z0-9_.:/+-]{1,100}")  # "seed", "tuner", "llm:<model>"
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._()+,@-]{0,99}")  # a GPU's or CPU's name
PROMPT_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,199}")  # "<search>-g003-s01[-1]"
DIM = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,15}")  # a shape's dimension name, as configs give it
MAX_DIMS = 8
MAX_LINEAGE = 32  # steps from the best back to the seed (`campaign.lineage` stops at 20)
REPAIR = ":repair"  # how a proposer's name ends when it fixed a failed candidate

# CPython 3.11's ast module keeps one recursion counter for every thread: two job slots building
# ASTs at once can fail with "AST constructor recursion depth mismatch". The bot builds one
# at a time (`bot.winners` screens under it too).
AST_LOCK = threading.Lock()


@dataclass(frozen=True)
class Winning:
    """The best candidate: its id, where it came from, its source and its evaluation."""

    id: str
    proposer: str
    generation: int
    parents: tuple[str, ...]
    score: float | None
    source: str
    evaluation: Evaluation


@dataclass(frozen=True)
class LineageStep:
    """One candidate on the best's line back to the seed, and the prompt and model behind it."""

    id: str
    proposer: str
    generation: int
    prompt: str | None = None  # the prompt's key in the search state; None for no LLM's
    model: str | None = None
    rationale: str | None = None  # the model's words on its change (untrusted text), cut

    @property
    def repair(self) -> bool:
        """Whether this candidate is a model's fix of a candidate that failed."""
        return self.proposer.endswith(REPAIR)


@dataclass(frozen=True)
class HistoryPoint:
    """One verdict folded into the search: how many were in, the best score so far, and the
    candidate with its verdict and score (None in a result kept before points carried them)."""

    evaluated: int
    best_score: float | None
    candidate: str | None
    verdict: str | None  # a `Verdict`'s value
    score: float | None  # None for a candidate that was not correct


@dataclass(frozen=True)
class Machine:
    """What the search ran on, as the runner described it."""

    name: str | None = None  # the GPU's name; None on a CPU
    capability: str | None = None
    memory_gib: float | None = None
    driver: str | None = None
    cuda: str | None = None
    torch: str | None = None
    triton: str | None = None
    cpu: str | None = None
    copy_gbps: float | None = None
    matmul_tflops: float | None = None


@dataclass(frozen=True)
class LlmUsage:
    """The LLM's part in the search."""

    configured: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    failures: int = 0
    cost_usd: float = 0.0  # over every run of the search
    models: tuple[str, ...] = ()
    transport: str = ""  # http, command or queue
    repairs_judged: int = 0
    repairs_correct: int = 0


@dataclass(frozen=True)
class CheckedResult:
    """A `SearchResult` whose every field the bot uses was read and checked."""

    problem: str
    device: str
    timed: bool
    evaluated: int
    counts: tuple[tuple[str, int], ...]
    best: Winning | None
    baseline: Evaluation | None
    history: tuple[HistoryPoint, ...]
    machine: Machine
    llm: LlmUsage
    wall_s: float
    gpu_s: float
    stop_reason: str
    notes: tuple[str, ...]
    stop: StopKind = StopKind.OTHER  # what `stop_reason` says, as data
    rationale: str = ""  # the model's words on the winning change (untrusted text)
    lineage: tuple[LineageStep, ...] = ()  # the best first, back towards the seed
    job_id: int | None = None
    hardware: str | None = None  # the job's hardware label, as the runner ran it

    def speedup(self) -> float | None:
        """The geometric mean of the best's speedups over its timed cases; None untimed."""
        if not (self.timed and self.best):
            return None
        return self.best.evaluation.speedup()

    def gate(
        self,
        is_seed: bool | None = None,
        checked: Sequence[tuple[Sequence[int], str]] = (),
        timed: Sequence[tuple[Sequence[int], str]] = (),
        min_speedup: float = MIN_SPEEDUP,
    ) -> GateResult:
        """The harness's publish gate over these evaluations (`is_seed`: the best is the repo's
        kernel; None takes the result's word for it, which only shows, never publishes)."""
        best = self.best
        seed = (best is not None and best.proposer == "seed") if is_seed is None else is_seed
        return checked_gate(best.evaluation if best else None, seed, checked, timed, min_speedup)

    def to_dict(self) -> dict[str, Any]:
        """The `SearchResult.to_dict` layout of what was kept; `read_result` reads it back."""
        best = self.best
        data: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "problem": self.problem,
            "device": self.device,
            "timed": self.timed,
            "evaluated": self.evaluated,
            "counts": dict(self.counts),
            "best": None if best is None else _winning_dict(best),
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
            "history": [_point_dict(point) for point in self.history],
            "hardware": _machine_dict(self.machine),
            "llm": {**vars(self.llm), "models": list(self.llm.models)},
            "wall_s": self.wall_s,
            "gpu_s": self.gpu_s,
            "stop_reason": self.stop_reason,
            "stop": self.stop.value,
            "notes": list(self.notes),
        }
        if self.lineage:
            data["lineage"] = [vars(step).copy() for step in self.lineage]
        elif self.rationale:  # a result kept before steps were: its rationale alone
            data["lineage"] = [{"rationale": self.rationale}]
        if self.job_id is not None:
            data["job"] = {"id": self.job_id, "hardware": self.hardware}
        return data


def read_result(data: object, job_id: int | None = None) -> CheckedResult:
    """`data` (a decoded `SearchResult`) checked; IntakeError saying what does not fit."""
    top = read_object(data, "the result")
    schema = top.get("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION or isinstance(schema, bool):
        raise IntakeError(f"schema {schema!r} is not one this bot reads ({SCHEMA_VERSION})")
    job = read_optional(top.get("job"), "job", lambda v, w: read_object(v, w))
    posted_job = None if job is None else read_optional(job.get("id"), "job.id", read_count)
    if job_id is not None and posted_job not in (None, job_id):
        raise IntakeError(f"the result is job {posted_job}'s, not job {job_id}'s")
    label = None if job is None else read_optional(job.get("hardware"), "job.hardware", read_word)
    best = read_optional(top.get("best"), "best", _winning)
    llm = read_object(top.get("llm", {}), "llm")
    lineage, rationale = _lineage(top.get("lineage", []), best)
    return CheckedResult(
        problem=read_match(top.get("problem"), "problem", OP),
        device=read_word(top.get("device"), "device"),
        timed=read_bool(top.get("timed"), "timed"),
        evaluated=read_count(top.get("evaluated"), "evaluated"),
        counts=_counts(top.get("counts", {})),
        best=best,
        baseline=read_optional(top.get("baseline"), "baseline", _evaluation),
        history=tuple(read_list(top.get("history", []), "history", _point, MAX_HISTORY)),
        machine=read_optional(top.get("hardware"), "hardware", _machine) or Machine(),
        llm=_llm(llm),
        wall_s=read_figure(top.get("wall_s", 0.0), "wall_s"),
        gpu_s=read_figure(top.get("gpu_s", 0.0), "gpu_s"),
        stop_reason=read_text(top.get("stop_reason", ""), "stop_reason"),
        notes=tuple(read_list(top.get("notes", []), "notes", read_text)),
        stop=read_stop(top),
        rationale=rationale,
        lineage=lineage,
        job_id=job_id if job_id is not None else posted_job,
        hardware=label,
    )


def read_stop(top: Mapping[str, Any]) -> StopKind:
    """Why the search whose decoded result is `top` stopped; a result written before kinds were
    kept says it paused by the prompts it left waiting. IntakeError for a kind there is not."""
    if "stop" not in top:
        waiting = top.get("waiting")
        return StopKind.PAUSED if isinstance(waiting, list) and waiting else StopKind.OTHER
    value = top["stop"]
    if not isinstance(value, str) or value not in {k.value for k in StopKind}:
        kinds = ", ".join(k.value for k in StopKind)
        raise IntakeError(f"stop: {quoted(value)} is none of {kinds}")
    return StopKind(value)


_TOKEN_COUNTS = ("prompt_tokens", "completion_tokens", "requests", "failures")
_REPAIR_COUNTS = ("repairs_judged", "repairs_correct")
RATIONALE_CHARS = 600


def _llm(llm: Mapping[str, Any]) -> LlmUsage:
    """The LLM's part: counts, cost over every run of the search, models and transport."""
    return LlmUsage(
        configured=read_bool(llm.get("configured", False), "llm.configured"),
        **{k: read_count(llm.get(k, 0), f"llm.{k}") for k in _TOKEN_COUNTS + _REPAIR_COUNTS},
        cost_usd=read_figure(llm.get("cost_usd", 0.0), "llm.cost_usd"),
        models=tuple(read_list(llm.get("models", []), "llm.models", read_model)),
        transport=read_word(llm.get("transport", "none"), "llm.transport"),
    )


def read_model(value: object, where: str) -> str:
    """A model's name: a proposer-like word (no spaces, no markup)."""
    return read_match(value, where, PROPOSER)


def _lineage(value: object, best: Winning | None) -> tuple[tuple[LineageStep, ...], str]:
    """The best's lineage, which must start at the best, and the rationale of its change."""
    kept = _kept_rationale(value)
    if kept is not None:
        return (), _rationale(kept, "lineage[0].rationale")
    steps = tuple(read_list(value, "lineage", _step, MAX_LINEAGE))
    if not steps:
        return (), ""
    if best is None or steps[0].id != best.id:
        named = best.id if best else "none"
        raise IntakeError(f"lineage[0].id: {steps[0].id} is not the best's ({named})")
    return steps, steps[0].rationale or ""


def _kept_rationale(value: object) -> object | None:
    """The rationale of a lineage kept as `[{"rationale": text}]`, the way this bot kept
    results before it kept their steps; None for any other lineage."""
    first = value[0] if isinstance(value, list) and len(value) == 1 else None
    return (
        first.get("rationale") if isinstance(first, dict) and set(first) == {"rationale"} else None
    )


def _step(value: object, where: str) -> LineageStep:
    data = read_object(value, where)
    rationale = data.get("rationale")
    return LineageStep(
        id=read_match(data.get("id"), f"{where}.id", CANDIDATE),
        proposer=read_match(data.get("proposer"), f"{where}.proposer", PROPOSER),
        generation=read_count(data.get("generation"), f"{where}.generation"),
        prompt=read_optional(
            data.get("prompt"), f"{where}.prompt", lambda v, w: read_match(v, w, PROMPT_KEY)
        ),
        model=read_optional(data.get("model"), f"{where}.model", read_model),
        rationale=None if rationale is None else _rationale(rationale, f"{where}.rationale"),
    )


def _rationale(value: object, where: str) -> str:
    """A model's rationale, cut to a paragraph."""
    return read_text(value, where)[:RATIONALE_CHARS]


def _winning(value: object, where: str) -> Winning:
    data = read_object(value, where)
    evaluation = _evaluation(data.get("evaluation"), f"{where}.evaluation")
    source = read_source(data.get("source"), f"{where}.source")
    named = read_match(data.get("id"), f"{where}.id", CANDIDATE)
    try:
        with AST_LOCK:
            hashed = candidate_id(source)
    except (RecursionError, MemoryError):
        raise IntakeError(f"{where}.source: nested too deeply to read") from None
    if named != hashed:
        raise IntakeError(f"{where}.id: {named} is not the hash of its source ({hashed})")
    return Winning(
        id=named,
        proposer=read_match(data.get("proposer"), f"{where}.proposer", PROPOSER),
        generation=read_count(data.get("generation", 0), f"{where}.generation"),
        parents=tuple(
            read_list(
                data.get("parents", []),
                f"{where}.parents",
                lambda v, w: read_match(v, w, CANDIDATE),
            )
        ),
        score=read_optional(data.get("score"), f"{where}.score", read_figure),
        source=source,
        evaluation=evaluation,
    )


def _evaluation(value: object, where: str) -> Evaluation:
    data = read_object(value, where)
    return Evaluation(
        verdict=Verdict(read_verdict(data.get("verdict"), f"{where}.verdict")),
        reason=read_text(data.get("reason", ""), f"{where}.reason"),
        problem=read_match(data.get("problem"), f"{where}.problem", OP),
        device=read_word(data.get("device"), f"{where}.device"),
        timed=read_bool(data.get("timed", False), f"{where}.timed"),
        candidate_hash=read_match(
            data.get("candidate_hash", ""), f"{where}.candidate_hash", DIGEST
        ),
        checks=read_list(data.get("checks", []), f"{where}.checks", _check, MAX_CASES),
        timings=read_list(data.get("timings", []), f"{where}.timings", _case_timing, MAX_CASES),
        flags=read_list(data.get("flags", []), f"{where}.flags", read_text),
        dims=read_list(
            data.get("dims", []), f"{where}.dims", lambda v, w: read_match(v, w, DIM), MAX_DIMS
        ),
    )


def _check(value: object, where: str) -> CaseCheck:
    data = read_object(value, where)
    return CaseCheck(
        shape=read_shape(data.get("shape"), f"{where}.shape"),
        dtype=read_dtype(data.get("dtype"), f"{where}.dtype"),
        trials=read_count(data.get("trials"), f"{where}.trials"),
        passed=read_bool(data.get("passed"), f"{where}.passed"),
        max_abs=read_error(data.get("max_abs", 0.0), f"{where}.max_abs"),
        max_rel=read_error(data.get("max_rel", 0.0), f"{where}.max_rel"),
        rel_norm=read_error(data.get("rel_norm", 0.0), f"{where}.rel_norm"),
        mismatches=read_count(data.get("mismatches", 0), f"{where}.mismatches", 2**62),
        elements=read_count(data.get("elements", 0), f"{where}.elements", 2**62),
        failure=read_optional(data.get("failure"), f"{where}.failure", read_text),
        tolerance=read_optional(data.get("tolerance"), f"{where}.tolerance", _tolerance),
    )


def _tolerance(value: object, where: str) -> AppliedTolerance:
    data = read_object(value, where)
    return AppliedTolerance(
        **{k: read_figure(data.get(k), f"{where}.{k}") for k in ("rtol", "atol", "norm")}
    )


def _compiled(value: object, where: str) -> CompiledTiming:
    data = read_object(value, where)
    mode = data.get("mode")
    if mode not in {m.value for m in CompileMode}:
        raise IntakeError(f"{where}.mode: {quoted(mode)} is not a torch.compile mode")
    return CompiledTiming(
        mode=str(mode),
        timing=read_optional(data.get("timing"), f"{where}.timing", _timing),
        compile_s=read_optional(data.get("compile_s"), f"{where}.compile_s", read_figure),
        error=read_optional(data.get("error"), f"{where}.error", read_text),
        from_seed=read_bool(data.get("from_seed", False), f"{where}.from_seed"),
    )


def _case_timing(value: object, where: str) -> CaseTiming:
    data = read_object(value, where)
    ci = read_optional(data.get("speedup_ci"), f"{where}.speedup_ci", read_interval)

    def figure(key: str) -> float | None:
        return read_optional(data.get(key), f"{where}.{key}", read_figure)

    return CaseTiming(
        shape=read_shape(data.get("shape"), f"{where}.shape"),
        dtype=read_dtype(data.get("dtype"), f"{where}.dtype"),
        candidate=_timing(data.get("candidate"), f"{where}.candidate"),
        baseline=read_optional(data.get("baseline"), f"{where}.baseline", _timing),
        reference=read_optional(data.get("reference"), f"{where}.reference", _timing),
        speedup=read_optional(data.get("speedup"), f"{where}.speedup", read_positive),
        speedup_ci=None if ci is None else list(ci),
        speedup_vs_reference=figure("speedup_vs_reference"),
        bytes=read_count(data.get("bytes", 0), f"{where}.bytes", 2**62),
        flops=read_optional(
            data.get("flops"), f"{where}.flops", lambda v, w: read_count(v, w, 2**62)
        ),
        achieved_gbps=figure("achieved_gbps"),
        achieved_tflops=figure("achieved_tflops"),
        roofline_fraction=figure("roofline_fraction"),
        rechecked=read_bool(data.get("rechecked", False), f"{where}.rechecked"),
        compiled=read_list(data.get("compiled", []), f"{where}.compiled", _compiled, 4),
    )


def _timing(value: object, where: str) -> Timing:
    data = read_object(value, where)
    return Timing(
        n=read_count(data.get("n"), f"{where}.n"),
        median_ms=read_positive(data.get("median_ms"), f"{where}.median_ms"),
        q10_ms=read_positive(data.get("q10_ms"), f"{where}.q10_ms"),
        q90_ms=read_positive(data.get("q90_ms"), f"{where}.q90_ms"),
        min_ms=read_positive(data.get("min_ms"), f"{where}.min_ms"),
    )


def _machine(value: object, where: str) -> Machine:
    data = read_object(value, where)
    ceilings = read_object(data.get("ceilings") or {}, f"{where}.ceilings")

    def version(key: str) -> str | None:
        return read_optional(
            data.get(key), f"{where}.{key}", lambda v, w: read_match(v, w, VERSION)
        )

    return Machine(
        name=read_optional(data.get("name"), f"{where}.name", lambda v, w: read_match(v, w, NAME)),
        capability=version("capability"),
        memory_gib=read_optional(data.get("memory_gib"), f"{where}.memory_gib", read_figure),
        driver=version("driver"),
        cuda=version("cuda"),
        torch=version("torch"),
        triton=version("triton"),
        cpu=read_optional(data.get("cpu"), f"{where}.cpu", lambda v, w: read_match(v, w, NAME)),
        copy_gbps=read_optional(
            ceilings.get("copy_gbps"), f"{where}.ceilings.copy_gbps", read_figure
        ),
        matmul_tflops=read_optional(
            ceilings.get("matmul_tflops"), f"{where}.ceilings.matmul_tflops", read_figure
        ),
    )


def read_verdict(value: object, where: str) -> str:
    """A verdict's value, one of the harness's `Verdict`s."""
    if not isinstance(value, str) or value not in {v.value for v in Verdict}:
        raise IntakeError(f"{where}: {quoted(value)} is not a verdict")
    return value


def _point(value: object, where: str) -> HistoryPoint:
    data = read_object(value, where)
    return HistoryPoint(
        evaluated=read_count(data.get("evaluated"), f"{where}.evaluated"),
        best_score=read_optional(data.get("best_score"), f"{where}.best_score", read_figure),
        candidate=read_optional(
            data.get("candidate"), f"{where}.candidate", lambda v, w: read_match(v, w, CANDIDATE)
        ),
        verdict=read_optional(data.get("verdict"), f"{where}.verdict", read_verdict),
        score=read_optional(data.get("score"), f"{where}.score", read_figure),
    )


def _counts(value: object) -> tuple[tuple[str, int], ...]:
    data = read_object(value, "counts")
    for key in data:
        read_verdict(key, "counts")
    return tuple((key, read_count(n, f"counts.{key}")) for key, n in data.items())


def _winning_dict(best: Winning) -> dict[str, Any]:
    evaluation = best.evaluation.to_dict()
    return {
        "id": best.id,
        "proposer": best.proposer,
        "generation": best.generation,
        "parents": list(best.parents),
        "score": best.score,
        "source": best.source,
        "evaluation": evaluation,
    }


def _point_dict(point: HistoryPoint) -> dict[str, Any]:
    """A history point in the order the search writes it."""
    return {
        "evaluated": point.evaluated,
        "candidate": point.candidate,
        "verdict": point.verdict,
        "score": point.score,
        "best_score": point.best_score,
    }


def _machine_dict(machine: Machine) -> dict[str, Any]:
    data = {k: v for k, v in vars(machine).items() if k not in ("copy_gbps", "matmul_tflops")}
    if machine.copy_gbps is not None or machine.matmul_tflops is not None:
        data["ceilings"] = {"copy_gbps": machine.copy_gbps, "matmul_tflops": machine.matmul_tflops}
    return data


# One reader per kind of field: each takes the value and where it sits, for the refusal.
