"""`NodeView`: one candidate of a search in full, for the lineage tree's detail panel.

Its source and the diff to its first parent, the verdict and its reason, correctness and timing
per case, the profile, the prompt and raw reply that produced it, and the repairs it got.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field

from kevolve.bot.dashboard.searchview import REPAIR
from kevolve.harness.evaluation import CaseTiming, Evaluation, with_seed_compile
from kevolve.harness.profile import Profile, profile_from_dict
from kevolve.harness.search.candidate import Candidate
from kevolve.harness.search.snapshot import LoggedExchange, SearchRecords

MAX_DIFF_LINES = 2000


@dataclass(frozen=True)
class DiffLine:
    """One line of a unified diff and its kind: "add", "del", "hunk" or "same"."""

    kind: str
    text: str


@dataclass(frozen=True)
class Related:
    """Another candidate named on this one's page (a parent, a repair), with its verdict."""

    id: str
    proposer: str
    verdict: str


@dataclass
class NodeView:
    """A candidate and everything the search kept about it."""

    candidate: Candidate
    evaluation: Evaluation | None
    timings: list[CaseTiming] = field(default_factory=list)
    parent: Candidate | None = None
    diff: list[DiffLine] = field(default_factory=list)
    exchanges: list[LoggedExchange] = field(default_factory=list)
    repairs: list[Related] = field(default_factory=list)  # repairs asked of this candidate
    repair_of: Related | None = None  # the failed candidate this one repairs
    children: list[Related] = field(default_factory=list)
    profile: Profile | None = None
    profile_error: str = ""

    @property
    def is_seed(self) -> bool:
        """Whether this is the search's starting point (the repo's current kernel)."""
        return not self.candidate.parents


def node_view(records: SearchRecords, candidate_id: str) -> NodeView | None:
    """The view of one candidate, or None when the records hold no such candidate."""
    candidate = records.candidates.get(candidate_id)
    if candidate is None:
        return None
    judged = dict(records.evaluations)
    ev = judged.get(candidate_id)
    seed = next((judged.get(c.id) for c in records.candidates.values() if not c.parents), None)
    view = NodeView(candidate, ev, with_seed_compile(ev.timings, seed) if ev else [])
    if candidate.parents:
        view.parent = records.candidates.get(candidate.parents[0])
    if view.parent is not None:
        view.diff = diff_lines(view.parent.source, candidate.source)
    view.exchanges = sorted(
        (e for e in records.exchanges if e.candidate_id == candidate_id),
        key=lambda e: e.exchange.error is not None,  # the one that produced it first
    )
    for other in records.candidates.values():
        if candidate_id not in other.parents:
            continue
        related = _related(other, judged)
        if other.proposer.endswith(REPAIR) and other.parents[0] == candidate_id:
            view.repairs.append(related)
        else:
            view.children.append(related)
    if candidate.proposer.endswith(REPAIR) and view.parent is not None:
        view.repair_of = _related(view.parent, judged)
    _profile(view, records)
    return view


def diff_lines(before: str, after: str) -> list[DiffLine]:
    """The unified diff from `before` to `after`, line by line with each line's kind."""
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), "parent", "candidate", lineterm="", n=3
    )
    shown = []
    for line in list(lines)[2:MAX_DIFF_LINES]:  # the two file header lines say nothing here
        kind = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "same")
        shown.append(DiffLine(kind, line))
    return shown


def _related(candidate: Candidate, judged: dict[str, Evaluation]) -> Related:
    """Another candidate as a link with its verdict (pending while unjudged)."""
    ev = judged.get(candidate.id)
    return Related(candidate.id, candidate.proposer, ev.verdict.value if ev else "pending")


def _profile(view: NodeView, records: SearchRecords) -> None:
    """The candidate's stored profile, or why there is none."""
    stored = records.profiles.get(view.candidate.id)
    if stored is None:
        return
    view.profile_error = stored.error
    if stored.data:
        try:
            view.profile = profile_from_dict(json.loads(stored.data))
        except (ValueError, KeyError, TypeError) as exc:
            view.profile_error = f"the stored profile cannot be read: {exc}"
