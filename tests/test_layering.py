"""The bot's packages import one way: its subpackages may import the modules at the top of `bot/`,
those never import a subpackage, so no circle runs between the bot's packages."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT / "bot"
NAMESPACE = "kevolve.bot"


def _subpackages() -> frozenset[str]:
    """The bot's subpackages by name (commands, dashboard, features, service, ...)."""
    return frozenset(p.parent.name for p in BOT.glob("*/__init__.py"))


def _package_of(path: Path) -> str:
    """The bot package a module sits in: "" at the top of bot/, else its subpackage's name."""
    parts = path.relative_to(BOT).parts
    return parts[0] if len(parts) > 1 else ""


def _imported(tree: ast.Module, package: str) -> list[tuple[int, str]]:
    """(line, dotted name) of each module the code imports, relative imports made absolute, and
    the names a `from kevolve.bot import x` brings (x may be a subpackage)."""
    here = f"{NAMESPACE}.{package}" if package else NAMESPACE
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
        elif (module := _import_module_call(node)) is not None:
            found.append((node.lineno, module))
    return found


def _import_module_call(node: ast.AST) -> str | None:
    """The module an `importlib.import_module("...")` call names with a literal, else None."""
    if not (isinstance(node, ast.Call) and node.args):
        return None
    func, first = node.func, node.args[0]
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if name == "import_module" and isinstance(first, ast.Constant):
        return str(first.value)
    return None


def _target(dotted: str, subpackages: frozenset[str]) -> str | None:
    """The bot package a dotted import name lands in ("" for a top module), None outside the bot."""
    if dotted != NAMESPACE and not dotted.startswith(NAMESPACE + "."):
        return None
    rest = dotted.removeprefix(NAMESPACE).removeprefix(".").split(".")
    return rest[0] if rest[0] in subpackages else ""


def upward_imports(source: str, path: Path, subpackages: frozenset[str]) -> list[str]:
    """The imports of a top-level bot module that reach into a subpackage, as "file:line name"."""
    where = path.relative_to(ROOT)
    return [
        f"{where}:{line} {name}"
        for line, name in _imported(ast.parse(source, str(path)), "")
        if _target(name, subpackages)
    ]


def _modules() -> list[Path]:
    return sorted(p for p in BOT.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_top_level_bot_module_imports_a_subpackage() -> None:
    subpackages = _subpackages()
    assert {"commands", "dashboard", "features", "service"} <= subpackages
    found = [
        hit
        for path in _modules()
        if _package_of(path) == ""
        for hit in upward_imports(path.read_text(), path, subpackages)
    ]
    assert found == []


def test_the_bot_packages_import_each_other_without_a_circle() -> None:
    subpackages = _subpackages()
    arrows: dict[str, set[str]] = defaultdict(set)
    for path in _modules():
        package = _package_of(path)
        for _line, name in _imported(ast.parse(path.read_text(), str(path)), package):
            target = _target(name, subpackages)
            if target is not None and target != package:
                arrows[package].add(target)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for step in arrows[start] - seen:
            if step == goal or reaches(step, goal, seen | {step}):
                return True
        return False

    circles = sorted((a, b) for a in list(arrows) for b in arrows[a] if reaches(b, a, {b}))
    assert circles == []
    assert arrows[""] == set()  # the top modules stand on nothing else of the bot's


def test_each_kind_of_upward_import_is_caught() -> None:
    subpackages = frozenset({"commands", "features"})
    path = BOT / "example.py"
    source = "\n".join(
        [
            "import kevolve.bot.commands.cli",
            "from kevolve.bot.features.push import handle",
            "from kevolve.bot import features",
            "from .commands import work",
            "from . import commands",
            "importlib.import_module('kevolve.bot.commands.check')",
            "from kevolve.bot import storage, settings",
            "from kevolve.bot.storage import Storage",
            "import kevolve.runners.job",
        ]
    )
    caught = upward_imports(source, path, subpackages)
    lines = sorted({int(hit.split()[0].rsplit(":", 1)[1]) for hit in caught})
    assert lines == [1, 2, 3, 4, 5, 6]  # not the top modules (7, 8), nor outside the bot (9)
    assert "bot/example.py:3 kevolve.bot.features" in caught
