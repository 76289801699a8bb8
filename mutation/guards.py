"""The guard modules, the tests that cover each, and the mutants no test here can kill: those shown
to be equivalent, and those in code only a GPU runs."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

GUARDS_FILE = Path(__file__).with_name("guards.toml")


@dataclass(frozen=True)
class Guard:
    """One module under mutation: its path, its covering tests, the mutants explained."""

    path: str  # e.g. "harness/search/result.py"
    tests: tuple[str, ...]  # test files run against each mutant
    equivalent: dict[str, str]  # mutant name -> why no test can tell it apart
    gpu_only: dict[str, str] = field(default_factory=dict)  # mutant -> the GPU-only code it changes

    @property
    def explained(self) -> dict[str, str]:
        """Every mutant listed as equivalent or GPU-only, with its reason."""
        return {**self.equivalent, **self.gpu_only}

    @property
    def dotted(self) -> str:
        """The module's import name, e.g. "harness.search.result"."""
        return self.path.removesuffix(".py").replace("/", ".")


class GuardsError(ValueError):
    """guards.toml is malformed or names a module it does not list."""


def load_guards(path: Path = GUARDS_FILE) -> list[Guard]:
    """Every guard module in `path`, in file order."""
    data = tomllib.loads(path.read_text())
    guards = []
    for module, entry in data.get("modules", {}).items():
        tests = entry.get("tests")
        if not tests or not all(isinstance(t, str) for t in tests):
            raise GuardsError(f"{path}: modules.{module!r} needs tests = [<test files>]")
        equivalent, gpu_only = dict(entry.get("equivalent", {})), dict(entry.get("gpu_only", {}))
        if both := equivalent.keys() & gpu_only.keys():
            raise GuardsError(
                f"{path}: {', '.join(sorted(both))} listed as equivalent and GPU-only"
            )
        guards.append(Guard(module, tuple(tests), equivalent, gpu_only))
    return guards


def select_guards(guards: list[Guard], names: list[str]) -> list[Guard]:
    """The guards named by path or dotted name (all when `names` is empty)."""
    if not names:
        return guards
    by_name = {g.path: g for g in guards} | {g.dotted: g for g in guards}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        known = ", ".join(g.path for g in guards)
        raise GuardsError(f"not a guard module: {', '.join(unknown)}; choose from {known}")
    return [by_name[n] for n in names]
