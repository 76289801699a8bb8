"""The project names each module and each class once: no two share a name across its packages."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "harness", "runners")
ENTRY_FILES = {"__init__.py", "__main__.py"}


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _repeated(names: dict[str, list[str]]) -> dict[str, list[str]]:
    return {name: places for name, places in sorted(names.items()) if len(places) > 1}


def test_no_two_modules_or_packages_share_a_name() -> None:
    names: dict[str, list[str]] = defaultdict(list)
    for path in _modules():
        where = path.relative_to(ROOT)
        if path.name in ENTRY_FILES:
            if path.name == "__init__.py" and path.parent != ROOT / path.parts[len(ROOT.parts)]:
                names[path.parent.name].append(str(where.parent))
            continue
        names[path.stem].append(str(where))
    assert _repeated(names) == {}


def test_no_two_classes_share_a_name() -> None:
    names: dict[str, list[str]] = defaultdict(list)
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                names[node.name].append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert _repeated(names) == {}
