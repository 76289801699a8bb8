"""Running mutmut in a workspace and sorting its mutants: killed, survived, equivalent, GPU-only."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mutation.guards import Guard

# mutmut's statuses that mean a test (or the type checker, or a hang) told the mutant apart.
_KILLED = frozenset({"killed", "timeout", "caught by type check", "segfault"})


@dataclass
class ModuleScore:
    """One module's mutants by outcome."""

    module: str
    killed: list[str] = field(default_factory=list)
    survived: list[str] = field(default_factory=list)  # survived, no tests, suspicious, ...
    equivalent: list[str] = field(default_factory=list)
    gpu_only: list[str] = field(default_factory=list)  # in code no CPU test can reach
    stale: list[str] = field(default_factory=list)  # listed as explained, yet killed or gone
    statuses: dict[str, str] = field(default_factory=dict)  # mutant name -> mutmut's status

    def line(self) -> str:
        """`module: killed N / survived N / equivalent N / GPU-only N`."""
        return (
            f"{self.module}: killed {len(self.killed)} / survived {len(self.survived)} / "
            f"equivalent {len(self.equivalent)} / GPU-only {len(self.gpu_only)}"
        )


def run_mutmut(workspace: Path, jobs: int, log: Path) -> int:
    """Run `mutmut run` in `workspace`, its output to `log`; mutmut's exit status."""
    with log.open("w") as out:
        done = subprocess.run(
            [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs)],
            cwd=workspace, stdout=out, stderr=subprocess.STDOUT, check=False,
        )  # fmt: skip
    return done.returncode


def score(workspace: Path, guard: Guard) -> ModuleScore:
    """Sort the mutants mutmut recorded in `workspace` for `guard`."""
    result = ModuleScore(guard.path)
    for name, status in _statuses(workspace).items():
        result.statuses[name] = status
        if status in _KILLED:
            result.killed.append(name)
            if name in guard.explained:
                result.stale.append(name)
        elif name in guard.equivalent:
            result.equivalent.append(name)
        elif name in guard.gpu_only:
            result.gpu_only.append(name)
        else:
            result.survived.append(name)
    result.stale += [name for name in guard.explained if name not in result.statuses]
    return result


def mutant_diff(workspace: Path, name: str) -> str:
    """The unified diff mutmut shows for mutant `name`."""
    done = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", name],
        cwd=workspace, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.stdout.strip() or done.stderr.strip()


def _statuses(workspace: Path) -> dict[str, str]:
    """Mutant name -> status, from `mutmut results --all true`."""
    done = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=workspace, capture_output=True, text=True, check=True,
    )  # fmt: skip
    pairs = (line.strip().rpartition(": ") for line in done.stdout.splitlines())
    return {name: status for name, sep, status in pairs if sep}
