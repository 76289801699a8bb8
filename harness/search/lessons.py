"""`Lessons`: what earlier searches learned, per op family and hardware, for later prompts.

After a search, each LLM candidate that beat its parent becomes a "helped" lesson (the model's
rationale, a summary of the diff and the gain) and each one that failed a "failed" lesson (the
rationale and the verdict's reason). Later searches of the same family on the same hardware get
the best helped and the newest failed lessons in their prompts. One SQLite file holds them; the
caller decides its scope (a repo, or an installation that opted in).
"""

from __future__ import annotations

import difflib
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from kevolve.harness.evaluation import CaseTiming, Verdict
from kevolve.harness.search.store import Store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lessons (
    family TEXT NOT NULL, hardware TEXT NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL,
    gain REAL, search TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (family, hardware, kind, text));
"""
HELPED_MIN_GAIN = 1.02  # over the parent: below this a change is noise, not a lesson
SHOWN_HELPED = 6
SHOWN_FAILED = 4
TEXT_CHARS = 400


@dataclass(frozen=True)
class Lesson:
    """One thing a search learned: it helped (with its gain over the parent) or failed."""

    kind: str  # "helped" or "failed"
    text: str
    gain: float | None = None

    def line(self) -> str:
        """The lesson as a prompt shows it."""
        if self.kind == "helped":
            return f"helped ({self.gain:.2f}x over its parent): {self.text}"
        return f"failed: {self.text}"


class Lessons:
    """The lessons file: add a finished search's lessons, recall those of a family."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def recall(self, family: str, hardware: str) -> tuple[str, ...]:
        """The best helped lessons, then the newest failed ones, as prompt lines."""
        helped = self._db.execute(
            "SELECT text, gain FROM lessons WHERE family = ? AND hardware = ? AND kind = "
            "'helped' ORDER BY gain DESC LIMIT ?",
            (family, hardware, SHOWN_HELPED),
        ).fetchall()
        failed = self._db.execute(
            "SELECT text FROM lessons WHERE family = ? AND hardware = ? AND kind = 'failed' "
            "ORDER BY created DESC LIMIT ?",
            (family, hardware, SHOWN_FAILED),
        ).fetchall()
        found = [Lesson("helped", t, g) for t, g in helped]
        found += [Lesson("failed", t) for (t,) in failed]
        return tuple(lesson.line() for lesson in found)

    def add(self, family: str, hardware: str, search: str, lessons: list[Lesson]) -> int:
        """Keep a search's lessons (one text once per family and hardware); how many were new."""
        now = time.time()
        before = self._count()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT OR IGNORE INTO lessons VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(family, hardware, x.kind, x.text, x.gain, search, now) for x in lessons],
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return self._count() - before

    def _count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM lessons").fetchone()[0])


def learned(store: Store, hardware: str) -> list[Lesson]:
    """A search's lessons from its state: LLM candidates that beat their parent, and those that
    failed, each with what the model said it changed."""
    found = []
    for candidate_id, exchange in store.exchanges():
        if candidate_id is None or exchange.error or not exchange.rationale:
            continue
        child = store.candidate(candidate_id)
        ev = store.evaluation(candidate_id, hardware)
        if ev is None or not child.parents:
            continue
        why = _short(exchange.rationale)
        if ev.verdict is not Verdict.CORRECT:
            found.append(Lesson("failed", _short(f"{why} -> {ev.verdict.value}: {ev.reason}")))
            continue
        parent = store.evaluation(child.parents[0], hardware)
        gain = _gain(ev.timings, parent.timings if parent else [])
        if gain is not None and gain >= HELPED_MIN_GAIN:
            source = store.candidate(child.parents[0]).source
            summary = diff_summary(source, child.source)
            found.append(Lesson("helped", _short(f"{why} ({summary})"), gain))
    return found


def diff_summary(before: str, after: str, shown: int = 2) -> str:
    """How many lines changed and the first few changes, one line."""
    old, new = before.splitlines(), after.splitlines()
    changed = [
        (old[i1:i2], new[j1:j2])
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new).get_opcodes()
        if tag != "equal"
    ]
    count = sum(max(len(a), len(b)) for a, b in changed)
    parts = [
        f"`{' / '.join(s.strip() for s in a)[:60]}` -> `{' / '.join(s.strip() for s in b)[:60]}`"
        for a, b in changed[:shown]
    ]
    return f"{count} lines changed: " + "; ".join(parts) if parts else "no change"


def _gain(child: list[CaseTiming], parent: list[CaseTiming]) -> float | None:
    """Geometric mean of parent time / child time over the cases both timed."""
    times = {(tuple(t.shape), t.dtype): t.candidate.median_ms for t in parent}
    ratios = [
        times[key] / t.candidate.median_ms
        for t in child
        if (key := (tuple(t.shape), t.dtype)) in times and t.candidate.median_ms > 0
    ]
    if not ratios:
        return None
    product = 1.0
    for r in ratios:
        product *= r
    return float(product ** (1 / len(ratios)))


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TEXT_CHARS else line[: TEXT_CHARS - 3] + "..."
