"""Named shape dimensions: an op's optional `dims` in its config, checked against its shapes,
carried to the judge, and how tables head and show shapes with and without them."""

from __future__ import annotations

from pathlib import Path

import pytest
from kevolve.harness.evaluation import shape_cell, shape_heading
from kevolve.harness.spec.load import SpecError, load_problems
from kevolve.harness.spec.problem import problem_from_dict, problem_to_dict

from tests.harness.test_spec import make_repo, table

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"


def test_the_demo_names_its_dimensions() -> None:
    named = {p.name: p.dims for p in load_problems(DEMO)}
    assert named == {
        "softmax": ("rows", "cols"),
        "rmsnorm": ("rows", "cols"),
        "bias_gelu": ("rows", "cols"),
        "matmul_bias_relu": ("M", "N", "K"),
    }


def test_dims_are_optional_and_travel_to_the_judge(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    [plain] = load_problems(make_repo(tmp_path / "a", table()))
    assert plain.dims == ()
    [named] = load_problems(make_repo(tmp_path / "b", table(dims='["rows", "cols"]')))
    assert named.dims == ("rows", "cols")
    assert problem_from_dict(problem_to_dict(named)) == named


@pytest.mark.parametrize(
    ("dims", "problem", "fix"),
    [
        (
            '["M", "N", "K"]',
            "names 3 dimensions but the shapes have 2",
            "name each axis of the shapes once, in order",
        ),
        ('["rows", "rows"]', "names a dimension twice", "give each dimension its own name"),
        (
            '["rows", "2cols"]',
            "'2cols' is not a dimension name (a letter, then letters, digits or '_')",
            'write dims = ["rows", "cols"]',
        ),
        ('"rows"', "expected a list of dimension names, found a string", ""),
    ],
)
def test_bad_dims_name_the_field_and_the_fix(
    tmp_path: Path, dims: str, problem: str, fix: str
) -> None:
    config = make_repo(tmp_path, table(dims=dims)) / "pyproject.toml"
    with pytest.raises(SpecError) as caught:
        load_problems(config)
    assert str(caught.value).startswith(
        f"{config}: [tool.kevolve.ops.softmax] field 'dims': {problem}. Fix: "
    )
    assert str(caught.value).endswith(fix or 'write dims = ["rows", "cols"]')


def test_tables_show_named_and_plain_shapes() -> None:
    assert (shape_heading(["M", "N", "K"]), shape_cell([33, 17, 45], ["M", "N", "K"])) == (
        "shape (M×N×K)",
        "33×17×45",
    )
    assert (shape_heading([]), shape_cell([33, 17, 45])) == ("shape", "33x17x45")
    assert shape_cell([], ["M"]) == "(as given)"  # a KernelBench op's inputs
