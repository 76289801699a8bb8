"""A winner vetted on the bot's side before anything is published (DESIGN.md §7).

The kernel path is the one the job recorded from the repo's config at its commit, and must be
what that config, in the bot's own checkout of the commit, names (a job an earlier version stored
recorded none: the config's is taken); it is read without following a symlink. The publish gate
is the harness's, recomputed over the result's evaluations and the cases the config names; the
winner is screened and checked again for correctness by the bot's judge. A result fails here with
the reason its proposal gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kevolve.bot.publisher import Tree
from kevolve.bot.repoconfig import load_settings
from kevolve.bot.speedtable import merged_timings, standing
from kevolve.bot.treepath import TreePathError, read_inside
from kevolve.bot.winners import ModuleCheck
from kevolve.harness.search.result import GateResult
from kevolve.harness.spec.load import SpecError, load_problems, select
from kevolve.harness.spec.problem import Problem
from kevolve.runners.intake import AST_LOCK, CheckedResult

UNTIMED = "nothing was timed"  # the gate's reason a dry run may be published anyway


class Unfit(Exception):
    """Why a result is not published, in the words its proposal gives."""


@dataclass(frozen=True)
class Vetted:
    """What the bot established itself: the problem, its kernel file and the gate."""

    problem: Problem
    kernel: str  # the config's kernel path, relative to the repo
    original: str  # that file's text at the job's commit
    gate: GateResult


def vet(
    tree: Tree,
    op: str,
    result: CheckedResult,
    judge: ModuleCheck,
    untimed: bool,
    recorded: str | None = None,
) -> Vetted:
    """The vetted winner of `result`; Unfit when the gate or the bot's own check refuses it.

    `untimed`: a correctness-only result may pass the gate (dry runs, demos); `recorded`: the
    kernel file the job recorded for `op` (None: it recorded none)."""
    best = result.best
    if best is None:
        raise Unfit("no correct candidate was found")
    problem, kernel, original = kernel_of(tree, op, recorded)
    try:
        settings = load_settings(tree.root)
    except SpecError as exc:
        raise Unfit(f"the repo's config at {tree.sha[:7]}: {exc}") from None
    gate = result.gate(best.source == original, *cases(problem, result.timed), settings.min_speedup)
    reasons = [r for r in gate.reasons if not (untimed and UNTIMED in r)]
    if settings.require_beats == "compile" and result.timed:
        timings = merged_timings(best.evaluation, result.baseline)
        reasons += [
            f'{why} (require_beats = "compile")'
            for why in standing(timings, best.evaluation.dims).refusals()
        ]
    if reasons:
        raise Unfit("publish gate: " + "; ".join(reasons))
    why = judge.check(problem, best.source)
    if why is not None:
        raise Unfit(f"the bot's own check of the winner at {tree.sha[:7]} refused it: {why}")
    return Vetted(problem, kernel, original, gate)


def kernel_of(tree: Tree, op: str, recorded: str | None = None) -> tuple[Problem, str, str]:
    """The op's problem in the tree, its kernel path and that file's text; Unfit when the
    config does not load, names another kernel file than the job `recorded`, or its kernel file
    is missing, a symlink or outside the tree."""
    try:
        with AST_LOCK:  # the config's modules are parsed: one AST at a time (see runners.intake)
            problem = select(load_problems(tree.root), op, tree.root)
    except SpecError as exc:
        raise Unfit(f"the repo's config at {tree.sha[:7]}: {exc}") from None
    if problem.kernel is None:
        raise Unfit("the problem has no kernel file in the repo to replace")
    kernel = problem.kernel if recorded is None else recorded
    if kernel != problem.kernel:
        raise Unfit(
            f"the job was queued for {op}'s kernel file {kernel!r}, but the repo's config at"
            f" {tree.sha[:7]} names {problem.kernel!r}"
        )
    try:
        original = read_inside(tree.root, kernel)
    except TreePathError as exc:
        raise Unfit(f"the config's kernel file at {tree.sha[:7]}: {exc}") from None
    return problem, kernel, original


Case = tuple[Sequence[int], str]  # (shape, dtype)


def cases(problem: Problem, timed: bool) -> tuple[list[Case], list[Case]]:
    """The (shape, dtype) cases the best must have passed, and those it must have been timed on:
    the small shapes always, the production ones where a GPU ran (as the judge checks them)."""
    shapes = list(problem.check_shapes)
    if timed or not shapes:
        shapes += [s for s in problem.shapes if s not in shapes]
    checked: list[Case] = [(s, d) for s in shapes for d in problem.dtypes]
    measured: list[Case] = [(s, d) for s in problem.shapes for d in problem.dtypes] if timed else []
    return checked, measured
