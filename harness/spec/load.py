"""Load `Problem`s from a repo's kevolve config or a KernelBench file, without running any code."""

from __future__ import annotations

import ast
import dataclasses
import keyword
import math
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from kevolve.harness.spec.checks import (
    EXAMPLES,
    SpecError,
    Table,
    describe,
    did_you_mean,
    dtype_list,
    dtype_name,
    parse_module,
    toml_path,
    top_level_bindings,
)
from kevolve.harness.spec.kernelbench import load_kernelbench
from kevolve.harness.spec.problem import FLOAT32_LOOSEST, Problem, ProblemKind, Shape, Tolerance

__all__ = ["SpecError", "load_problems", "narrow", "select"]

_OP_KEYS = tuple(key for key in EXAMPLES if key != "KEVOLVE_DTYPES")
_REQUIRED = ("kernel", "entry", "reference", "inputs", "dtypes", "shapes")
_TOLERANCE_KEYS = ("rtol", "atol", "norm")
_LOOSEST = f"{FLOAT32_LOOSEST:.0e}".replace("e-0", "e-")  # as a config writes it: 1e-4
_OP_NAME = re.compile(r"[A-Za-z0-9_-]+")
_DIM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,15}")
_SPEC_KINDS = "a repo directory, its pyproject.toml or kevolve.toml, or a KernelBench .py file"


def load_problems(spec: Path) -> list[Problem]:
    """The problems declared by a repo dir, pyproject.toml, kevolve.toml or KernelBench file."""
    if spec.is_dir():
        return _load_repo(_config_file(spec))
    if not spec.is_file():
        raise SpecError(spec, None, "no such file or directory", f"pass {_SPEC_KINDS}")
    if spec.suffix == ".py":
        return [load_kernelbench(spec)]
    if spec.suffix == ".toml":
        return _load_repo(spec)
    raise SpecError(spec, None, "is not a kevolve spec", f"pass {_SPEC_KINDS}")


def select(problems: Sequence[Problem], op: str | None, spec: Path) -> Problem:
    """The problem named by `op`, or the only one; otherwise a SpecError listing the names."""
    names = [p.name for p in problems]
    listed = ", ".join(names)
    if op is None and len(problems) == 1:
        return problems[0]
    if op is None:
        problem = f"{len(names)} ops are declared ({listed}) and no --op was given"
        raise SpecError(spec, "--op", problem, f"pass --op with one of: {listed}")
    for p in problems:
        if p.name == op:
            return p
    fix = f"{did_you_mean(op, names)}pass --op with one of: {listed}"
    raise SpecError(spec, "--op", f"no op named '{op}' (declared: {listed})", fix)


def narrow(problem: Problem, dtypes: Sequence[str], shapes: Sequence[str], spec: Path) -> Problem:
    """The problem restricted to some declared dtypes and timed at the given shapes ("8192x8192").

    Small check shapes stay: narrowing picks what is timed, never what is checked less.
    """
    for dtype in dtypes:
        if dtype not in problem.dtypes:
            declared = ", ".join(problem.dtypes)
            fix = f"{did_you_mean(dtype, problem.dtypes)}pass --dtype with one of: {declared}"
            raise SpecError(
                spec, "--dtype", f"'{dtype}' is not declared for op '{problem.name}'", fix
            )
    rank = len(problem.shapes[0])
    parsed = []
    for text in shapes:
        dims = text.lower().split("x")
        if len(dims) != rank or not all(d.isdigit() and int(d) > 0 for d in dims):
            example = "x".join(str(n) for n in problem.shapes[0])
            what = f"'{text}' is not {rank} positive integers joined by 'x'"
            raise SpecError(spec, "--shape", what, f"write it like --shape {example}")
        parsed.append(tuple(int(d) for d in dims))
    return dataclasses.replace(
        problem,
        dtypes=tuple(dict.fromkeys(dtypes)) or problem.dtypes,
        shapes=tuple(dict.fromkeys(parsed)) or problem.shapes,
    )


def _config_file(repo: Path) -> Path:
    """kevolve.toml if the repo has one, else its pyproject.toml."""
    for name in ("kevolve.toml", "pyproject.toml"):
        if (repo / name).is_file():
            return repo / name
    problem = "has neither kevolve.toml nor pyproject.toml"
    raise SpecError(repo, "tool.kevolve.ops", problem, _how_to_declare("tool.kevolve"))


def _load_repo(config: Path) -> list[Problem]:
    """One problem per op table of a kevolve config."""
    data = _read_toml(config)
    prefix = "tool.kevolve" if config.name == "pyproject.toml" else ""
    tool = data.get("tool") if prefix else None
    table = (tool.get("kevolve") if isinstance(tool, dict) else None) if prefix else data
    root = config.parent.resolve()
    ops = _ops(config, prefix, table)
    return [_op(Table(config, toml_path(prefix, "ops", name), root), value) for name, value in ops]


def _read_toml(path: Path) -> dict[str, object]:
    """The parsed TOML file, or a SpecError carrying tomllib's line and column."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        fix = "correct the syntax at that line (see https://toml.io)"
        raise SpecError(path, None, f"is not valid TOML: {e}", fix) from e


def _ops(config: Path, prefix: str, table: object) -> list[tuple[str, object]]:
    """The (name, table) pairs of a non-empty, well-named ops table."""
    ops = table.get("ops") if isinstance(table, dict) else None
    if isinstance(ops, dict) and ops:
        bad = [name for name in ops if not _OP_NAME.fullmatch(name)]
        if not bad:
            return list(ops.items())
        problem = f"op name '{bad[0]}' may use only letters, digits, '_' and '-'"
        raise SpecError(config, toml_path(prefix, "ops"), problem, "rename that op table")
    if table is None:
        problem = f"there is no [{prefix}] table"
    elif ops is None or isinstance(ops, dict):
        found = ", ".join(table) if isinstance(table, dict) else ""
        problem = "no ops are declared" + (f" (the table has only: {found})" if found else "")
    else:
        problem = f"expected a table of ops, found {describe(ops)}"
    raise SpecError(config, toml_path(prefix, "ops"), problem, _how_to_declare(prefix))


def _how_to_declare(prefix: str) -> str:
    """An example op table under `prefix`, one field a line."""
    lines = [f"[{toml_path(prefix, 'ops', 'softmax')}]", *(EXAMPLES[key] for key in _REQUIRED)]
    return "declare each op in its own table, e.g.\n" + "\n".join(lines)


def _op(t: Table, data: object) -> Problem:
    """The problem of one op table, every field checked."""
    if not isinstance(data, dict):
        raise t.error("", f"expected a table, found {describe(data)}", f"write [{t.name}]")
    for key in data:
        if key not in _OP_KEYS:
            fix = f"{did_you_mean(key, _OP_KEYS)}known keys are: {', '.join(_OP_KEYS)}"
            raise t.error(key, "unknown key", fix)
    kernel = _string(t, "kernel", _require(t, data, "kernel"))
    entry = _name(t, "entry", _string(t, "entry", _require(t, data, "entry")))
    _defined(t, "entry", _file(t, "kernel", kernel), entry)
    shapes = _shapes(t, "shapes", _require(t, data, "shapes"), allow_empty=False)
    check_shapes = _shapes(t, "check_shapes", data.get("check_shapes", []), allow_empty=True)
    return Problem(
        name=t.name.rpartition(".")[2],
        kind=ProblemKind.REPO,
        root=t.root,
        reference=_callable(t, "reference", _require(t, data, "reference")),
        inputs=_callable(t, "inputs", _require(t, data, "inputs")),
        kernel=kernel,
        entry=entry,
        shapes=shapes,
        check_shapes=check_shapes,
        dtypes=dtype_list(t, "dtypes", _require(t, data, "dtypes")),
        tolerances=_tolerances(t, data.get("tolerance", {})),
        flops=_callable(t, "flops", data["flops"]) if "flops" in data else None,
        allowed_imports=_imports(t, "allowed_imports", data.get("allowed_imports", [])),
        source=t.root / t.path.name,
        dims=_dims(t, data.get("dims", []), (*shapes, *check_shapes)),
    )


def _dims(t: Table, value: object, shapes: tuple[Shape, ...]) -> tuple[str, ...]:
    """Distinct dimension names, one per axis of every shape; () when none are given."""
    if not isinstance(value, list):
        raise t.error("dims", f"expected a list of dimension names, found {describe(value)}")
    for name in value:
        if not isinstance(name, str) or not _DIM_NAME.fullmatch(name):
            shown = repr(name) if isinstance(name, str) else describe(name)
            problem = f"{shown} is not a dimension name (a letter, then letters, digits or '_')"
            raise t.error("dims", problem)
    if len(set(value)) != len(value):
        raise t.error("dims", "names a dimension twice", "give each dimension its own name")
    ranks = sorted({len(s) for s in shapes})
    if value and ranks != [len(value)]:
        listed = " or ".join(map(str, ranks))
        problem = f"names {len(value)} dimensions but the shapes have {listed}"
        raise t.error("dims", problem, "name each axis of the shapes once, in order")
    return tuple(value)


def _require(t: Table, data: dict[str, object], key: str) -> object:
    """The value of a required key."""
    if key not in data:
        raise t.error(key, "missing (it is required)", f"add {EXAMPLES[key]}")
    return data[key]


def _string(t: Table, key: str, value: object) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise t.error(key, f"expected a non-empty string, found {describe(value)}")
    return value


def _name(t: Table, key: str, name: str) -> str:
    """A string that can name a Python function."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise t.error(key, f"'{name}' is not a valid Python name")
    return name


def _callable(t: Table, key: str, value: object) -> str:
    """A "relative/file.py:function" spec whose file exists and defines the function."""
    spec = _string(t, key, value)
    file, colon, function = spec.rpartition(":")
    if not colon or not file:
        raise t.error(key, f"'{spec}' is not of the form \"relative/file.py:function\"")
    _defined(t, key, _file(t, key, file), _name(t, key, function))
    return spec


def _file(t: Table, key: str, relative: str) -> Path:
    """The existing .py file at `relative`, which must stay inside the repository."""
    path = (t.root / relative).resolve()
    if Path(relative).is_absolute() or PurePosixPath(relative).is_absolute():
        raise t.error(key, f"'{relative}' is an absolute path", "give it relative to the repo root")
    if not path.is_relative_to(t.root):
        fix = f"name a file inside the repository ({t.root}), relative to its root"
        raise t.error(key, f"'{relative}' points outside the repository", fix)
    if path.suffix != ".py":
        raise t.error(key, f"'{relative}' is not a .py file", "name a Python source file")
    if not path.is_file():
        fix = f"correct the path; it is relative to {t.root}"
        raise t.error(key, f"'{relative}' does not exist (looked for {path})", fix)
    return path


def _defined(t: Table, key: str, path: Path, name: str) -> None:
    """Check, without running it, that the file binds `name` at top level."""
    rel = path.relative_to(t.root).as_posix()
    tree = parse_module(path, lambda why: t.error(key, f"{rel} does not parse ({why})"))
    bindings = top_level_bindings(tree)
    if name in bindings:
        return
    own = [n for n, node in bindings.items() if not isinstance(node, ast.Import | ast.ImportFrom)]
    problem = f"function '{name}' is not defined in {rel} (defined there: {', '.join(own)})"
    raise t.error(key, problem, f"define {name} at the top level of {rel}, or name another")


def _shapes(t: Table, key: str, value: object, *, allow_empty: bool) -> tuple[Shape, ...]:
    """A list of shapes, each a non-empty list of positive integers."""
    if not isinstance(value, list) or not (value or allow_empty):
        raise t.error(key, f"expected a non-empty list of shapes, found {describe(value)}")
    for i, shape in enumerate(value, 1):
        if not (isinstance(shape, list) and shape and all(type(n) is int and n > 0 for n in shape)):
            shown = repr(shape) if isinstance(shape, list) else describe(shape)
            raise t.error(key, f"shape {i} is {shown}, not a non-empty list of positive integers")
    return tuple(tuple(shape) for shape in value)


def _tolerances(t: Table, value: object) -> dict[str, Tolerance]:
    """The per-dtype tolerance table."""
    if not isinstance(value, dict):
        raise t.error("tolerance", f"expected a table of dtypes, found {describe(value)}")
    return {
        dtype_name(t, "tolerance", dtype): _tolerance(t, dtype, v) for dtype, v in value.items()
    }


def _tolerance(t: Table, dtype: str, value: object) -> Tolerance:
    """One dtype's rtol, atol and norm: non-negative numbers, float32's at most 1e-4."""
    key = f"tolerance.{dtype}"
    if not isinstance(value, dict) or sorted(value) != sorted(_TOLERANCE_KEYS):
        found = ", ".join(value) or "nothing" if isinstance(value, dict) else describe(value)
        raise t.error(key, f"needs exactly rtol, atol and norm, found {found}")
    for name, number in value.items():
        if type(number) not in (int, float) or not 0 <= number < math.inf:
            problem = f"expected a finite non-negative number, found {number!r}"
            raise t.error(f"{key}.{name}", problem)
        if dtype == "float32" and name != "atol" and number > FLOAT32_LOOSEST:
            problem = f"float32 may not be looser than {_LOOSEST}, found {number}"
            fix = f"set it to {_LOOSEST} or less; looser float32 checks let wrong kernels pass"
            raise t.error(f"{key}.{name}", problem, fix)
    return Tolerance(**{name: float(value[name]) for name in _TOLERANCE_KEYS})


def _imports(t: Table, key: str, value: object) -> tuple[str, ...]:
    """A list of dotted module names."""
    if not isinstance(value, list):
        raise t.error(key, f"expected a list of module names, found {describe(value)}")
    for item in value:
        if not isinstance(item, str) or not all(p.isidentifier() for p in item.split(".")):
            raise t.error(key, f"{item!r} is not a module name")
    return tuple(value)
