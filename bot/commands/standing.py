"""`kevolve status`: where a running or finished search stands, read from its state file."""

from __future__ import annotations

import argparse
import json
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kevolve.bot.commands.common import usage_error


def add_parser(sub: Any) -> None:
    """Register the subcommand and its arguments."""
    p = sub.add_parser(
        "status",
        help="show where a search stands (running or finished), from its state file",
        description="Read a search's SQLite state file (read-only; the search may be running) "
        "and show how many candidates were judged with which verdicts, the best so far, the "
        "generation, time, LLM tokens and cost, repairs, and the prompts and replies kept.",
    )
    p.add_argument(
        "state",
        type=Path,
        help="a state file (e.g. .kevolve/softmax.sqlite), or a folder of them (a demo's state/)",
    )
    p.add_argument("--source", action="store_true", help="also print the best candidate's source")
    p.add_argument("--json", action="store_true", help="print JSON, not lines")
    p.set_defaults(run=run)


@dataclass
class SearchStatus:
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


def run(args: argparse.Namespace) -> int:
    """0 with the status printed; 2 when a file is missing or not a search's state."""
    paths = sorted(args.state.glob("*.sqlite")) if args.state.is_dir() else [args.state]
    if not paths or not paths[0].is_file():
        return usage_error(
            f"{args.state}: no state file there. Fix: pass a search's --state, or its folder"
        )
    found = []
    for path in paths:
        try:
            found.append(read_status(path))
        except (sqlite3.Error, KeyError, ValueError) as exc:
            if len(paths) == 1:
                return usage_error(f"{path} is not a kevolve search's state file ({exc})")
    if args.json:
        data = [_shown(asdict(s), args.source) for s in found]
        print(json.dumps(data[0] if not args.state.is_dir() else data, indent=2))
    else:
        print("\n\n".join(render(s, args.source) for s in found))
    return 0


def _shown(data: dict[str, Any], source: bool) -> dict[str, Any]:
    """The JSON form; the best's source only when asked for."""
    return data if source else {k: v for k, v in data.items() if k != "best_source"}


def read_status(path: Path) -> SearchStatus:
    """The status of the search whose state `path` holds; opened read-only."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0) as db:
        (identity,) = db.execute("SELECT value FROM meta WHERE key = 'identity'").fetchone()
        who = json.loads(identity)
        status = SearchStatus(problem=who["problem"], hardware=who["hardware"])
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


def _from_checkpoint(status: SearchStatus, state: dict[str, Any], db: sqlite3.Connection) -> None:
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


def render(s: SearchStatus, source: bool = False) -> str:
    """The status as a few lines."""
    counts = ", ".join(f"{k} {v}" for k, v in sorted(s.counts.items())) or "none yet"
    best = "none yet"
    if s.best:
        score = f", score {s.best_score:.3f}" if s.best_score is not None else ""
        best = f"{s.best} from {s.best_proposer}{score}"
    unfolded = s.stored - s.evaluated
    lines = [
        f"search: {s.problem} on {s.hardware}",
        f"generation {s.generation}: {s.evaluated} judged ({counts})"
        + (f"; {unfolded} more stored from a generation in flight" if unfolded > 0 else ""),
        f"best: {best}",
        f"time: {s.elapsed_s:.0f} s; LLM: {s.tokens:,} tokens, ${s.cost_usd:.2f}; "
        f"{s.exchanges} prompts answered ({s.spoiled} gave nothing); "
        f"repairs: {s.repairs} judged, {s.repaired} correct",
    ]
    if source and s.best_source:
        lines += ["", f"best candidate's source ({s.best}):", "", s.best_source.rstrip("\n")]
    return "\n".join(lines)
