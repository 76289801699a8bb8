"""Where the dashboard finds searches: a folder of state files (`kevolve ui`) or the bot's jobs.

A job's state file lives beside its checkout while it runs; when the job ends, the job worker
moves it to the kept states (`bot.archive`), where it stays until pruned. A job whose state
file is gone (pruned, or searched on a self-hosted runner) shows what its stored result keeps
(history, best, lineage of the best), and says so.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kevolve.bot.archive import StateArchive
from kevolve.bot.joboutcome import job_outcome
from kevolve.bot.storage import Job, Storage
from kevolve.harness.search.candidate import Candidate
from kevolve.harness.search.snapshot import Fold, Mark, SearchRecords, records
from kevolve.runners.fieldread import IntakeError
from kevolve.runners.intake import CheckedResult

KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,150}")  # a search's name in a URL
OP = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")  # an op name that may name a file
MAX_DEPTH = 3  # folders below a `kevolve ui` folder searched for state files


@dataclass(frozen=True)
class SearchEntry:
    """One search the dashboard can show."""

    key: str  # its name in URLs
    op: str
    hardware: str
    status: str  # "stored" for a local file; a job's status otherwise
    path: Path | None  # its state file, while there is one
    repo: str | None = None
    job: Job | None = None
    pull_body: Path | None = None  # the pull request body `kevolve demo` rendered for it


@dataclass(frozen=True)
class Unreadable:
    """A search whose job's stored result does not fit a `SearchResult`, and why."""

    reason: str


class Catalog(Protocol):
    """The searches one dashboard shows."""

    def entries(self) -> list[SearchEntry]:
        """Every search, newest last."""
        ...

    def entry(self, key: str) -> SearchEntry | None:
        """One search by its key."""
        ...


class FolderCatalog:
    """The state files of one file or folder (`kevolve ui STATE|DIR`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._known: dict[Path, tuple[int, tuple[str, str] | None]] = {}  # path -> (mtime, id)

    def entries(self) -> list[SearchEntry]:
        """Each search state file, by path; files that hold no search are left out."""
        files = [self.root] if self.root.is_file() else _state_files(self.root)
        found: list[SearchEntry] = []
        for path in files:
            identity = self._identity(path)
            if identity is None:
                continue
            key = _unique(path.stem if KEY.fullmatch(path.stem) else "search", found)
            body = path.parent.parent / "pull-requests" / f"{path.stem}.md"
            found.append(
                SearchEntry(
                    key,
                    identity[0],
                    identity[1],
                    "stored",
                    path,
                    pull_body=body if path.parent.name == "state" and body.is_file() else None,
                )
            )
        return found

    def entry(self, key: str) -> SearchEntry | None:
        """The search named `key`."""
        return next((e for e in self.entries() if e.key == key), None)

    def _identity(self, path: Path) -> tuple[str, str] | None:
        """A file's search identity, read again only when the file changed."""
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return None
        known = self._known.get(path)
        if known is None or known[0] != mtime or known[1] is None:
            known = (mtime, _identity(path))
            self._known[path] = known
        return known[1]


class JobCatalog:
    """The searches of the bot's jobs, one per job and op."""

    def __init__(self, storage: Storage, workdir: Path) -> None:
        self._storage, self._jobs_dir = storage, workdir / "jobs"
        self._archive = StateArchive(self._jobs_dir)  # only read here: the worker prunes it

    def entries(self) -> list[SearchEntry]:
        """Each op of each job."""
        return [entry for job in self._storage.jobs() for entry in self._of(job)]

    def entry(self, key: str) -> SearchEntry | None:
        """The search `<job id>.<op>`."""
        number, _, op = key.partition(".")
        if not number.isdigit() or not OP.fullmatch(op):
            return None
        job = self._storage.job(int(number))
        if job is None:
            return None
        return next((e for e in self._of(job) if e.op == op), None)

    def _of(self, job: Job) -> list[SearchEntry]:
        """A job's searches: the ops its result holds, else those with a state file."""
        ops = list(job_outcome(job).ops)
        state = self._jobs_dir / f"job-{job.id}" / "state"
        if not ops and job.op != "*":
            ops = [job.op]
        elif not ops:
            running = sorted(p.stem for p in state.glob("*.sqlite")) if state.is_dir() else []
            ops = running or self._archive.ops(job.id)
        return [
            SearchEntry(
                f"{job.id}.{op}",
                op,
                job.hardware,
                job.status,
                self._state(job, op),
                repo=job.repo,
                job=job,
            )
            for op in ops
            if OP.fullmatch(op)
        ]

    def _state(self, job: Job, op: str) -> Path | None:
        """An op's state file: beside the job's checkout while it runs, then the kept one."""
        running = self._jobs_dir / f"job-{job.id}" / "state" / f"{op}.sqlite"
        return running if running.is_file() else self._archive.state(job.id, op)


def load(entry: SearchEntry) -> tuple[SearchRecords, bool] | Unreadable | None:
    """A search's records and whether they are complete (from its state file) or a summary
    (from its job's result); Unreadable for a stored result that does not fit; None when
    neither is there yet."""
    if entry.path is not None:
        try:
            return records(entry.path), True
        except (sqlite3.Error, OSError, TypeError, ValueError):
            pass  # not initialized yet, or removed as the job ended: try the result
    if entry.job is None:
        return None
    try:
        result = job_outcome(entry.job).result(entry.op)
    except IntakeError as exc:
        return Unreadable(f"The stored result of this search cannot be read: {exc}")
    return None if result is None else (from_result(result, entry.hardware), False)


def version(entry: SearchEntry) -> str:
    """A token that changes whenever the search's page would: the state file's size and time
    (its write-ahead log's too) and the job's status."""
    parts = [entry.status]
    if entry.job is not None and entry.job.updated_at is not None:
        parts.append(entry.job.updated_at.isoformat())
    if entry.path is not None:
        for path in (entry.path, entry.path.with_name(entry.path.name + "-wal")):
            try:
                stat = path.stat()
            except OSError:
                continue
            parts.append(f"{stat.st_size}:{stat.st_mtime_ns}")
    return "/".join(parts)


def from_result(result: CheckedResult, hardware: str) -> SearchRecords:
    """What a finished job's `SearchResult` keeps, as records: the history, the best with its
    source and evaluation, the seed's evaluation and the best's lineage."""
    found = SearchRecords(problem=result.problem, hardware=hardware)
    chain = result.lineage
    for i, step in enumerate(chain):
        parents = (chain[i + 1].id,) if i + 1 < len(chain) else ()
        found.candidates[step.id] = Candidate(
            "", parents, step.proposer, 0, step.generation, id=step.id
        )
    best = result.best
    if best is not None:
        found.candidates[best.id] = Candidate(
            best.source, best.parents, best.proposer, 0, best.generation, id=best.id
        )
        found.evaluations.append((best.id, best.evaluation))
    seed = next((c for c in found.candidates.values() if not c.parents), None)
    if result.baseline is not None and seed is not None and (best is None or seed.id != best.id):
        found.evaluations.insert(0, (seed.id, result.baseline))
    # A point kept before points named their candidate says nothing the chart can place.
    found.folds = [
        Fold(p.evaluated, p.candidate, p.verdict, p.score, p.best_score)
        for p in result.history
        if p.candidate is not None and p.verdict is not None
    ]
    found.marks = [
        Mark(
            generation=max((c.generation for c in found.candidates.values()), default=0),
            evaluated=result.evaluated,
            elapsed_s=result.wall_s,
            tokens=result.llm.prompt_tokens + result.llm.completion_tokens,
            cost_usd=result.llm.cost_usd,
            best=best.id if best else None,
            islands=(),
        )
    ]
    return found


def _state_files(root: Path) -> list[Path]:
    """The `.sqlite` files under `root`, at most MAX_DEPTH folders down (never a whole tree),
    by path."""
    found = [p for depth in range(MAX_DEPTH + 1) for p in root.glob("*/" * depth + "*.sqlite")]
    return sorted(p for p in found if p.is_file())


def _identity(path: Path) -> tuple[str, str] | None:
    """The problem and hardware a state file is for; None for any other SQLite file."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'identity'").fetchone()
            db.execute("SELECT 1 FROM candidates LIMIT 1")
    except sqlite3.Error:
        return None
    if row is None:
        return None
    try:
        who = json.loads(row[0])
        return str(who["problem"]), str(who["hardware"])
    except (ValueError, KeyError, TypeError):
        return None


def _unique(key: str, taken: list[SearchEntry]) -> str:
    """`key`, or `key-2`, `key-3`... when another entry has it."""
    names = {e.key for e in taken}
    if key not in names:
        return key
    n = 2
    while f"{key}-{n}" in names:
        n += 1
    return f"{key}-{n}"
