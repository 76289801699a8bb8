"""The lineage tree: every candidate of a search placed by generation, linked to its parents.

Drawn as SVG on the server. Each node is a link to its detail (source, diff to its parent,
verdict, prompt and reply), so the tree works without JavaScript; the page's script opens the
detail beside the tree instead of loading a new page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

from kevolve.harness.search.candidate import Candidate

STEP_X, STEP_Y, MARGIN = 34, 56, 24
MAX_NODES = 600  # beyond this the tree keeps the newest, and says so


@dataclass(frozen=True)
class Standing:
    """What the tree shows of one candidate's verdict."""

    verdict: str  # "pending" while it waits for its evaluation
    score: float | None


@dataclass(frozen=True)
class Placed:
    """A candidate at its place in the drawing."""

    candidate: Candidate
    x: int
    y: int
    standing: Standing


def layout(candidates: Sequence[Candidate], standings: Mapping[str, Standing]) -> list[Placed]:
    """One row per generation, oldest on top; in a row, by island, then in proposal order."""
    kept = list(candidates)[-MAX_NODES:]
    rows: dict[int, list[Candidate]] = {}
    for c in kept:
        rows.setdefault(c.generation, []).append(c)
    placed = []
    for depth, generation in enumerate(sorted(rows)):
        row = sorted(rows[generation], key=lambda c: c.island)  # stable: proposal order stays
        for i, c in enumerate(row):
            standing = standings.get(c.id, Standing("pending", None))
            placed.append(Placed(c, MARGIN + i * STEP_X, MARGIN + depth * STEP_Y, standing))
    return placed


def tree_svg(
    placed: Sequence[Placed], link: Callable[[str], str], best: str | None, chosen: str | None
) -> str:
    """The tree as SVG: edges from each parent, nodes coloured by verdict, the best ringed and
    the chosen node marked; `link(id)` is where a node's link goes."""
    if not placed:
        return '<svg class="tree" viewBox="0 0 200 40" width="200" height="40" data-nodes="0"/>'
    where = {p.candidate.id: p for p in placed}
    width = max(p.x for p in placed) + MARGIN
    height = max(p.y for p in placed) + MARGIN
    edges = []
    for p in placed:
        for rank, parent in enumerate(p.candidate.parents):
            if parent in where and parent != p.candidate.id:
                q = where[parent]
                kind = "edge" if rank == 0 else "edge extra"
                edges.append(f'<line class="{kind}" x1="{q.x}" y1="{q.y}" x2="{p.x}" y2="{p.y}"/>')
    nodes = [_node(p, link, p.candidate.id == best, p.candidate.id == chosen) for p in placed]
    return (
        f'<svg class="tree" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" data-nodes="{len(placed)}">{"".join(edges)}{"".join(nodes)}</svg>'
    )


def _node(p: Placed, link: Callable[[str], str], best: bool, chosen: bool) -> str:
    """One node: a link around a circle, its title saying what it is."""
    c, s = p.candidate, p.standing
    score = "" if s.score is None else f", score {s.score:.3f}"
    title = f"{c.id} · {c.proposer} · island {c.island} · {s.verdict}{score}"
    classes = ["node", "v-" + "".join(ch if ch.isalnum() else "-" for ch in s.verdict)]
    classes += ["best"] if best else []
    classes += ["chosen"] if chosen else []
    return (
        f'<a href="{escape(link(c.id))}" class="node-link" data-node="{escape(c.id)}">'
        f'<circle class="{" ".join(classes)}" cx="{p.x}" cy="{p.y}" r="9">'
        f"<title>{escape(title)}</title></circle></a>"
    )
