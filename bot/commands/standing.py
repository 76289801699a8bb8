"""`kevolve status`: where a running or finished search stands, read from its state file."""

from __future__ import annotations

import argparse
import json
import sqlite3
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kevolve.bot.commands.common import usage_error
from kevolve.harness.search.snapshot import Snapshot, snapshot


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
            found.append(snapshot(path))
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


def render(s: Snapshot, source: bool = False) -> str:
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
