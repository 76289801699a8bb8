"""A private copy of the checkout in which mutmut mutates one guard module.

The packages install as `kevolve.bot`, `kevolve.harness`, ... (pyproject's package-dir), and the
tests import them by those names. mutmut names a mutant after its file's path and switches it on
only where the running function's module has that name, so the workspace lays each package out
under `kevolve/` as installed: `kevolve/harness/screen.py` is `kevolve.harness.screen` both to
mutmut and to the tests. mutmut puts its `mutants/` copy first on `sys.path`, so `kevolve` is found
there before the editable install's finder, which points at the checkout itself.
"""

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
NAMESPACE = "kevolve"  # the one top-level name the packages install under


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
    project = tomllib.loads(pyproject.read_text())
    folders = package_folders(project)
    for package, folder in folders.items():
        shutil.copytree(into / folder, into / package.replace(".", "/"))
    text = _MUTMUT_TABLE.sub("", pyproject.read_text())
    base = project.get("tool", {}).get("mutmut", {})
    table = _mutmut_table(base, guard, folders)
    (into / "pyproject.toml").write_text(text.rstrip() + "\n\n" + table)
    return into


def package_folders(project: dict[str, object]) -> dict[str, str]:
    """`kevolve.<name>` -> the checkout folder that installs as it (pyproject's package-dir)."""
    tool = project.get("tool", {})
    setuptools = tool.get("setuptools", {}) if isinstance(tool, dict) else {}
    mapping = setuptools.get("package-dir", {}) if isinstance(setuptools, dict) else {}
    return {str(k): str(v) for k, v in mapping.items() if str(k).startswith(f"{NAMESPACE}.")}


def mutated_path(guard: Guard, folders: dict[str, str]) -> str:
    """Where `guard`'s module sits in the workspace, e.g. "kevolve/harness/screen.py"."""
    for package, folder in folders.items():
        if guard.path.startswith(f"{folder}/"):
            return package.replace(".", "/") + guard.path.removeprefix(folder)
    raise ValueError(f"{guard.path} is in no package of pyproject's [tool.setuptools.package-dir]")


def _checkout_files(root: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files, as a fresh clone plus local edits has."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return sorted({f for f in out.stdout.split("\0") if f})


def _mutmut_table(base: dict[str, object], guard: Guard, folders: dict[str, str]) -> str:
    """[tool.mutmut] for the workspace: the project's settings, this module, its tests.

    The checkout's own package folders are copied too (unmutated), for tests that read files
    there by path; nothing imports them under their bare names.
    """
    also_copy = [str(p) for p in base.get("also_copy", []) or []]  # type: ignore[attr-defined]
    table = {
        **base,
        "source_paths": [NAMESPACE],
        "also_copy": list(dict.fromkeys([*also_copy, *folders.values()])),
        "only_mutate": [mutated_path(guard, folders)],
        "pytest_add_cli_args_test_selection": list(guard.tests),
    }
    lines = ["[tool.mutmut]"] + [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"
