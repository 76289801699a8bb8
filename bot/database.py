"""The database: its tables and an engine set up for them (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from kevolve.bot.jobrecord import ACTIVE_JOBS, JobStatus, OpKernel, Trigger
from sqlalchemy.exc import ArgumentError

metadata = sa.MetaData()


class StorageError(RuntimeError):
    """The database cannot be reached or used."""


class EnumText(sa.TypeDecorator[StrEnum]):
    """A `StrEnum` stored as its text: a member or its text goes in, a member comes out."""

    impl = sa.String
    cache_ok = True

    def __init__(self, enum: type[StrEnum], length: int) -> None:
        super().__init__(length)
        self._enum = enum

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> str | None:
        """The text of a member; a ValueError naming the known ones for any other value."""
        if value is None:
            return None
        try:
            return self._enum(value).value
        except ValueError:
            raise ValueError(f"{value!r} is no {self._enum.__name__} ({self._known()})") from None

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> StrEnum | None:
        """The member a stored text names; a StorageError with the fix for an unknown one."""
        if value is None:
            return None
        try:
            return self._enum(value)
        except ValueError:
            raise StorageError(
                f"{value!r} is no {self._enum.__name__} this kevolve knows ({self._known()}): "
                "a newer version wrote it, or the database was not migrated; start `kevolve "
                "serve` or `kevolve work` of this version once to migrate it"
            ) from None

    def _known(self) -> str:
        return ", ".join(member.value for member in self._enum)


class KernelsText(sa.TypeDecorator[tuple[OpKernel, ...]]):
    """A job's (op, kernel file) pairs stored as JSON text, `[["softmax", "k/softmax.py"]]`."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> str | None:
        """The pairs as JSON; None stays None (not recorded)."""
        if value is None:
            return None
        return json.dumps([[kernel.op, kernel.path] for kernel in value])

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> tuple[OpKernel, ...] | None:
        """The stored pairs; a StorageError naming the text when it holds anything else."""
        if value is None:
            return None
        kernels = _kernel_pairs(value)
        if kernels is None:
            raise StorageError(
                f"jobs.kernels holds {value[:200]!r}, not a JSON list of [op, kernel file] pairs:"
                " something other than kevolve wrote it; set it to NULL to read the config again"
            )
        return kernels


def _kernel_pairs(text: str) -> tuple[OpKernel, ...] | None:
    """The [op, path] pairs a JSON text lists; None when it is anything else."""
    try:
        pairs = json.loads(text)
    except ValueError:
        return None
    if not isinstance(pairs, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
        for pair in pairs
    ):
        return None
    return tuple(OpKernel(op, path) for op, path in pairs)


deliveries_table = sa.Table(
    "deliveries",
    metadata,
    sa.Column("delivery_id", sa.String(100), primary_key=True),
    sa.Column("event", sa.String(100), nullable=False),
    sa.Column("action", sa.String(100), nullable=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.Text, nullable=True),
    # The installation the delivery came through: the dispatcher takes turns between them.
    sa.Column("installation_id", sa.BigInteger, nullable=True),
    sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=True),  # a failed one's retry
)

jobs_table = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("repo", sa.String(200), nullable=False, index=True),
    sa.Column("sha", sa.String(64), nullable=False),
    sa.Column("op", sa.String(200), nullable=False),
    sa.Column("hardware", sa.String(200), nullable=False),
    sa.Column("trigger", EnumText(Trigger, 32), nullable=False),
    sa.Column("budget", sa.Integer, nullable=False),
    sa.Column("status", EnumText(JobStatus, 32), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("delivery_id", sa.String(100), nullable=True),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("installation_id", sa.BigInteger, nullable=True),
    sa.Column("comment_id", sa.BigInteger, nullable=True),  # the answer a comment job edits
    sa.Column("check_id", sa.BigInteger, nullable=True),
    # An earlier version's tables also have pr_number and candidate, which only its pseudo-jobs
    # for closed pull requests used: `bot.pull_store` moves those to `pull_requests` on start.
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("requester", sa.String(100), nullable=True),  # who asked, for the per-user cap
    sa.Column("reason", sa.Text, nullable=True),  # why a job failed, as its check run said
    sa.Column("kernels", KernelsText, nullable=True),  # what it is about; NULL: not recorded
)

# Literal, so that PostgreSQL can match an ON CONFLICT clause to the index's predicate.
ACTIVE_CONDITION = "status IN ({})".format(", ".join(f"'{s.value}'" for s in ACTIVE_JOBS))

# At most one active job per (repo, sha, op, hardware, trigger): a second request merges into it,
# atomically
# in the database, however many dispatchers insert at once.
sa.Index(
    "jobs_one_active",
    jobs_table.c.repo,
    jobs_table.c.sha,
    jobs_table.c.op,
    jobs_table.c.hardware,
    jobs_table.c.trigger,
    unique=True,
    sqlite_where=sa.text(ACTIVE_CONDITION),
    postgresql_where=sa.text(ACTIVE_CONDITION),
)

# Refusals of `/kevolve` commands, answered or only recorded (one answer per user per hour).
refusals_table = sa.Table(
    "refusals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user", sa.String(100), nullable=False, index=True),
    sa.Column("repo", sa.String(200), nullable=False),
    sa.Column("delivery_id", sa.String(100), nullable=False),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("answered", sa.Boolean, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

# One row per dispatch of one op of a job to a GitHub Actions runner (`runners.actions`).
job_runs_table = sa.Table(
    "job_runs",
    metadata,
    sa.Column("job_id", sa.Integer, primary_key=True),
    sa.Column("op", sa.String(200), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.BigInteger, nullable=True, index=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("conclusion", sa.String(32), nullable=True),
    sa.Column("runner_name", sa.String(200), nullable=True),
    sa.Column("result", sa.Text, nullable=True),  # the SearchResult the workflow posted
    sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# One row per job token issued for a dispatch (`bot.tokens`, `bot.board`): its nonce, which makes
# it single-use; the tag the run's name carries, by which a run the dispatch gave no id is known;
# when it was spent, and how often it was replayed after (each replay refused).
job_tokens_table = sa.Table(
    "job_tokens",
    metadata,
    sa.Column("nonce", sa.String(64), primary_key=True),
    sa.Column("job_id", sa.Integer, nullable=False, index=True),
    sa.Column("op", sa.String(200), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("tag", sa.String(64), nullable=False, unique=True),
    sa.Column("workflow", sa.String(200), nullable=False),  # the workflow file dispatched
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("spent_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("replays", sa.Integer, nullable=False, default=0),
    sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
)

# Runner labels the fleet poller has seen per repo (`bot.fleet`): the key makes "first seen"
# atomic, so two pollers, or one restarted, never queue a new label's jobs twice.
runner_labels_table = sa.Table(
    "runner_labels",
    metadata,
    sa.Column("repo", sa.String(200), primary_key=True),
    sa.Column("label", sa.String(200), primary_key=True),
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
)

# What the fleet poller remembers per repo between passes and restarts.
fleet_repos_table = sa.Table(
    "fleet_repos",
    metadata,
    sa.Column("repo", sa.String(200), primary_key=True),
    sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),  # schedule checked to
    sa.Column("broken_sha", sa.String(64), nullable=True),  # head whose broken config was shown
    sa.Column("schedule", sa.String(200), nullable=True),  # the cron its config had when read
)

# Kevolve's pull requests that were closed (`bot.pull_store`): one row per pull request, the
# latest close winning when one is reopened and closed again.
pull_requests_table = sa.Table(
    "pull_requests",
    metadata,
    sa.Column("repo", sa.String(200), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("op", sa.String(200), nullable=False),
    sa.Column("hardware", sa.String(200), nullable=False),
    sa.Column("sha", sa.String(64), nullable=False),  # its head commit when it closed
    sa.Column("candidate", sa.String(64), nullable=True),  # the kernel it proposed last
    sa.Column("outcome", sa.String(16), nullable=False),  # merged or rejected
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("delivery_id", sa.String(100), nullable=True),  # the closing event's
)


def add_missing_columns(engine: sa.Engine) -> list[str]:
    """Add to existing tables the columns a later version gave them; the `table.column` names
    added. Only nullable columns are ever added (an earlier version's rows have no value), so
    this is the whole migration: new tables come from `metadata.create_all`."""
    found = sa.inspect(engine)
    added = []
    for table in metadata.sorted_tables:
        if not found.has_table(table.name):
            continue
        present = {column["name"] for column in found.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                _add_column(engine, table, column)
                added.append(f"{table.name}.{column.name}")
    return added


def _add_column(engine: sa.Engine, table: sa.Table, column: sa.Column[Any]) -> None:
    """ALTER TABLE ... ADD COLUMN, in the engine's own dialect."""
    if not column.nullable:
        raise StorageError(
            f"{table.name}.{column.name} is missing and cannot be added to existing rows"
        )
    quote = engine.dialect.identifier_preparer.quote
    kind = column.type.compile(dialect=engine.dialect)
    statement = f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column.name)} {kind}"
    with engine.begin() as conn:
        conn.execute(sa.text(statement))


def aware(moment: datetime) -> datetime:
    """`moment` as UTC-aware (SQLite hands back naive datetimes)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Write-ahead logging so the webhook writer and the worker process do not block each other.

    `synchronous=NORMAL` under WAL skips the fsync at each commit (about 4 ms here) and syncs the
    log at checkpoints instead. A committed transaction then survives the crash or SIGKILL of any
    process, which is what a 202 promises; only a power loss or OS crash can drop the last few
    commits. PostgreSQL keeps its own (fully synchronous) defaults.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def open_engine(url: str) -> sa.Engine:
    """An engine for `url`; a ValueError naming the URL when it cannot be understood."""
    try:
        parsed = sa.make_url(url)
        if parsed.get_backend_name() == "sqlite":
            engine = sa.create_engine(parsed, connect_args={"check_same_thread": False})
            sa.event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return sa.create_engine(parsed, pool_pre_ping=True)
    except (ArgumentError, ImportError) as exc:
        raise ValueError(f"bad database URL {url!r}: {exc}") from exc
