"""`Problem`: one op that kevolve may optimize, described as plain data (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

Shape = tuple[int, ...]

# Names accepted in configs; torch dtypes are looked up by these names in the child process.
FLOAT32_LOOSEST = 1e-4  # no config or override may let float32 rtol or norm exceed this
DTYPES = ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "bool")


class ProblemKind(StrEnum):
    """Where a problem came from, which decides how its parts are loaded."""

    REPO = "repo"  # [tool.kevolve] / kevolve.toml: reference, input maker, kernel file + entry
    KERNELBENCH = (
        "kernelbench"  # one file: Model, get_inputs, get_init_inputs; candidates define ModelNew
    )


@dataclass(frozen=True)
class Tolerance:
    """Element check |out - ref| <= atol * rms(ref) + rtol * |ref|, plus a relative-norm bound."""

    rtol: float
    atol: float
    norm: float


@dataclass(frozen=True)
class Problem:
    """One op: how to build inputs, what is right, and which file a candidate replaces."""

    name: str
    kind: ProblemKind
    root: Path  # repository root (repo problems) or the directory of the KernelBench file
    # "path/to/file.py:function" specs, relative to root. For KernelBench all point into one file.
    reference: str
    inputs: str
    kernel: (
        str | None
    )  # file the bot may rewrite (the baseline), relative to root; None for KernelBench
    entry: str  # function a candidate module must expose ("ModelNew" for KernelBench)
    shapes: tuple[Shape, ...]  # production shapes: timed on a GPU, checked too
    check_shapes: tuple[Shape, ...]  # small, awkward shapes: always checked, the only ones on CPU
    dtypes: tuple[str, ...]
    tolerances: dict[str, Tolerance] = field(default_factory=dict)  # per-dtype overrides
    flops: str | None = None  # optional "file.py:function" giving FLOPs for a shape
    allowed_imports: tuple[str, ...] = ()  # extra modules a candidate may import
    source: Path | None = None  # the config or spec file this problem was read from
    dims: tuple[str, ...] = ()  # names of the shapes' dimensions ("M", "N", "K"); () unnamed

    def path(self, spec: str) -> Path:
        """The file named by a "file.py:function" spec, resolved under the root."""
        return self.root / spec.split(":", 1)[0]

    @property
    def kernel_path(self) -> Path | None:
        """Absolute path of the repo's current kernel, if the problem has one."""
        return self.root / self.kernel if self.kernel else None


def problem_to_dict(problem: Problem) -> dict[str, object]:
    """A JSON-ready dict of the problem, as sent to the evaluation child process."""
    return {
        "name": problem.name,
        "kind": problem.kind.value,
        "root": str(problem.root),
        "reference": problem.reference,
        "inputs": problem.inputs,
        "kernel": problem.kernel,
        "entry": problem.entry,
        "shapes": [list(s) for s in problem.shapes],
        "check_shapes": [list(s) for s in problem.check_shapes],
        "dtypes": list(problem.dtypes),
        "tolerances": {k: vars(t) for k, t in problem.tolerances.items()},
        "flops": problem.flops,
        "allowed_imports": list(problem.allowed_imports),
        "source": str(problem.source) if problem.source else None,
        "dims": list(problem.dims),
    }


def problem_from_dict(data: dict[str, object]) -> Problem:
    """The inverse of `problem_to_dict`."""
    d: dict[str, object] = dict(data)
    tolerances = d.get("tolerances") or {}
    assert isinstance(tolerances, dict)
    return Problem(
        name=str(d["name"]),
        kind=ProblemKind(str(d["kind"])),
        root=Path(str(d["root"])),
        reference=str(d["reference"]),
        inputs=str(d["inputs"]),
        kernel=None if d.get("kernel") is None else str(d["kernel"]),
        entry=str(d["entry"]),
        shapes=tuple(tuple(int(n) for n in s) for s in d["shapes"]),  # type: ignore[attr-defined]
        check_shapes=tuple(tuple(int(n) for n in s) for s in d["check_shapes"]),  # type: ignore[attr-defined]
        dtypes=tuple(str(x) for x in d["dtypes"]),  # type: ignore[attr-defined]
        tolerances={str(k): Tolerance(**v) for k, v in tolerances.items()},
        flops=None if d.get("flops") is None else str(d["flops"]),
        allowed_imports=tuple(str(x) for x in d.get("allowed_imports") or ()),  # type: ignore[attr-defined]
        source=None if d.get("source") is None else Path(str(d["source"])),
        dims=tuple(str(x) for x in d.get("dims") or ()),  # type: ignore[attr-defined]
    )
