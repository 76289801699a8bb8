"""A `SearchResult` as the bot takes it in: typed, every number finite and in range, every id
hex of the right length, the winner's source UTF-8 text under a cap, free text capped.

A result reaches the bot from a runner's post or from the local runner's job process; either way
it is data written by code the bot does not trust (DESIGN.md §7). `read_result` keeps what the bot
renders and checks, refuses what does not fit with the field and the reason, and drops the rest:
the posted publish gate and kernel path are never read (the bot recomputes the one and takes the
other from the repo's config).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from kevolve.harness.evaluation import CaseCheck, CaseTiming, Evaluation, Timing, Verdict
from kevolve.harness.search.candidate import candidate_id
from kevolve.harness.search.result import SCHEMA_VERSION, GateResult, checked_gate
from kevolve.harness.spec.problem import DTYPES

MAX_SOURCE_BYTES = 512 * 1024  # a kernel module; the largest real ones are a few dozen KiB
MAX_TEXT = 64 * 1024  # characters of one free-text field (a message shows far fewer)
MAX_CASES = 512  # checked or timed cases of one evaluation
MAX_HISTORY = 200_000  # points of the best-so-far history
MAX_LIST = 64  # notes, flags, parents
MAX_COUNT = 10**9  # evaluations, tokens, elements, trials
MAX_FIGURE = 1e15  # milliseconds, GB/s, dollars, errors...

OP = re.compile(r"[A-Za-z0-9_-]{1,100}")  # as the run board names an op
CANDIDATE = re.compile(
    r"[0-9a-f]{16}"
)  # harness.search.candidate: the first 16 hex digits of a sha256
DIGEST = re.compile(r"[0-9a-f]{0,64}")
WORD = re.compile(r"[a-z0-9_:-]{1,40}")  # a device, a hardware label
PROPOSER = re.compile(r"[A-Za-z0-9_.:/+-]{1,100}")  # "seed", "tuner", "llm:<model>"
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._()+,@-]{0,99}")  # a GPU's or CPU's name

T = TypeVar("T")
# CPython 3.11's ast module keeps one recursion counter for every thread: two job slots building
# ASTs at once can fail with "AST constructor recursion depth mismatch". The bot builds one
# at a time (`bot.winners` screens under it too).
AST_LOCK = threading.Lock()


class IntakeError(ValueError):
    """A result that does not fit: which field, and why."""


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
    compiled: tuple[Timing | None, ...]  # torch.compile's time per timed case, when measured


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
    cost_usd: float = 0.0


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
    history: tuple[tuple[int, float | None], ...]  # (evaluated, best score so far)
    machine: Machine
    llm: LlmUsage
    wall_s: float
    gpu_s: float
    stop_reason: str
    notes: tuple[str, ...]
    job_id: int | None = None
    hardware: str | None = None  # the job's hardware label, as the runner ran it

    def speedup(self) -> float | None:
        """The geometric mean of the best's speedups over its timed cases; None untimed."""
        if not (self.timed and self.best):
            return None
        values = [t.speedup for t in self.best.evaluation.timings if t.speedup is not None]
        if not values:
            return None
        return math.exp(sum(math.log(v) for v in values) / len(values))

    def gate(
        self,
        is_seed: bool | None = None,
        checked: Sequence[tuple[Sequence[int], str]] = (),
        timed: Sequence[tuple[Sequence[int], str]] = (),
    ) -> GateResult:
        """The harness's publish gate over these evaluations (`is_seed`: the best is the repo's
        kernel; None takes the result's word for it, which only shows, never publishes)."""
        best = self.best
        seed = (best is not None and best.proposer == "seed") if is_seed is None else is_seed
        return checked_gate(best.evaluation if best else None, seed, checked, timed)

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
            "history": [{"evaluated": n, "best_score": s} for n, s in self.history],
            "hardware": _machine_dict(self.machine),
            "llm": vars(self.llm).copy(),
            "wall_s": self.wall_s,
            "gpu_s": self.gpu_s,
            "stop_reason": self.stop_reason,
            "notes": list(self.notes),
        }
        if self.job_id is not None:
            data["job"] = {"id": self.job_id, "hardware": self.hardware}
        return data


def read_result(data: object, job_id: int | None = None) -> CheckedResult:
    """`data` (a decoded `SearchResult`) checked; IntakeError saying what does not fit."""
    top = _object(data, "the result")
    schema = top.get("schema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION or isinstance(schema, bool):
        raise IntakeError(f"schema {schema!r} is not one this bot reads ({SCHEMA_VERSION})")
    job = _optional(top.get("job"), "job", lambda v, w: _object(v, w))
    posted_job = None if job is None else _optional(job.get("id"), "job.id", _count)
    if job_id is not None and posted_job not in (None, job_id):
        raise IntakeError(f"the result is job {posted_job}'s, not job {job_id}'s")
    label = None if job is None else _optional(job.get("hardware"), "job.hardware", _word)
    best = _optional(top.get("best"), "best", _winning)
    llm = _object(top.get("llm", {}), "llm")
    return CheckedResult(
        problem=_match(top.get("problem"), "problem", OP),
        device=_word(top.get("device"), "device"),
        timed=_bool(top.get("timed"), "timed"),
        evaluated=_count(top.get("evaluated"), "evaluated"),
        counts=_counts(top.get("counts", {})),
        best=best,
        baseline=_optional(top.get("baseline"), "baseline", _evaluation),
        history=tuple(_list(top.get("history", []), "history", _point, MAX_HISTORY)),
        machine=_optional(top.get("hardware"), "hardware", _machine) or Machine(),
        llm=LlmUsage(
            configured=_bool(llm.get("configured", False), "llm.configured"),
            **{k: _count(llm.get(k, 0), f"llm.{k}") for k in _TOKEN_COUNTS},
            cost_usd=_figure(llm.get("cost_usd", 0.0), "llm.cost_usd"),
        ),
        wall_s=_figure(top.get("wall_s", 0.0), "wall_s"),
        gpu_s=_figure(top.get("gpu_s", 0.0), "gpu_s"),
        stop_reason=_text(top.get("stop_reason", ""), "stop_reason"),
        notes=tuple(_list(top.get("notes", []), "notes", _text)),
        job_id=job_id if job_id is not None else posted_job,
        hardware=label,
    )


_TOKEN_COUNTS = ("prompt_tokens", "completion_tokens", "requests", "failures")


def _winning(value: object, where: str) -> Winning:
    data = _object(value, where)
    evaluation = _evaluation(data.get("evaluation"), f"{where}.evaluation")
    timings = _object_list(data.get("evaluation"), "timings")
    compiled = tuple(
        _optional(t.get("compile"), f"{where}.evaluation.timings[{i}].compile", _timing)
        for i, t in enumerate(timings)
    )
    source = _source(data.get("source"), f"{where}.source")
    named = _match(data.get("id"), f"{where}.id", CANDIDATE)
    try:
        with AST_LOCK:
            hashed = candidate_id(source)
    except (RecursionError, MemoryError):
        raise IntakeError(f"{where}.source: nested too deeply to read") from None
    if named != hashed:
        raise IntakeError(f"{where}.id: {named} is not the hash of its source ({hashed})")
    return Winning(
        id=named,
        proposer=_match(data.get("proposer"), f"{where}.proposer", PROPOSER),
        generation=_count(data.get("generation", 0), f"{where}.generation"),
        parents=tuple(
            _list(data.get("parents", []), f"{where}.parents", lambda v, w: _match(v, w, CANDIDATE))
        ),
        score=_optional(data.get("score"), f"{where}.score", _figure),
        source=source,
        evaluation=evaluation,
        compiled=compiled,
    )


def _evaluation(value: object, where: str) -> Evaluation:
    data = _object(value, where)
    verdict = data.get("verdict")
    if not isinstance(verdict, str) or verdict not in {v.value for v in Verdict}:
        raise IntakeError(f"{where}.verdict: {_shown(verdict)} is not a verdict")
    return Evaluation(
        verdict=Verdict(str(verdict)),
        reason=_text(data.get("reason", ""), f"{where}.reason"),
        problem=_match(data.get("problem"), f"{where}.problem", OP),
        device=_word(data.get("device"), f"{where}.device"),
        timed=_bool(data.get("timed", False), f"{where}.timed"),
        candidate_hash=_match(data.get("candidate_hash", ""), f"{where}.candidate_hash", DIGEST),
        checks=_list(data.get("checks", []), f"{where}.checks", _check, MAX_CASES),
        timings=_list(data.get("timings", []), f"{where}.timings", _case_timing, MAX_CASES),
        flags=_list(data.get("flags", []), f"{where}.flags", _text),
    )


def _check(value: object, where: str) -> CaseCheck:
    data = _object(value, where)
    return CaseCheck(
        shape=_shape(data.get("shape"), f"{where}.shape"),
        dtype=_dtype(data.get("dtype"), f"{where}.dtype"),
        trials=_count(data.get("trials"), f"{where}.trials"),
        passed=_bool(data.get("passed"), f"{where}.passed"),
        max_abs=_error(data.get("max_abs", 0.0), f"{where}.max_abs"),
        max_rel=_error(data.get("max_rel", 0.0), f"{where}.max_rel"),
        rel_norm=_error(data.get("rel_norm", 0.0), f"{where}.rel_norm"),
        mismatches=_count(data.get("mismatches", 0), f"{where}.mismatches", 2**62),
        elements=_count(data.get("elements", 0), f"{where}.elements", 2**62),
        failure=_optional(data.get("failure"), f"{where}.failure", _text),
    )


def _case_timing(value: object, where: str) -> CaseTiming:
    data = _object(value, where)
    ci = _optional(data.get("speedup_ci"), f"{where}.speedup_ci", _interval)

    def figure(key: str) -> float | None:
        return _optional(data.get(key), f"{where}.{key}", _figure)

    return CaseTiming(
        shape=_shape(data.get("shape"), f"{where}.shape"),
        dtype=_dtype(data.get("dtype"), f"{where}.dtype"),
        candidate=_timing(data.get("candidate"), f"{where}.candidate"),
        baseline=_optional(data.get("baseline"), f"{where}.baseline", _timing),
        reference=_optional(data.get("reference"), f"{where}.reference", _timing),
        speedup=_optional(data.get("speedup"), f"{where}.speedup", _positive),
        speedup_ci=None if ci is None else list(ci),
        speedup_vs_reference=figure("speedup_vs_reference"),
        bytes=_count(data.get("bytes", 0), f"{where}.bytes", 2**62),
        flops=_optional(data.get("flops"), f"{where}.flops", lambda v, w: _count(v, w, 2**62)),
        achieved_gbps=figure("achieved_gbps"),
        achieved_tflops=figure("achieved_tflops"),
        roofline_fraction=figure("roofline_fraction"),
        rechecked=_bool(data.get("rechecked", False), f"{where}.rechecked"),
    )


def _timing(value: object, where: str) -> Timing:
    data = _object(value, where)
    return Timing(
        n=_count(data.get("n"), f"{where}.n"),
        median_ms=_positive(data.get("median_ms"), f"{where}.median_ms"),
        q10_ms=_positive(data.get("q10_ms"), f"{where}.q10_ms"),
        q90_ms=_positive(data.get("q90_ms"), f"{where}.q90_ms"),
        min_ms=_positive(data.get("min_ms"), f"{where}.min_ms"),
    )


def _machine(value: object, where: str) -> Machine:
    data = _object(value, where)
    ceilings = _object(data.get("ceilings") or {}, f"{where}.ceilings")

    def version(key: str) -> str | None:
        return _optional(data.get(key), f"{where}.{key}", lambda v, w: _match(v, w, VERSION))

    return Machine(
        name=_optional(data.get("name"), f"{where}.name", lambda v, w: _match(v, w, NAME)),
        capability=version("capability"),
        memory_gib=_optional(data.get("memory_gib"), f"{where}.memory_gib", _figure),
        driver=version("driver"),
        cuda=version("cuda"),
        torch=version("torch"),
        triton=version("triton"),
        cpu=_optional(data.get("cpu"), f"{where}.cpu", lambda v, w: _match(v, w, NAME)),
        copy_gbps=_optional(ceilings.get("copy_gbps"), f"{where}.ceilings.copy_gbps", _figure),
        matmul_tflops=_optional(
            ceilings.get("matmul_tflops"), f"{where}.ceilings.matmul_tflops", _figure
        ),
    )


def _point(value: object, where: str) -> tuple[int, float | None]:
    data = _object(value, where)
    score = _optional(data.get("best_score"), f"{where}.best_score", _figure)
    return _count(data.get("evaluated"), f"{where}.evaluated"), score


def _counts(value: object) -> tuple[tuple[str, int], ...]:
    data = _object(value, "counts")
    known = {v.value for v in Verdict}
    for key in data:
        if key not in known:
            raise IntakeError(f"counts: {_shown(key)} is not a verdict")
    return tuple((key, _count(n, f"counts.{key}")) for key, n in data.items())


def _winning_dict(best: Winning) -> dict[str, Any]:
    evaluation = best.evaluation.to_dict()
    for timing, compiled in zip(evaluation["timings"], best.compiled, strict=True):
        if compiled is not None:
            timing["compile"] = vars(compiled).copy()
    return {
        "id": best.id,
        "proposer": best.proposer,
        "generation": best.generation,
        "parents": list(best.parents),
        "score": best.score,
        "source": best.source,
        "evaluation": evaluation,
    }


def _machine_dict(machine: Machine) -> dict[str, Any]:
    data = {k: v for k, v in vars(machine).items() if k not in ("copy_gbps", "matmul_tflops")}
    if machine.copy_gbps is not None or machine.matmul_tflops is not None:
        data["ceilings"] = {"copy_gbps": machine.copy_gbps, "matmul_tflops": machine.matmul_tflops}
    return data


# One reader per kind of field: each takes the value and where it sits, for the refusal.


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise IntakeError(f"{where}: expected an object, got {_kind(value)}")
    return value


def _object_list(value: object, key: str) -> list[Mapping[str, Any]]:
    """The objects under `key` of an already checked object."""
    items = value.get(key, []) if isinstance(value, dict) else []
    return [item for item in items if isinstance(item, dict)]


def _list(
    value: object, where: str, read: Callable[[object, str], T], cap: int = MAX_LIST
) -> list[T]:
    if not isinstance(value, list):
        raise IntakeError(f"{where}: expected a list, got {_kind(value)}")
    if len(value) > cap:
        raise IntakeError(f"{where}: {len(value)} items, at most {cap}")
    return [read(item, f"{where}[{i}]") for i, item in enumerate(value)]


def _optional(value: object, where: str, read: Callable[[object, str], T]) -> T | None:
    return None if value is None else read(value, where)


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise IntakeError(f"{where}: expected true or false, got {_kind(value)}")
    return value


def _count(value: object, where: str, high: int = MAX_COUNT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise IntakeError(f"{where}: expected a whole number from 0 to {high}, got {_shown(value)}")
    return value


def _figure(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IntakeError(f"{where}: expected a number, got {_kind(value)}")
    number = float(value)
    if not (math.isfinite(number) and 0.0 <= number <= MAX_FIGURE):
        raise IntakeError(
            f"{where}: expected a finite number from 0 to {MAX_FIGURE:g}, got {value}"
        )
    return number


def _error(value: object, where: str) -> float:
    """An error figure: a failed check may report an infinite one."""
    if isinstance(value, float) and math.isinf(value) and value > 0:
        return value
    return _figure(value, where)


def _positive(value: object, where: str) -> float:
    number = _figure(value, where)
    if number <= 0.0:
        raise IntakeError(f"{where}: expected a number above 0, got {number}")
    return number


def _interval(value: object, where: str) -> tuple[float, float]:
    bounds = _list(value, where, _positive, 2)
    if len(bounds) != 2 or bounds[0] > bounds[1]:
        raise IntakeError(f"{where}: expected [low, high] with 0 < low <= high")
    return bounds[0], bounds[1]


def _shape(value: object, where: str) -> list[int]:
    return _list(value, where, lambda v, w: _count(v, w, 2**40), 8)


def _dtype(value: object, where: str) -> str:
    if value not in DTYPES:
        raise IntakeError(f"{where}: {_shown(value)} is none of {', '.join(DTYPES)}")
    return str(value)


def _word(value: object, where: str) -> str:
    return _match(value, where, WORD)


def _match(value: object, where: str, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise IntakeError(f"{where}: {_shown(value)} does not match {pattern.pattern}")
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise IntakeError(f"{where}: expected text, got {_kind(value)}")
    if len(value) > MAX_TEXT:
        raise IntakeError(f"{where}: {len(value)} characters, at most {MAX_TEXT}")
    _utf8(value, where)
    return value


def _source(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise IntakeError(f"{where}: expected the module's text, got {_kind(value)}")
    size = len(_utf8(value, where))
    if size > MAX_SOURCE_BYTES:
        raise IntakeError(f"{where}: {size} bytes, at most {MAX_SOURCE_BYTES}")
    return value


def _utf8(value: str, where: str) -> bytes:
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise IntakeError(f"{where}: not UTF-8 text (a lone surrogate)") from None
    if "\0" in value:
        raise IntakeError(f"{where}: contains a NUL character")
    return encoded


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _shown(value: object) -> str:
    """A value as a refusal quotes it: short, one line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
