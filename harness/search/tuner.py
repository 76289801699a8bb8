"""`TunerProposer`: new candidates from a kernel module's launch meta-parameters, with no LLM.

It steps the knobs that `harness.search.knobs` finds, one or two at a time, in the direction the
best parent's measurements point. When the nearest steps from every parent were all tried, it
reaches further (two, then three choices away), so a long search keeps finding untried settings.
"""

from __future__ import annotations

import itertools
import random

from kevolve.harness.evaluation import Evaluation
from kevolve.harness.search.candidate import candidate_id
from kevolve.harness.search.knobs import SIZES, Site, SourceText, find_sites, render
from kevolve.harness.search.proposal import Drained, Proposal, ProposalContext

_DEFAULTS = {"num_warps": 4, "num_stages": 3}  # what Triton uses when a launch names none
_LOW_ROOFLINE = 0.6  # a memory-bound op below this fraction of its roofline has room to go
_RIDGE = 20.0  # FLOPs per byte under which an op counts as memory-bound
_REACH = (1, 2, 3)  # how many choices away a step may go, nearest first


class TunerProposer:
    """Proposes one- and two-knob steps from the best parent, ordered by what was measured."""

    name = "tuner"

    def propose(self, ctx: ProposalContext, rng: random.Random, count: int) -> list[Proposal]:
        """Up to `count` untried neighbours of the parents, best parent and nearest steps first
        (of the baseline when there are no parents)."""
        origins: list[tuple[str, str, Evaluation | None]] = [
            (p.candidate.id, p.candidate.source, p.evaluation) for p in ctx.parents
        ]
        if not origins:
            origins = [(candidate_id(ctx.baseline_source), ctx.baseline_source, None)]
        seen, out = set(ctx.tried) | {pid for pid, _, _ in origins}, list[Proposal]()
        for reach in _REACH:
            for pid, source, ev in origins:
                try:
                    sites = find_sites(source)
                except (SyntaxError, ValueError):
                    continue
                text = SourceText(source)
                for move in _moves(sites, _hint(ev), rng, reach):
                    if len(out) >= count:
                        return out
                    new = render(text, sites, move)
                    if new is not None and (cid := candidate_id(new)) not in seen:
                        seen.add(cid)
                        out.append(Proposal(new, (pid,), self.name))
        return out

    def drain(self) -> Drained:
        """Nothing: the tuner asks no one."""
        return Drained()


def _moves(
    sites: list[Site], hint: str | None, rng: random.Random, reach: int = 1
) -> list[dict[str, int]]:
    """One- and two-knob steps: preferred directions first, then fewer changes, else rng order."""
    steps = [[(s, v) for v in _steps(s, reach)] for s in sites]
    pairable = [st for st, s in zip(steps, sites, strict=True) if s.family != "configs"]
    moves = [[step] for st in steps for step in st]
    moves += [[x, y] for a, b in itertools.combinations(pairable, 2) for x in a for y in b]
    rng.shuffle(moves)
    moves.sort(key=lambda m: (sum(not _preferred(s, v, hint) for s, v in m), len(m)))
    return [{s.knob.name: v for s, v in m} for m in moves]


def _steps(site: Site, reach: int = 1) -> list[int]:
    """The `reach` nearest smaller and larger choices (every choice when the current value is
    unknown)."""
    current = site.knob.value if site.knob.value is not None else _DEFAULTS.get(site.family)
    if current is None:
        return list(site.knob.choices)
    lower = [c for c in site.knob.choices if c < current]
    return lower[-reach:] + [c for c in site.knob.choices if c > current][:reach]


def _preferred(site: Site, value: int, hint: str | None) -> bool:
    """Whether `value` goes the way the parent's measurements point (any way without a hint)."""
    if hint is None:
        return True
    current = site.knob.value or _DEFAULTS.get(site.family, value + 1)  # unknown: a cap, smaller
    if site.family == "num_warps":
        return value > current
    return site.family in SIZES and (value > current) == (hint == "memory")


def _hint(ev: Evaluation | None) -> str | None:
    """The parent's hint: "spills", "memory" (a memory-bound op far from its roofline) or None."""
    if ev is None:
        return None
    if any((k.n_spills or 0) > 0 for k in ev.kernels):
        return "spills"
    memory = [t for t in ev.timings if t.flops is None or t.flops < _RIDGE * t.bytes]
    fractions = [t.roofline_fraction for t in memory if t.roofline_fraction is not None]
    return "memory" if fractions and sum(fractions) / len(fractions) < _LOW_ROOFLINE else None
