"""The finished jobs' search state files, kept for the dashboard.

A job searches with its state file beside its checkout (`<jobs>/job-N/state/OP.sqlite`). When
the job ends, the worker moves those files here (`<jobs>/finished/job-N/OP.sqlite`) and removes
the checkout, so the dashboard still shows the whole search: every candidate of the lineage,
the prompts and the replies. The folder is the bot's alone (mode 700): a later job, run as the
job user, cannot reach an earlier one's files. The newest `Keeping.jobs` jobs are kept, none for
longer than `Keeping.days`.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

FOLDER = "finished"  # under the jobs' folder, beside the job-N folders
_SUFFIXES = (".sqlite", ".sqlite-wal", ".sqlite-shm")  # a state file and SQLite's own beside it
_DAY_S = 86400.0


@dataclass(frozen=True)
class Keeping:
    """How many finished jobs' state files are kept, and for how long."""

    jobs: int = 200  # the newest jobs kept; 0: none
    days: float = 30.0  # a job's files are removed this long after it ended


class StateArchive:
    """The kept state files, one folder per finished job."""

    def __init__(
        self, jobs_dir: Path, keeping: Keeping = Keeping(), clock: Callable[[], float] = time.time
    ) -> None:
        self.root = jobs_dir / FOLDER
        self._keeping, self._clock = keeping, clock

    def keep(self, job_id: int, state: Path) -> list[str]:
        """Move the state files of a finished job's `state` folder into the archive, then prune
        it; the ops whose files were kept. Links and other files are left behind."""
        files = sorted(p for p in _entries(state) if p.name.endswith(_SUFFIXES) and _plain(p))
        kept: list[str] = []
        if files and self._keeping.jobs > 0:
            target = self.folder(job_id)
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.root.chmod(0o700)  # the jobs' user may pass through the jobs' folder, not here
            target.mkdir(exist_ok=True)
            for path in files:
                shutil.move(path, target / path.name)
            os.utime(target)  # its age counts from the job's end
            kept = sorted(p.stem for p in files if p.suffix == ".sqlite")
        self.prune()
        return kept

    def folder(self, job_id: int) -> Path:
        """Where a finished job's state files are kept."""
        return self.root / f"job-{job_id}"

    def state(self, job_id: int, op: str) -> Path | None:
        """The kept state file of one op of a finished job, if there is one."""
        path = self.folder(job_id) / f"{op}.sqlite"
        return path if _plain(path) else None

    def ops(self, job_id: int) -> list[str]:
        """The ops of a finished job whose state files are kept, by name."""
        found = _entries(self.folder(job_id))
        return sorted(p.stem for p in found if p.suffix == ".sqlite" and _plain(p))

    def jobs(self) -> list[int]:
        """The ids of the jobs whose files are kept, oldest first."""
        ids = [_job_id(p) for p in _entries(self.root)]
        return sorted(i for i in ids if i is not None)

    def prune(self) -> list[int]:
        """Remove the kept files of every job beyond the newest `Keeping.jobs` and of every
        job that ended more than `Keeping.days` ago; the job ids removed."""
        ids = self.jobs()
        beyond = len(ids) - max(0, self._keeping.jobs)
        cutoff = self._clock() - self._keeping.days * _DAY_S
        gone = [i for n, i in enumerate(ids) if n < beyond or self._ended(i) < cutoff]
        for job_id in gone:
            shutil.rmtree(self.folder(job_id), onerror=_unremoved)
        return gone

    def _ended(self, job_id: int) -> float:
        """When a kept job's files were put here (its folder's time)."""
        try:
            return self.folder(job_id).stat().st_mtime
        except OSError:
            return self._clock()  # gone meanwhile: nothing to remove


def _entries(folder: Path) -> list[Path]:
    """What a folder holds; nothing when it does not exist (or cannot be read)."""
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _plain(path: Path) -> bool:
    """Whether `path` is a regular file and not a link (a job could plant one to a bot file)."""
    return not path.is_symlink() and path.is_file()


def _job_id(path: Path) -> int | None:
    """The job id a `job-N` folder is named for; None for anything else."""
    number = path.name.removeprefix("job-")
    return int(number) if path.name.startswith("job-") and number.isdigit() else None


def _unremoved(_function: Callable[..., object], path: str, error: tuple[object, ...]) -> None:
    """Log a kept file that could not be removed; the next prune tries again."""
    if not isinstance(error[1], FileNotFoundError):
        log.warning("cannot remove the kept state %s: %s", path, error[1])
