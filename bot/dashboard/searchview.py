"""`SearchView`: what the search page shows, computed once from a search's records.

The best-so-far line follows the search's own history (its checkpoints), then the verdicts
stored since the newest checkpoint, so the chart moves with every finished evaluation while a
search runs, not only once per generation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from kevolve.bot.dashboard.ancestry import Placed, Standing, layout
from kevolve.bot.dashboard.charts import ChartPoint
from kevolve.bot.dashboard.timeline import Timeline, rebuild
from kevolve.harness.evaluation import Evaluation
from kevolve.harness.search.snapshot import Fold, Mark, SearchRecords
from kevolve.harness.search.status import score

REPAIR = ":repair"  # the proposer tag of an LLM repair of a failed candidate


@dataclass(frozen=True)
class IslandView:
    """One island of elites at the newest checkpoint, best first."""

    number: int
    members: tuple[tuple[str, float | None], ...]  # candidate id, score


@dataclass(frozen=True)
class ModelUse:
    """What one model was asked and what came of it."""

    model: str
    requests: int
    failed: int  # exchanges that produced no candidate
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    produced: int  # distinct candidates
    correct: int  # of those, judged correct


@dataclass
class SearchView:
    """A search as its page shows it."""

    problem: str
    hardware: str
    complete: bool  # False: built from a result summary, not from the state file
    points: list[ChartPoint] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    evaluated: int = 0
    generation: int = 0
    elapsed_s: float = 0.0
    tokens: int = 0
    cost_usd: float = 0.0
    timed: bool = False
    best: str | None = None
    best_score: float | None = None
    islands: list[IslandView] = field(default_factory=list)
    models: list[ModelUse] = field(default_factory=list)
    standings: dict[str, Standing] = field(default_factory=dict)
    placed: list[Placed] = field(default_factory=list)
    timeline: Timeline | None = None
    repairs: tuple[int, int] = (0, 0)  # judged, correct


def search_view(records: SearchRecords, complete: bool = True) -> SearchView:
    """The page's view of a search's records."""
    judged = dict(records.evaluations)
    view = SearchView(records.problem, records.hardware, complete)
    view.standings = {cid: Standing(ev.verdict.value, score(ev)) for cid, ev in judged.items()}
    view.points = _points(records.folds, records.marks, records.evaluations)
    view.counts = dict(Counter(ev.verdict.value for ev in judged.values()).most_common())
    view.evaluated = max(len(judged), len(records.folds))
    view.timed = any(ev.timed for ev in judged.values())
    last = records.marks[-1] if records.marks else None
    if last is not None:
        view.generation, view.elapsed_s = last.generation, last.elapsed_s
        view.tokens, view.cost_usd = last.tokens, last.cost_usd
    view.best, view.best_score = _best(view.points, last)
    view.islands = _islands(last, view.standings)
    view.models = _models(records, view.standings)
    view.placed = layout(list(records.candidates.values()), view.standings)
    view.timeline = rebuild(records.evaluations, records.candidates, records.marks)
    repairs = [c.id for c in records.candidates.values() if c.proposer.endswith(REPAIR)]
    fixed = [cid for cid in repairs if view.standings.get(cid, Standing("", None)).score]
    view.repairs = (len([cid for cid in repairs if cid in judged]), len(fixed))
    return view


def _points(
    folds: Sequence[Fold], marks: Sequence[Mark], stored: Sequence[tuple[str, Evaluation]]
) -> list[ChartPoint]:
    """The chart's points: folded verdicts at their generation's time, then newer ones."""
    judged = dict(stored)
    points: list[ChartPoint] = []
    best_id: str | None = None
    best: float | None = None
    for fold in folds:
        if fold.score is not None and (best is None or fold.score > best):
            best_id, best = fold.candidate, fold.score
        seconds = next((m.elapsed_s for m in marks if m.evaluated >= fold.evaluated), None)
        limit = _limit(judged.get(best_id)) if best_id else None
        points.append(
            ChartPoint(
                fold.evaluated,
                seconds,
                fold.candidate,
                fold.verdict,
                fold.score,
                fold.best_score,
                limit,
            )
        )
    folded = {fold.candidate for fold in folds}
    for cid, ev in stored:
        if cid in folded:
            continue
        value = score(ev)
        if value is not None and (best is None or value > best):
            best_id, best = cid, value
        limit = _limit(judged.get(best_id)) if best_id else None
        points.append(ChartPoint(len(points) + 1, None, cid, ev.verdict.value, value, best, limit))
    return points


def _limit(ev: Evaluation | None) -> float | None:
    """An evaluation's mean share of the roofline limit over its timed cases, if measured."""
    if ev is None:
        return None
    shares = [t.roofline_fraction for t in ev.timings if t.roofline_fraction is not None]
    return sum(shares) / len(shares) if shares else None


def _best(points: Sequence[ChartPoint], last: Mark | None) -> tuple[str | None, float | None]:
    """The best candidate and its score: the first to reach the highest score (as the search
    ranks ties)."""
    scored = [p for p in points if p.score is not None]
    if not scored:
        return (last.best if last else None), None
    top = max(p.score or 0.0 for p in scored)
    first = next(p for p in scored if p.score == top)
    return first.candidate, top


def _islands(last: Mark | None, standings: dict[str, Standing]) -> list[IslandView]:
    """Each island's elites at the newest checkpoint, with their scores."""
    if last is None:
        return []
    return [
        IslandView(i, tuple((cid, standings.get(cid, Standing("", None)).score) for cid in isle))
        for i, isle in enumerate(last.islands)
    ]


def _models(records: SearchRecords, standings: dict[str, Standing]) -> list[ModelUse]:
    """Requests, tokens, cost and outcome per model, from the kept exchanges."""
    uses = []
    for model in sorted({e.exchange.model for e in records.exchanges}):
        mine = [e for e in records.exchanges if e.exchange.model == model]
        produced = {e.candidate_id for e in mine if e.candidate_id}
        correct = [c for c in produced if standings.get(c, Standing("", None)).score is not None]
        uses.append(
            ModelUse(
                model=model,
                requests=len(mine),
                failed=sum(1 for e in mine if e.candidate_id is None),
                prompt_tokens=sum(e.exchange.prompt_tokens for e in mine),
                completion_tokens=sum(e.exchange.completion_tokens for e in mine),
                cost_usd=sum(e.exchange.cost_usd for e in mine),
                produced=len(produced),
                correct=len(correct),
            )
        )
    return uses
