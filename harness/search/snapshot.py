"""`Snapshot`: a read-only look at a search's state file, while it runs or after."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kevolve.harness.evaluation import Evaluation, evaluation_from_dict
from kevolve.harness.search.candidate import Candidate
from kevolve.harness.search.proposal import Exchange


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
        row = db.execute("SELECT value FROM meta WHERE key = 'identity'").fetchone()
        if row is None:  # the tables exist, the search has not bound them yet
            raise ValueError(f"{path}: no search has started in this state file yet")
        who = json.loads(row[0])
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


# What the dashboard reads of a state file: every row, typed, read-only, while the search runs
# or after. Tables a file from an older kevolve lacks read as empty.


@dataclass(frozen=True)
class Fold:
    """One verdict folded into the search, in the order the search folded them."""

    evaluated: int  # how many verdicts were folded, this one included
    candidate: str
    verdict: str
    score: float | None  # None for a candidate that was not correct
    best_score: float | None  # the best score after this fold


@dataclass(frozen=True)
class Mark:
    """One checkpoint: where the search stood after a finished generation."""

    generation: int
    evaluated: int
    elapsed_s: float
    tokens: int
    cost_usd: float
    best: str | None
    islands: tuple[tuple[str, ...], ...]  # the elite ids of each island, best first


@dataclass(frozen=True)
class LoggedExchange:
    """A prompt and its reply as kept, with the generation and the candidate it produced."""

    generation: int
    candidate_id: str | None
    exchange: Exchange


@dataclass(frozen=True)
class StoredProfile:
    """A candidate's stored profile as JSON text, or the error that stopped one."""

    data: str | None
    error: str


@dataclass
class SearchRecords:
    """Everything a state file holds about one search, for reading only."""

    problem: str
    hardware: str
    candidates: dict[str, Candidate] = field(default_factory=dict)  # in the order proposed
    evaluations: list[tuple[str, Evaluation]] = field(default_factory=list)  # as stored
    folds: list[Fold] = field(default_factory=list)  # the newest checkpoint's history
    marks: list[Mark] = field(default_factory=list)  # oldest first
    exchanges: list[LoggedExchange] = field(default_factory=list)  # in key order
    profiles: dict[str, StoredProfile] = field(default_factory=dict)
    plans: dict[int, tuple[str, ...]] = field(default_factory=dict)  # generation -> ids


def records(path: Path) -> SearchRecords:
    """Every row of the state file at `path`, opened read-only; sqlite3.Error when the file
    is no search state (or not yet initialized)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0) as db:
        row = db.execute("SELECT value FROM meta WHERE key = 'identity'").fetchone()
        if row is None:  # the tables exist, the search has not bound them yet
            raise ValueError(f"{path}: no search has started in this state file yet")
        who = json.loads(row[0])
        found = SearchRecords(problem=str(who["problem"]), hardware=str(who["hardware"]))
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        found.candidates = _candidates(db)
        found.evaluations = [
            (cid, evaluation_from_dict(json.loads(text)))
            for cid, text in db.execute(
                "SELECT candidate_id, evaluation FROM evaluations WHERE hardware = ? "
                "ORDER BY rowid",
                (found.hardware,),
            )
        ]
        found.marks = _marks(db)
        found.folds = _folds(db)
        if "exchanges" in tables:
            found.exchanges = _exchanges(db)
        if "profiles" in tables:
            found.profiles = {
                cid: StoredProfile(data, error or "")
                for cid, data, error in db.execute(
                    "SELECT candidate_id, profile, error FROM profiles WHERE hardware = ?",
                    (found.hardware,),
                )
            }
        for generation, cid in db.execute("SELECT generation, candidate_id FROM plans"):
            found.plans[generation] = (*found.plans.get(generation, ()), cid)
    return found


def _candidates(db: sqlite3.Connection) -> dict[str, Candidate]:
    """Every proposed candidate by id, in the order they were stored."""
    rows = db.execute(
        "SELECT id, source, parents, proposer, island, generation FROM candidates ORDER BY rowid"
    )
    return {
        cid: Candidate(source, tuple(json.loads(parents)), proposer, island, generation, id=cid)
        for cid, source, parents, proposer, island, generation in rows
    }


def _marks(db: sqlite3.Connection) -> list[Mark]:
    """Each checkpoint's standing, without its (large) history and random state."""
    rows = db.execute(
        "SELECT generation, json_extract(state, '$.evaluated'), json_extract(state, "
        "'$.elapsed_s'), json_extract(state, '$.tokens'), json_extract(state, '$.cost_usd'), "
        "json_extract(state, '$.best'), json_extract(state, '$.database.islands') "
        "FROM checkpoints ORDER BY generation"
    )
    return [
        Mark(
            generation=int(generation),
            evaluated=int(evaluated or 0),
            elapsed_s=float(elapsed or 0.0),
            tokens=int(tokens or 0),
            cost_usd=float(cost or 0.0),
            best=best,
            islands=tuple(tuple(str(e["id"]) for e in isle) for isle in json.loads(isles or "[]")),
        )
        for generation, evaluated, elapsed, tokens, cost, best, isles in rows
    ]


def _folds(db: sqlite3.Connection) -> list[Fold]:
    """The newest checkpoint's history of folded verdicts."""
    row = db.execute(
        "SELECT json_extract(state, '$.history') FROM checkpoints ORDER BY generation DESC LIMIT 1"
    ).fetchone()
    if row is None or row[0] is None:
        return []
    return [
        Fold(
            evaluated=int(h["evaluated"]),
            candidate=str(h["candidate"]),
            verdict=str(h["verdict"]),
            score=None if h.get("score") is None else float(h["score"]),
            best_score=None if h.get("best_score") is None else float(h["best_score"]),
        )
        for h in json.loads(row[0])
    ]


def _exchanges(db: sqlite3.Connection) -> list[LoggedExchange]:
    """Every kept prompt and reply, in key order."""
    rows = db.execute(
        "SELECT generation, candidate_id, key, model, messages, reply, error, prompt_tokens, "
        "completion_tokens, cost_usd, rationale FROM exchanges ORDER BY key"
    )
    return [
        LoggedExchange(
            generation,
            cid,
            Exchange(key, model, tuple(json.loads(messages)), reply, error, inp, out, cost, why),
        )
        for generation, cid, key, model, messages, reply, error, inp, out, cost, why in rows
    ]
