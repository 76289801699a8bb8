"""One timer per GPU at a time: an advisory file lock that evaluations hold while timing.

Compilation and correctness checks of several candidates may share a GPU; timing may not, or one
evaluation's kernels would slow another's measurements.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive_gpu(lock_dir: Path | None, index: int) -> Iterator[None]:
    """Hold GPU `index` for timing until the block ends (no lock when `lock_dir` is None)."""
    if lock_dir is None:
        yield
        return
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"gpu-{index}.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, even on a crash
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
