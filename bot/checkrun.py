"""The check run a job shows on a commit: its name, one per op and hardware label."""

from __future__ import annotations

# The name of kevolve's own check runs, and the prefix of each job's (a broken config, a full
# queue and the jobs all show under it on a commit).
CHECK_NAME = "kevolve"


def check_name(op: str, hardware: str) -> str:
    """The check run of a job: one per op and hardware label."""
    return f"{CHECK_NAME}: {op} on {hardware}"
