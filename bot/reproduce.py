"""The commands that reproduce a pull request's figures on a fresh clone of its repository."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata

from kevolve.harness.evaluation import Evaluation

BASELINE_FILE = "/tmp/kevolve-baseline.py"


@dataclass(frozen=True)
class Checkout:
    """Where a pull request's kernel and its baseline can be fetched from."""

    kernel: str  # the kernel file, relative to the repo's root (from the config)
    branch: str  # the pull request's branch: its kernel file is the candidate
    base: str  # the commit (or ref) whose kernel file is the baseline: the job's commit
    clone_url: str | None = None  # the repository's plain clone URL, when known


def reproduce_lines(op: str, where: Checkout, best: Evaluation, timed: bool) -> list[str]:
    """Shell lines: clone, check out the branch, keep the baseline, install kevolve, and
    `kevolve check` the candidate against the baseline on the same dtypes and shapes."""
    lines = []
    if where.clone_url:
        lines.append(f"git clone {_q(where.clone_url)} kevolve-repro && cd kevolve-repro")
    lines += [
        f"git fetch origin {_q(where.branch)} && git checkout --detach FETCH_HEAD",
        f"git show {_q(f'{where.base}:{where.kernel}')} > {BASELINE_FILE}",
        f"python3 -m venv .venv && .venv/bin/pip install {_q(install_spec())}",
        " ".join(_check_words(op, where.kernel, best, timed)),
    ]
    if any("`" in line or "\n" in line for line in lines):
        raise ValueError("a name in the reproduce commands would break out of its code block")
    return lines


def install_spec() -> str:
    """The pip requirement of the kevolve this bot runs, with the GPU stack."""
    try:
        return f"kevolve[gpu]=={metadata.version('kevolve')}"
    except metadata.PackageNotFoundError:
        return "kevolve[gpu]"


def _check_words(op: str, kernel: str, best: Evaluation, timed: bool) -> list[str]:
    """`kevolve check` of the candidate against the baseline, as the search judged it."""
    words = [".venv/bin/kevolve", "check", ".", "--op", _q(op), "--candidate", _q(kernel)]
    words += ["--baseline", BASELINE_FILE]
    cases = best.timings if timed else best.checks
    for dtype in _distinct(c.dtype for c in cases):
        words += ["--dtype", _q(dtype)]
    if timed:
        for shape in _distinct("x".join(map(str, t.shape)) for t in best.timings if t.shape):
            words += ["--shape", shape]
    return [*words, "--device", "cuda"] if timed else [*words, "--device", "cpu", "--no-time"]


def _distinct(values: Iterable[str]) -> list[str]:
    """The values in first-seen order, each once."""
    return list(dict.fromkeys(values))


def _q(text: str) -> str:
    """A shell word."""
    return shlex.quote(text)
