"""`SpecError` and the checks shared by the repo-config and KernelBench spec loaders."""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kevolve.harness.spec.problem import DTYPES

# One example line per field: the fix for a malformed value; the required ones show how to declare.
EXAMPLES = {
    "kernel": 'kernel = "mykernels/softmax.py"',
    "entry": 'entry = "softmax"',
    "reference": 'reference = "mykernels/reference.py:softmax_ref"',
    "inputs": 'inputs = "mykernels/reference.py:make_inputs"',
    "dtypes": 'dtypes = ["float16", "bfloat16"]',
    "shapes": "shapes = [[4096, 4096], [8192, 1000]]",
    "check_shapes": "check_shapes = [[3, 17], [1, 1000]]",
    "flops": 'flops = "mykernels/reference.py:softmax_flops"',
    "tolerance": "tolerance.float16 = { rtol = 1e-2, atol = 1e-2, norm = 1e-3 }",
    "allowed_imports": 'allowed_imports = ["math"]',
    "dims": 'dims = ["rows", "cols"]',
    "KEVOLVE_DTYPES": 'KEVOLVE_DTYPES = ["float32", "bfloat16"]',
}


class SpecError(Exception):
    """A problem spec that cannot be used: names the file, the field and the fix."""

    def __init__(self, path: Path, field: str | None, problem: str, fix: str) -> None:
        self.path, self.field, self.problem, self.fix = path, field, problem, fix
        table, _, key = (field or "").rpartition(".")
        where = f"[{table}] field '{key}': " if table else f"'{key}': " if key else ""
        super().__init__(f"{path}: {where}{problem}. Fix: {fix}")


@dataclass(frozen=True)
class Table:
    """Where the values being checked live: the file, the dotted table name and the repo root."""

    path: Path
    name: str
    root: Path

    def error(self, key: str, problem: str, fix: str = "") -> SpecError:
        """A SpecError about `key` of this table; the fix defaults to an example of the key."""
        example = EXAMPLES.get(key.split(".")[0], "")
        return SpecError(self.path, toml_path(self.name, key), problem, fix or f"write {example}")


def parse_module(path: Path, error: Callable[[str], SpecError]) -> ast.Module:
    """The module's syntax tree; `error(why)` is raised if it cannot be read or parsed."""
    try:
        return ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as e:
        raise error(f"line {e.lineno}: {e.msg}") from e
    except ValueError as e:  # null bytes, before Python 3.12
        raise error(str(e)) from e


def top_level_bindings(tree: ast.Module) -> dict[str, ast.stmt]:
    """Names bound by the module's top-level statements, each with the statement binding it."""
    found: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found.update((n.id, node) for n in targets if isinstance(n, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            found.update(((a.asname or a.name).split(".")[0], node) for a in node.names)
    return found


def dtype_list(t: Table, key: str, value: object) -> tuple[str, ...]:
    """A non-empty list of dtype names from `DTYPES`, duplicates dropped."""
    if not isinstance(value, list) or not value:
        raise t.error(key, f"expected a non-empty list of dtype names, found {describe(value)}")
    return tuple(dict.fromkeys(dtype_name(t, key, name) for name in value))


def dtype_name(t: Table, key: str, name: object) -> str:
    """One dtype name from `DTYPES`."""
    if not isinstance(name, str) or name not in DTYPES:
        hint = did_you_mean(name, DTYPES) if isinstance(name, str) else ""
        raise t.error(key, f"unknown dtype {name!r}", f"{hint}use one of: {', '.join(DTYPES)}")
    return name


def describe(value: object) -> str:
    """A TOML value's kind in words: "a string", "a list of 2 items", "a table"."""
    if isinstance(value, list):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    kinds = {bool: "a boolean", str: "a string", int: "an integer", float: "a float"}
    return kinds.get(type(value), "a table" if isinstance(value, dict) else "a date or time")


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """A "did you mean 'x'? " hint for a near-miss, else the empty string."""
    close = difflib.get_close_matches(word, choices, n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def toml_path(*parts: str) -> str:
    """Dotted TOML path of the non-empty parts."""
    return ".".join(p for p in parts if p)
