"""Load the `Problem` of a KernelBench file, without running any code."""

from __future__ import annotations

import ast
from pathlib import Path

from kevolve.harness.spec.checks import (
    SpecError,
    Table,
    dtype_list,
    parse_module,
    top_level_bindings,
)
from kevolve.harness.spec.problem import Problem, ProblemKind

_KERNELBENCH = (("class", "Model"), ("def", "get_inputs"), ("def", "get_init_inputs"))
_KERNELBENCH_FORMAT = (
    "a KernelBench file defines `class Model(nn.Module)` (the reference), `def get_inputs()` "
    "(the forward() inputs) and `def get_init_inputs()` (Model's constructor arguments)"
)


def load_kernelbench(path: Path) -> Problem:
    """The problem of a KernelBench file: Model is the reference, get_inputs makes the inputs."""
    fix = "correct the file so that it parses"
    tree = parse_module(path, lambda why: SpecError(path, None, f"does not parse ({why})", fix))
    bindings = top_level_bindings(tree)
    for statement, name in _KERNELBENCH:
        kind = ast.ClassDef if statement == "class" else ast.FunctionDef
        if not isinstance(bindings.get(name), kind):
            raise SpecError(path, name, f"no top-level `{statement} {name}`", _KERNELBENCH_FORMAT)
    t = Table(path, "", path.parent.resolve())
    return Problem(
        name=path.stem,
        kind=ProblemKind.KERNELBENCH,
        root=t.root,
        reference=f"{path.name}:Model",
        inputs=f"{path.name}:get_inputs",
        kernel=None,
        entry="ModelNew",
        shapes=((),),
        check_shapes=(),
        dtypes=_kernelbench_dtypes(t, bindings.get("KEVOLVE_DTYPES")),
        source=t.root / path.name,
    )


def _kernelbench_dtypes(t: Table, node: ast.stmt | None) -> tuple[str, ...]:
    """The dtypes of a module-level `KEVOLVE_DTYPES = [...]` literal; float32 without one."""
    if node is None:
        return ("float32",)
    value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
    try:
        names = ast.literal_eval(value) if isinstance(value, ast.List | ast.Tuple) else None
    except ValueError:
        names = None
    if names is None:
        raise t.error("KEVOLVE_DTYPES", "must be a list literal of dtype names (it is not run)")
    return dtype_list(t, "KEVOLVE_DTYPES", list(names))
