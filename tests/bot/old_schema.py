"""The bot's tables as the version before this one created them, for the tests of what a start
on such a database migrates (columns added, pseudo-jobs of closed pull requests moved)."""

from __future__ import annotations

import sqlalchemy as sa
from kevolve.bot.database import ACTIVE_CONDITION, metadata

# The tables that changed since (jobs gained `reason` and `kernels` and lost `pr_number` and
# `candidate`, which only pseudo-jobs used; fleet_repos gained `schedule`; pull_requests is new),
# as it made them.
OLD = sa.MetaData()
OLD_JOBS = sa.Table(
    "jobs",
    OLD,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("repo", sa.String(200), nullable=False, index=True),
    sa.Column("sha", sa.String(64), nullable=False),
    sa.Column("op", sa.String(200), nullable=False),
    sa.Column("hardware", sa.String(200), nullable=False),
    sa.Column("trigger", sa.String(32), nullable=False),
    sa.Column("budget", sa.Integer, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("delivery_id", sa.String(100), nullable=True),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("installation_id", sa.BigInteger, nullable=True),
    sa.Column("comment_id", sa.BigInteger, nullable=True),
    sa.Column("check_id", sa.BigInteger, nullable=True),
    sa.Column("pr_number", sa.Integer, nullable=True),
    sa.Column("candidate", sa.String(64), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("requester", sa.String(100), nullable=True),
)
sa.Index(
    "jobs_one_active",
    *(OLD_JOBS.c[name] for name in ("repo", "sha", "op", "hardware", "trigger")),
    unique=True,
    sqlite_where=sa.text(ACTIVE_CONDITION),
    postgresql_where=sa.text(ACTIVE_CONDITION),
)
OLD_FLEET_REPOS = sa.Table(
    "fleet_repos",
    OLD,
    sa.Column("repo", sa.String(200), primary_key=True),
    sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("broken_sha", sa.String(64), nullable=True),
)
for _unchanged in ("deliveries", "refusals", "job_runs", "job_tokens", "runner_labels"):
    metadata.tables[_unchanged].to_metadata(OLD)
