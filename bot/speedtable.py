"""The best candidate's timed cases as messages show them: eager PyTorch, torch.compile in both
modes, the current kernel and the candidate, and how the candidate stands against torch.compile.

A search times torch.compile in its seed's evaluation only (`harness.evaluate.CompileArm`), so a
case the best's own evaluation did not time under torch.compile takes the seed's figures for the
same case (`harness.evaluation.with_seed_compile`), and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kevolve.harness.evaluation import (
    CaseTiming,
    CompiledTiming,
    CompileMode,
    Evaluation,
    geometric_mean,
    shape_cell,
    with_seed_compile,
)

MODE_NAMES = {CompileMode.DEFAULT.value: "default", CompileMode.MAX_AUTOTUNE.value: "max-autotune"}


@dataclass(frozen=True)
class CompileStanding:
    """How the candidate's timed cases compare with torch.compile of the reference."""

    cases: int  # timed cases
    behind: tuple[str, ...] = ()  # cases where the faster torch.compile mode beats the candidate
    missing: tuple[str, ...] = ()  # "case: why" for cases with no torch.compile figure
    versus: float | None = None  # geometric mean of (faster compile / candidate) where measured
    from_seed: bool = False  # some figures come from the seed's evaluation

    @property
    def slower(self) -> bool:
        """Whether torch.compile beats the candidate on at least one timed case."""
        return bool(self.behind)

    @property
    def measured(self) -> bool:
        """Whether torch.compile was timed on at least one case."""
        return len(self.missing) < self.cases

    def refusals(self) -> list[str]:
        """Why the candidate does not establish that it beats torch.compile (`require_beats`)."""
        reasons = [f"{case} is slower than torch.compile" for case in self.behind]
        reasons += [f"torch.compile was not measured on {case}" for case in self.missing]
        return reasons


def merged_timings(best: Evaluation, seed: Evaluation | None) -> list[CaseTiming]:
    """The best's timed cases, with the seed's torch.compile figures where it has none."""
    return with_seed_compile(best.timings, seed)


def standing(timings: Sequence[CaseTiming], dims: Sequence[str] = ()) -> CompileStanding:
    """The candidate against torch.compile over these (merged) timed cases."""
    behind, missing, ratios = [], [], []
    for t in timings:
        case = f"{shape_cell(t.shape, dims)} {t.dtype}"
        versus = t.speedup_vs_compile()
        if versus is None:
            missing.append(f"{case} ({_why_missing(t.compiled)})")
            continue
        ratios.append(versus)
        if versus < 1.0:
            fastest = t.fastest_compiled()
            mode = MODE_NAMES.get(fastest.mode, fastest.mode) if fastest else "?"
            behind.append(f"{case} ({versus:.2f}x of torch.compile {mode})")
    return CompileStanding(
        cases=len(timings),
        behind=tuple(behind),
        missing=tuple(missing),
        versus=geometric_mean(ratios),
        from_seed=any(c.from_seed for t in timings for c in t.compiled),
    )


def rows(
    timings: Sequence[CaseTiming], dims: Sequence[str], escape: Callable[[str], str]
) -> list[dict[str, Any]]:
    """One row per timed case, as the templates read it (`escape` makes error text safe)."""
    return [_row(t, dims, escape) for t in timings]


def compile_failures(
    timings: Sequence[CaseTiming], dims: Sequence[str], escape: Callable[[str], str]
) -> list[str]:
    """Each distinct reason a torch.compile arm has no figure, with the cases it hit."""
    hit: dict[tuple[str, str], list[str]] = {}
    for t in timings:
        for arm in t.compiled:
            if arm.error:
                name = MODE_NAMES.get(arm.mode, arm.mode)
                hit.setdefault((name, arm.error), []).append(
                    f"{shape_cell(t.shape, dims)} {t.dtype}"
                )
    return [
        f"torch.compile {mode} on {', '.join(cases)}: {escape(error)}"
        for (mode, error), cases in hit.items()
    ]


def _row(t: CaseTiming, dims: Sequence[str], escape: Callable[[str], str]) -> dict[str, Any]:
    """One timed case: medians in ms (None: not measured), the speedups, the roofline share."""
    versus = t.speedup_vs_compile()
    return {
        "shape": shape_cell(t.shape, dims),
        "dtype": t.dtype,
        "eager": t.reference.median_ms if t.reference else None,
        "compile": _cell(t.compiled_in(CompileMode.DEFAULT), escape),
        "autotune": _cell(t.compiled_in(CompileMode.MAX_AUTOTUNE), escape),
        "baseline": t.baseline.median_ms if t.baseline else None,
        "candidate": t.candidate.median_ms,
        "speedup": t.speedup,
        "speedup_ci": t.speedup_ci,
        "vs_compile": versus,
        "behind": versus is not None and versus < 1.0,
        "roofline_fraction": t.roofline_fraction,
    }


def _cell(arm: CompiledTiming | None, escape: Callable[[str], str]) -> dict[str, Any]:
    """A torch.compile cell: its median, or why there is none."""
    if arm is None:
        return {"ms": None, "error": None}
    return {
        "ms": arm.timing.median_ms if arm.timing else None,
        "error": escape(arm.error) if arm.error else None,
    }


def _why_missing(arms: Sequence[CompiledTiming]) -> str:
    """Why a case has no torch.compile figure, in a few words of the bot's own (the error
    text itself came from the runner and is shown only escaped, in the benchmark's notes)."""
    if not arms:
        return "the compile arm did not run"
    return "torch.compile failed there" if any(a.error for a in arms) else "no timing came back"
