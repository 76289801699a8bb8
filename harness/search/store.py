"""`Store`: everything a search learns, in one SQLite file, written as it happens.

Each write commits on its own, so a search killed at any moment (SIGKILL included) loses nothing
it had finished: a rerun reads the plan of the generation in flight and evaluates only what is
missing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kevolve.harness.evaluation import Evaluation, evaluation_from_dict
from kevolve.harness.profile import Profile, profile_from_dict
from kevolve.harness.search.candidate import Candidate
from kevolve.harness.search.proposal import Exchange

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS candidates (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, parents TEXT NOT NULL, proposer TEXT NOT NULL,
    island INTEGER NOT NULL, generation INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS plans (
    generation INTEGER NOT NULL, slot INTEGER NOT NULL, candidate_id TEXT NOT NULL,
    PRIMARY KEY (generation, slot));
CREATE TABLE IF NOT EXISTS evaluations (
    candidate_id TEXT NOT NULL, hardware TEXT NOT NULL, evaluation TEXT NOT NULL,
    PRIMARY KEY (candidate_id, hardware));
CREATE TABLE IF NOT EXISTS checkpoints (generation INTEGER PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plan_states (generation INTEGER PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS exchanges (
    key TEXT PRIMARY KEY, generation INTEGER NOT NULL, candidate_id TEXT, model TEXT NOT NULL,
    messages TEXT NOT NULL, reply TEXT, error TEXT, prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL, rationale TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS profiles (
    candidate_id TEXT NOT NULL, hardware TEXT NOT NULL, profile TEXT, error TEXT,
    PRIMARY KEY (candidate_id, hardware));
"""

_EXCHANGE_COLUMNS = (
    "key, model, messages, reply, error, prompt_tokens, completion_tokens, cost_usd, rationale"
)


class StateMismatch(Exception):
    """The state file belongs to a different search."""


class Store:
    """A search's SQLite state file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def bind(self, identity: dict[str, Any]) -> None:
        """Tie the file to one search; a different search's file raises `StateMismatch`."""
        stored = self._meta("identity")
        if stored is None:
            self._set_meta("identity", identity)
        elif stored != identity:
            diff = sorted(k for k in {*stored, *identity} if stored.get(k) != identity.get(k))
            raise StateMismatch(
                f"{self.path} holds another search (differs in {', '.join(diff)}); pass a new "
                f"--state path, or delete the file to start over"
            )

    def save_candidate(self, c: Candidate) -> None:
        """Remember a proposed candidate (idempotent)."""
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO candidates VALUES (?, ?, ?, ?, ?, ?)",
                (c.id, c.source, json.dumps(c.parents), c.proposer, c.island, c.generation),
            )

    def candidate(self, candidate_id: str) -> Candidate:
        """A stored candidate by id."""
        row = self._db.execute(
            "SELECT source, parents, proposer, island, generation FROM candidates WHERE id = ?",
            (candidate_id,),
        ).fetchone()
        if row is None:
            raise KeyError(candidate_id)
        source, parents, proposer, island, generation = row
        return Candidate(
            source, tuple(json.loads(parents)), proposer, island, generation, id=candidate_id
        )

    def save_plan(self, generation: int, candidate_ids: list[str], state: dict[str, Any]) -> None:
        """The candidates of a generation and the search state right after planning it."""
        with self._tx() as db:
            db.execute("DELETE FROM plans WHERE generation = ?", (generation,))
            db.executemany(
                "INSERT INTO plans VALUES (?, ?, ?)",
                [(generation, i, cid) for i, cid in enumerate(candidate_ids)],
            )
            # One state per plan: with generations overlapping, two plans can follow the newest
            # checkpoint, and a resume needs the later one's.
            db.execute(
                "INSERT OR REPLACE INTO plan_states VALUES (?, ?)", (generation, json.dumps(state))
            )

    def plan(self, generation: int) -> tuple[list[str], dict[str, Any]] | None:
        """The stored plan of a generation and the state after planning it, if any."""
        row = self._db.execute(
            "SELECT state FROM plan_states WHERE generation = ?", (generation,)
        ).fetchone()
        if row is not None:
            state = json.loads(row[0])
        else:  # a state file from before plan_states kept only the newest plan's state
            planned = self._meta("planned")
            if planned is None or planned["generation"] != generation:
                return None
            state = planned["state"]
        rows = self._db.execute(
            "SELECT candidate_id FROM plans WHERE generation = ? ORDER BY slot", (generation,)
        ).fetchall()
        return [r[0] for r in rows], state

    def save_evaluation(self, candidate_id: str, hardware: str, ev: Evaluation) -> None:
        """One finished evaluation (the cache is keyed by candidate and hardware)."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO evaluations VALUES (?, ?, ?)",
                (candidate_id, hardware, json.dumps(ev.to_dict())),
            )

    def evaluation(self, candidate_id: str, hardware: str) -> Evaluation | None:
        """A cached evaluation, if this candidate was judged on this hardware."""
        row = self._db.execute(
            "SELECT evaluation FROM evaluations WHERE candidate_id = ? AND hardware = ?",
            (candidate_id, hardware),
        ).fetchone()
        return evaluation_from_dict(json.loads(row[0])) if row else None

    def save_profile(
        self, candidate_id: str, hardware: str, profile: Profile | None, error: str = ""
    ) -> None:
        """A candidate's profile on this hardware, or why none could be taken (not retried)."""
        data = json.dumps(profile.to_dict()) if profile is not None else None
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO profiles VALUES (?, ?, ?, ?)",
                (candidate_id, hardware, data, error or None),
            )

    def profile(self, candidate_id: str, hardware: str) -> tuple[Profile | None, str] | None:
        """The stored profile (or the error that stopped one); None if none was tried."""
        row = self._db.execute(
            "SELECT profile, error FROM profiles WHERE candidate_id = ? AND hardware = ?",
            (candidate_id, hardware),
        ).fetchone()
        if row is None:
            return None
        return (profile_from_dict(json.loads(row[0])) if row[0] else None), row[1] or ""

    def save_exchange(self, generation: int, exchange: Exchange, candidate_id: str | None) -> None:
        """A prompt and its raw reply (or why none came), linked to the candidate it produced."""
        e = exchange
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO exchanges VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    e.key,
                    generation,
                    candidate_id,
                    e.model,
                    json.dumps(e.messages),
                    e.reply,
                    e.error,
                    e.prompt_tokens,
                    e.completion_tokens,
                    e.cost_usd,
                    e.rationale,
                ),
            )

    def exchanges(self, candidate_id: str | None = None) -> list[tuple[str | None, Exchange]]:
        """Every kept exchange in key order, with the candidate each produced (or one's)."""
        query = f"SELECT candidate_id, {_EXCHANGE_COLUMNS} FROM exchanges"
        args: tuple[str, ...] = ()
        if candidate_id is not None:
            query, args = query + " WHERE candidate_id = ?", (candidate_id,)
        rows = self._db.execute(query + " ORDER BY key", args).fetchall()
        return [(row[0], _exchange(row[1:])) for row in rows]

    def save_checkpoint(self, generation: int, state: dict[str, Any]) -> None:
        """The search state after a finished generation."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO checkpoints VALUES (?, ?)", (generation, json.dumps(state))
            )

    def last_checkpoint(self) -> tuple[int, dict[str, Any]] | None:
        """The newest finished generation and its state."""
        row = self._db.execute(
            "SELECT generation, state FROM checkpoints ORDER BY generation DESC LIMIT 1"
        ).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def _meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def _set_meta(self, key: str, value: Any) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One committed transaction."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


def _exchange(row: tuple[Any, ...]) -> Exchange:
    """An exchange from its stored columns (in `_EXCHANGE_COLUMNS` order)."""
    key, model, messages, reply, error, prompt_tokens, completion_tokens, cost, why = row
    return Exchange(
        key,
        model,
        tuple(json.loads(messages)),
        reply,
        error,
        prompt_tokens,
        completion_tokens,
        cost,
        why,
    )


def evaluated_count(path: Path) -> int:
    """How many evaluations a search's state file holds (0 before it exists); read-only."""
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0) as db:
            row = db.execute("SELECT COUNT(*) FROM evaluations").fetchone()
    except sqlite3.Error:
        return 0  # created but not yet initialized, or busy: no progress to show yet
    return int(row[0])
