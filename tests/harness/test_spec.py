"""Tests for `harness.spec.load`: configs and KernelBench files become `Problem`s, or say why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kevolve.harness.spec.load import SpecError, load_problems, narrow, select
from kevolve.harness.spec.problem import ProblemKind, Tolerance

OP = "[tool.kevolve.ops.softmax]"
FIELDS = {
    "kernel": '"kern/softmax.py"',
    "entry": '"softmax"',
    "reference": '"kern/reference.py:softmax_ref"',
    "inputs": '"kern/reference.py:make_inputs"',
    "dtypes": '["float16", "float32"]',
    "shapes": "[[4096, 4096], [8, 1000]]",
}
# Top-level code that would fail if the loader ever ran the file instead of parsing it.
REFERENCE = """\
import torch
raise SystemExit("spec loading must not execute repo code")

def softmax_ref(x):
    return torch.softmax(x, dim=-1)

def make_inputs(shape, dtype, seed):
    return [torch.randn(shape, dtype=dtype)]

def flops(shape):
    return 5 * shape[0] * shape[1]
"""
KERNELBENCH = """\
import torch
import torch.nn as nn

class Model(nn.Module):
    def forward(self, x):
        return torch.relu(x)

def get_inputs():
    return [torch.randn(16, 16384)]

def get_init_inputs():
    return []
"""


def table(header: str = OP, /, **fields: str | None) -> str:
    """An op table: the default fields, with `fields` overriding them (None drops one)."""
    merged = {**FIELDS, **fields}
    return "\n".join([header, *(f"{k} = {v}" for k, v in merged.items() if v is not None)]) + "\n"


def make_repo(root: Path, config: str, name: str = "pyproject.toml") -> Path:
    """A small repo under `root` with one kernel, one reference file and the given config."""
    (root / "kern").mkdir(exist_ok=True)
    (root / "kern" / "softmax.py").write_text("import triton\n\ndef softmax(x):\n    return x\n")
    (root / "kern" / "reference.py").write_text(REFERENCE)
    (root / name).write_text(config)
    return root


def spec_error(spec: Path) -> str:
    """The message of the SpecError that loading `spec` raises."""
    with pytest.raises(SpecError) as info:
        load_problems(spec)
    return str(info.value)


def test_pyproject_table_becomes_a_repo_problem(tmp_path: Path) -> None:
    config = "[project]\nname = 'demo'\n\n" + table(
        check_shapes="[[3, 17], [1, 1000]]",
        flops='"kern/reference.py:flops"',
        tolerance="{ float16 = { rtol = 1e-2, atol = 1e-2, norm = 1e-3 } }",
        allowed_imports='["math", "triton.language"]',
    )
    [problem] = load_problems(make_repo(tmp_path, config))
    assert problem.name == "softmax"
    assert problem.kind is ProblemKind.REPO
    assert problem.root == tmp_path.resolve()
    assert problem.source == tmp_path.resolve() / "pyproject.toml"
    assert (problem.kernel, problem.entry) == ("kern/softmax.py", "softmax")
    assert problem.reference == "kern/reference.py:softmax_ref"
    assert problem.inputs == "kern/reference.py:make_inputs"
    assert problem.flops == "kern/reference.py:flops"
    assert problem.dtypes == ("float16", "float32")
    assert problem.shapes == ((4096, 4096), (8, 1000))
    assert problem.check_shapes == ((3, 17), (1, 1000))
    assert problem.tolerances == {"float16": Tolerance(rtol=1e-2, atol=1e-2, norm=1e-3)}
    assert problem.allowed_imports == ("math", "triton.language")
    assert problem.kernel_path == tmp_path.resolve() / "kern" / "softmax.py"


def test_optional_fields_default_to_empty(tmp_path: Path) -> None:
    [problem] = load_problems(make_repo(tmp_path, table()) / "pyproject.toml")
    assert problem.check_shapes == ()
    assert problem.tolerances == {}
    assert problem.flops is None
    assert problem.allowed_imports == ()


def test_kevolve_toml_takes_precedence_over_pyproject(tmp_path: Path) -> None:
    make_repo(tmp_path, table(OP.replace("softmax", "from_pyproject")))
    make_repo(tmp_path, table("[ops.from_kevolve_toml]"), name="kevolve.toml")
    [problem] = load_problems(tmp_path)
    assert problem.name == "from_kevolve_toml"
    assert problem.source == tmp_path.resolve() / "kevolve.toml"


def test_ops_keep_their_declared_order(tmp_path: Path) -> None:
    config = table("[ops.softmax]") + table("[ops.layer-norm]", dtypes='["bfloat16"]')
    problems = load_problems(make_repo(tmp_path, config, name="kevolve.toml"))
    assert [p.name for p in problems] == ["softmax", "layer-norm"]
    assert problems[1].dtypes == ("bfloat16",)


def test_kernelbench_file_becomes_a_problem(tmp_path: Path) -> None:
    (tmp_path / "19_ReLU.py").write_text(KERNELBENCH)
    [problem] = load_problems(tmp_path / "19_ReLU.py")
    assert problem.name == "19_ReLU"
    assert problem.kind is ProblemKind.KERNELBENCH
    assert problem.root == tmp_path.resolve()
    assert problem.source == tmp_path.resolve() / "19_ReLU.py"
    assert (problem.reference, problem.inputs) == ("19_ReLU.py:Model", "19_ReLU.py:get_inputs")
    assert (problem.kernel, problem.entry) == (None, "ModelNew")
    assert (problem.shapes, problem.check_shapes) == (((),), ())
    assert problem.dtypes == ("float32",)


def test_kernelbench_dtypes_come_from_a_literal(tmp_path: Path) -> None:
    (tmp_path / "relu.py").write_text(KERNELBENCH + 'KEVOLVE_DTYPES = ["bfloat16", "float16"]\n')
    assert load_problems(tmp_path / "relu.py")[0].dtypes == ("bfloat16", "float16")


def test_loading_imports_no_torch_and_runs_no_repo_code(tmp_path: Path) -> None:
    make_repo(tmp_path, table())
    code = (
        "import sys; from pathlib import Path; from harness.spec.load import load_problems; "
        f"load_problems(Path({str(tmp_path)!r})); assert 'torch' not in sys.modules"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env={"PYTHONPATH": "."})


def test_undefined_function_message_is_pinned(tmp_path: Path) -> None:
    make_repo(tmp_path, table(reference='"kern/reference.py:softmax_rf"'))
    assert spec_error(tmp_path) == (
        f"{tmp_path / 'pyproject.toml'}: [tool.kevolve.ops.softmax] field 'reference': "
        "function 'softmax_rf' is not defined in kern/reference.py "
        "(defined there: softmax_ref, make_inputs, flops). "
        "Fix: define softmax_rf at the top level of kern/reference.py, or name another"
    )


def test_missing_table_shows_how_to_declare_an_op(tmp_path: Path) -> None:
    make_repo(tmp_path, "[project]\nname = 'demo'\n")
    assert spec_error(tmp_path) == (
        f"{tmp_path / 'pyproject.toml'}: [tool.kevolve] field 'ops': "
        "there is no [tool.kevolve] table. Fix: declare each op in its own table, e.g.\n"
        "[tool.kevolve.ops.softmax]\n"
        'kernel = "mykernels/softmax.py"\n'
        'entry = "softmax"\n'
        'reference = "mykernels/reference.py:softmax_ref"\n'
        'inputs = "mykernels/reference.py:make_inputs"\n'
        'dtypes = ["float16", "bfloat16"]\n'
        "shapes = [[4096, 4096], [8192, 1000]]"
    )


@pytest.mark.parametrize(
    ("fields", "where", "problem", "fix"),
    [
        (
            {"shape": "[[1]]"},
            "field 'shape'",
            "unknown key",
            "did you mean 'shapes'? known keys are: kernel, entry,",
        ),
        ({"kernel": "3"}, "field 'kernel'", "found an integer", 'write kernel = "'),
        ({"entry": None}, "field 'entry'", "missing (it is required)", 'add entry = "softmax"'),
        ({"shapes": '"4096"'}, "field 'shapes'", "found a string", "write shapes = [["),
        ({"shapes": "[4096, 4096]"}, "field 'shapes'", "shape 1 is an integer", "write shapes"),
        ({"shapes": "[[8, 0]]"}, "field 'shapes'", "shape 1 is [8, 0], not", "write shapes"),
        ({"check_shapes": "[[]]"}, "field 'check_shapes'", "shape 1 is []", "write check_"),
        ({"dtypes": "[]"}, "field 'dtypes'", "found a list of 0 items", "write dtypes = ["),
        (
            {"dtypes": '["fp16"]'},
            "field 'dtypes'",
            "unknown dtype 'fp16'",
            "use one of: float16, bfloat16, float32, float64, int8",
        ),
        (
            {"kernel": '"kern/missing.py"'},
            "field 'kernel'",
            "'kern/missing.py' does not exist",
            "correct the path",
        ),
        ({"kernel": '"../outside.py"'}, "field 'kernel'", "points outside the repo", "name a file"),
        ({"kernel": '"/etc/passwd.py"'}, "field 'kernel'", "is an absolute path", "give it"),
        ({"kernel": '"kern/../../outside.py"'}, "field 'kernel'", "outside", "name a file inside"),
        ({"entry": '"launch"'}, "field 'entry'", "function 'launch' is not defined", "define"),
        ({"inputs": '"kern/reference.py"'}, "field 'inputs'", "is not of the form", "write"),
        ({"flops": '"kern/reference.py:1x"'}, "field 'flops'", "not a valid Python name", "wr"),
        (
            {"tolerance": "{ float32 = { rtol = 1e-3, atol = 1e-5, norm = 1e-5 } }"},
            "[tool.kevolve.ops.softmax.tolerance.float32] field 'rtol'",
            "float32 may not be looser than 1e-4, found 0.001",
            "set it to 1e-4 or less",
        ),
        (
            {"tolerance": "{ float16 = { rtol = 1e-2, atol = 1e-2 } }"},
            "[tool.kevolve.ops.softmax.tolerance] field 'float16'",
            "needs exactly rtol, atol and norm, found rtol, atol",
            "write tolerance.float16 = {",
        ),
        (
            {"tolerance": "{ fp8 = { rtol = 1, atol = 1, norm = 1 } }"},
            "field 'tolerance'",
            "unknown dtype 'fp8'",
            "use one of",
        ),
        (
            {"tolerance": "{ float16 = { rtol = nan, atol = 1e-2, norm = 1e-3 } }"},
            "[tool.kevolve.ops.softmax.tolerance.float16] field 'rtol'",
            "expected a finite non-negative number, found nan",
            "write tolerance.float16 = {",
        ),
        ({"allowed_imports": '["os path"]'}, "field 'allowed_imports'", "not a module", "write"),
    ],
)
def test_bad_field_names_file_field_and_fix(
    tmp_path: Path, fields: dict[str, str | None], where: str, problem: str, fix: str
) -> None:
    (tmp_path / "outside.py").write_text("def f():\n    pass\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    message = spec_error(make_repo(repo, table(**fields)))
    assert message.startswith(f"{repo / 'pyproject.toml'}: ")
    assert where in message.split(": ")[1]
    assert problem in message
    assert f"Fix: {fix}" in message


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    make_repo(tmp_path, table("[ops.softmax]", dtypes="[float16]"), name="kevolve.toml")
    message = spec_error(tmp_path)
    assert message.startswith(f"{tmp_path / 'kevolve.toml'}: is not valid TOML: ")
    assert "(at line 6, column 11)" in message
    assert "Fix: correct the syntax at that line" in message


def test_bad_op_name_is_refused(tmp_path: Path) -> None:
    make_repo(tmp_path, table('[tool.kevolve.ops."soft max"]'))
    message = spec_error(tmp_path)
    assert "[tool.kevolve] field 'ops': op name 'soft max' may use only letters" in message
    assert "Fix: rename that op table" in message


def test_empty_ops_and_missing_config_say_how_to_declare(tmp_path: Path) -> None:
    make_repo(tmp_path, "[op.softmax]\nkernel = 'x.py'\n", name="kevolve.toml")
    message = spec_error(tmp_path)
    assert "kevolve.toml: 'ops': no ops are declared (the table has only: op)" in message
    assert "Fix: declare each op in its own table, e.g.\n[ops.softmax]\n" in message
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "has neither kevolve.toml nor pyproject.toml. Fix: declare" in spec_error(empty)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        (KERNELBENCH.replace("def get_inputs", "def inputs"), "'get_inputs': no top-level `def"),
        (KERNELBENCH.replace("class Model", "class Net"), "'Model': no top-level `class Model`"),
        (KERNELBENCH + "KEVOLVE_DTYPES = ['fp8']\n", "'KEVOLVE_DTYPES': unknown dtype 'fp8'"),
        (KERNELBENCH + "KEVOLVE_DTYPES = DTYPES\n", "'KEVOLVE_DTYPES': must be a list literal"),
        (KERNELBENCH + "def broken(:\n", "does not parse (line 13: invalid syntax)"),
    ],
)
def test_bad_kernelbench_file_names_what_is_wrong(
    tmp_path: Path, source: str, problem: str
) -> None:
    (tmp_path / "relu.py").write_text(source)
    message = spec_error(tmp_path / "relu.py")
    assert message.startswith(f"{tmp_path / 'relu.py'}: {problem}")
    assert "Fix: " in message


def test_kernelbench_missing_get_inputs_explains_the_format(tmp_path: Path) -> None:
    (tmp_path / "relu.py").write_text(KERNELBENCH.replace("def get_inputs", "def inputs"))
    assert spec_error(tmp_path / "relu.py") == (
        f"{tmp_path / 'relu.py'}: 'get_inputs': no top-level `def get_inputs`. "
        "Fix: a KernelBench file defines `class Model(nn.Module)` (the reference), "
        "`def get_inputs()` (the forward() inputs) and `def get_init_inputs()` "
        "(Model's constructor arguments)"
    )


def test_select_picks_the_only_op_or_the_named_one(tmp_path: Path) -> None:
    make_repo(tmp_path, table("[ops.softmax]") + table("[ops.layernorm]"), name="kevolve.toml")
    problems = load_problems(tmp_path)
    assert select(problems, "layernorm", tmp_path).name == "layernorm"
    assert select(problems[:1], None, tmp_path).name == "softmax"


def test_select_several_ops_without_op_lists_them(tmp_path: Path) -> None:
    make_repo(tmp_path, table("[ops.softmax]") + table("[ops.layernorm]"), name="kevolve.toml")
    with pytest.raises(SpecError) as info:
        select(load_problems(tmp_path), None, tmp_path)
    assert str(info.value) == (
        f"{tmp_path}: '--op': 2 ops are declared (softmax, layernorm) and no --op was given. "
        "Fix: pass --op with one of: softmax, layernorm"
    )


def test_select_unknown_op_lists_the_declared_ones(tmp_path: Path) -> None:
    make_repo(tmp_path, table("[ops.softmax]") + table("[ops.layernorm]"), name="kevolve.toml")
    with pytest.raises(SpecError) as info:
        select(load_problems(tmp_path), "sofmax", tmp_path)
    assert info.value.field == "--op"
    assert str(info.value) == (
        f"{tmp_path}: '--op': no op named 'sofmax' (declared: softmax, layernorm). "
        "Fix: did you mean 'softmax'? pass --op with one of: softmax, layernorm"
    )


def test_narrow_times_only_the_chosen_dtypes_and_shapes(tmp_path: Path) -> None:
    make_repo(tmp_path, table("[ops.softmax]"), name="kevolve.toml")
    problem = load_problems(tmp_path)[0]
    narrowed = narrow(problem, ["float32", "float32"], ["8x16", "3X5"], tmp_path)
    assert narrowed.dtypes == ("float32",)
    assert narrowed.shapes == ((8, 16), (3, 5))
    assert narrowed.check_shapes == problem.check_shapes  # never checked less
    assert narrow(problem, [], [], tmp_path) == problem


@pytest.mark.parametrize(
    ("dtypes", "shapes", "field"),
    [(["int8"], [], "--dtype"), ([], ["8x16x2"], "--shape"), ([], ["8x0"], "--shape")],
)
def test_narrow_refuses_what_the_op_cannot_take(
    tmp_path: Path, dtypes: list[str], shapes: list[str], field: str
) -> None:
    make_repo(tmp_path, table("[ops.softmax]"), name="kevolve.toml")
    with pytest.raises(SpecError) as info:
        narrow(load_problems(tmp_path)[0], dtypes, shapes, tmp_path)
    assert info.value.field == field
