"""`Snapshot`: a read-only look at a search's state file, while it runs or after."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Snapshot:
    """What a state file says about its search."""

    problem: str
    hardware: str
    generation: int = 0
    evaluated: int = 0
    stored: int = 0  # evaluations in the file, also those of a generation not yet folded
    counts: dict[str, int] = field(default_factory=dict)
    best: str | None = None
    best_score: float | None = None
    best_proposer: str | None = None
    best_source: str | None = None
    elapsed_s: float = 0.0
    tokens: int = 0
    cost_usd: float = 0.0
    repairs: int = 0
    repaired: int = 0
    exchanges: int = 0
    spoiled: int = 0  # exchanges that produced no candidate


def snapshot(path: Path) -> Snapshot:
    """The status of the search whose state `path` holds; opened read-only."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0) as db:
        (identity,) = db.execute("SELECT value FROM meta WHERE key = 'identity'").fetchone()
        who = json.loads(identity)
        status = Snapshot(problem=who["problem"], hardware=who["hardware"])
        status.stored = db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
        row = db.execute(
            "SELECT state FROM checkpoints ORDER BY generation DESC LIMIT 1"
        ).fetchone()
        if row is not None:
            _from_checkpoint(status, json.loads(row[0]), db)
        has_exchanges = db.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'exchanges'"
        ).fetchone()[0]
        if has_exchanges:
            status.exchanges, status.spoiled = db.execute(
                "SELECT COUNT(*), COUNT(*) - COUNT(candidate_id) FROM exchanges"
            ).fetchone()
    return status


def _from_checkpoint(status: Snapshot, state: dict[str, Any], db: sqlite3.Connection) -> None:
    """Fill in what the newest checkpoint knows."""
    status.generation = int(state["generation"])
    status.evaluated = int(state["evaluated"])
    status.counts = {str(k): int(v) for k, v in state["counts"].items()}
    status.elapsed_s = float(state["elapsed_s"])
    status.tokens = int(state.get("tokens", 0))
    status.cost_usd = float(state.get("cost_usd", 0.0))
    status.repairs, status.repaired = state.get("repair_counts", [0, 0])
    status.best = state.get("best")
    if status.best:
        history = [h for h in state["history"] if h.get("candidate") == status.best]
        status.best_score = history[-1]["score"] if history else None
        found = db.execute(
            "SELECT proposer, source FROM candidates WHERE id = ?", (status.best,)
        ).fetchone()
        if found:
            status.best_proposer, status.best_source = found
