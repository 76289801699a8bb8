"""A private copy of the checkout in which mutmut mutates one guard module."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

from mutation.guards import Guard

# mutmut's own table; the workspace's copy is rewritten to aim it at one module.
_MUTMUT_TABLE = re.compile(r"^\[tool\.mutmut[.\]].*?(?=^\[(?!tool\.mutmut[.\]]))", re.M | re.S)


def build_workspace(root: Path, guard: Guard, into: Path) -> Path:
    """Copy the checkout at `root` into `into` (replacing it) with mutmut aimed at `guard`."""
    if into.exists():
        shutil.rmtree(into)
    for rel in _checkout_files(root):
        source = root / rel
        if source.is_file():  # a tracked file may be deleted in the working tree
            target = into / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    pyproject = root / "pyproject.toml"
    text = _MUTMUT_TABLE.sub("", pyproject.read_text())
    base = tomllib.loads(pyproject.read_text()).get("tool", {}).get("mutmut", {})
    (into / "pyproject.toml").write_text(text.rstrip() + "\n\n" + _mutmut_table(base, guard))
    return into


def _checkout_files(root: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files, as a fresh clone plus local edits has."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return sorted({f for f in out.stdout.split("\0") if f})


def _mutmut_table(base: dict[str, object], guard: Guard) -> str:
    """[tool.mutmut] for the workspace: the project's settings, this module, its tests."""
    table = {
        **base,
        "only_mutate": [guard.path],
        "pytest_add_cli_args_test_selection": list(guard.tests),
    }
    lines = ["[tool.mutmut]"] + [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"
