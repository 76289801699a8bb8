"""The judge's memory plan end to end on the CPU: the KernelBench problems of
bench/scale/memory.py at small sizes, judged with the float64 reference computed a few rows at a
time (a tiny `chunk_bytes` in the request), and a case too large for the host."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from kevolve.harness.evaluation import Evaluation, Verdict
from kevolve.harness.judge.chunked import ChunkedReference
from kevolve.harness.judge.compare import DEFAULT_TOLERANCES, compare_outputs
from kevolve.harness.judge.inputs import Trial, load_module
from kevolve.harness.judge.session import JudgeRequest, Session
from kevolve.harness.judge.verdict import Judge
from kevolve.harness.spec.load import load_problems
from kevolve.harness.spec.problem import Problem

from tests.harness.cpu_judge import cpu_request

ROOT = Path(__file__).resolve().parents[2]
# bench/ is a folder of scripts, not a package: load the script the way the harness loads kernels.
scale = load_module(ROOT / "bench" / "scale" / "memory.py", "scale_memory")
SMALL: dict[str, dict[str, int]] = scale.SIZES["small"]
CHUNK_BYTES = 3000  # float64 bytes of a chunk: a row or two of each small problem
# Log-softmax as if every row were U[0,1): its logsumexp taken as log(n (e - 1)), not measured.
POPULATION = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _shift(x_ptr, y_ptr, n, n_cols, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n, other=0.0)
    tl.store(y_ptr + offs, x - tl.log(n_cols * 1.718281828459045), mask=offs < n)


class ModelNew(nn.Module):
    def __init__(self, dim: int = 1) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, n = torch.empty_like(x), x.numel()
        _shift[(triton.cdiv(n, 1024),)](x, y, n, x.shape[1], BLOCK=1024)
        return y
"""


def _problem(folder: Path, name: str, sizes: dict[str, int] | None = None) -> Problem:
    path, _ = scale.write_case(folder, name, "correct", sizes or SMALL[name])
    [problem] = load_problems(path)
    return problem


def _request(problem: Problem, candidate: Path) -> JudgeRequest:
    return cpu_request(problem, candidate, 5, chunk_bytes=CHUNK_BYTES, piece_elements=50)


def _judge(folder: Path, name: str, source: str, sizes: dict[str, int] | None = None) -> Evaluation:
    """The judge's verdict on `source`, run in this process with the tiny chunks."""
    problem = _problem(folder / "problem", name, sizes)
    candidate = folder / "candidate" / "candidate.py"
    candidate.parent.mkdir(parents=True)
    candidate.write_text(source)
    return Judge(_request(problem, candidate)).run()


@pytest.mark.parametrize("name", ["log_softmax", "group_norm", "attention"])
def test_the_float64_reference_comes_in_chunks_of_rows_and_judges_the_true_answer(
    tmp_path: Path, name: str
) -> None:
    problem = _problem(tmp_path, name)
    session = Session.open(_request(problem, tmp_path / "unused.py"))
    inputs = session.maker((), "float32", Trial(7, "row_scaled"))
    expected, working = session.references(inputs)
    assert isinstance(expected, ChunkedReference)
    assert len(expected.spans) > 2
    answer = session.reference([t.double() for t in inputs], "float64")  # type: ignore[union-attr]
    fp32 = DEFAULT_TOLERANCES["float32"]
    good = [a.float() for a in answer]  # type: ignore[union-attr]
    assert compare_outputs(good, expected, [torch.float32], fp32, working, 7).passed
    bad = [good[0].clone()]
    bad[0][-1].view(-1)[-1] += 0.5  # one element of the last row
    result = compare_outputs(bad, expected, [torch.float32], fp32, working, 7)
    assert not result.passed and result.mismatches == 1
    assert result.first_indices == [[n - 1 for n in bad[0].shape]]


def test_a_reference_that_mixes_rows_is_computed_whole(tmp_path: Path) -> None:
    """A cumulative sum down the rows would be wrong in chunks: the check on the last chunk
    sees it, and the float64 answer is computed whole."""
    path = tmp_path / "cumsum.py"
    path.write_text(
        scale.problem_source("log_softmax", SMALL["log_softmax"]).replace(
            "torch.log_softmax(x, dim=self.dim)", "torch.cumsum(x, dim=0)"
        )
    )
    [problem] = load_problems(path)
    session = Session.open(_request(problem, tmp_path / "unused.py"))
    inputs = session.maker((), "float32", Trial(1, "normal"))
    expected, _ = session.references(inputs)
    assert isinstance(expected, list) and expected[0].shape == (24, 1000)


def test_a_reference_that_cannot_run_on_a_chunk_is_computed_whole(tmp_path: Path) -> None:
    """A square matmul's second operand has the outputs' rows too; cut, the product fails."""
    path = tmp_path / "matmul.py"
    path.write_text(
        scale.problem_source("log_softmax", {"batch_size": 40, "dim": 40})
        .replace("torch.log_softmax(x, dim=self.dim)", "torch.matmul(x, y)")
        .replace("def forward(self, x: torch.Tensor)", "def forward(self, x: torch.Tensor, y)")
        .replace("return [torch.rand(batch_size, dim)]", "return [torch.rand(40, 40)] * 2")
    )
    [problem] = load_problems(path)
    session = Session.open(_request(problem, tmp_path / "unused.py"))
    inputs = session.maker((), "float32", Trial(1, "normal"))
    expected, _ = session.references(inputs)
    assert isinstance(expected, list) and expected[0].shape == (40, 40)


@pytest.mark.parametrize("name", ["log_softmax", "group_norm", "attention"])
def test_correct_kernels_are_correct(tmp_path: Path, name: str) -> None:
    ev = _judge(tmp_path, name, scale.CANDIDATES[(name, "correct")])
    assert ev.verdict is Verdict.CORRECT, ev.reason
    assert [c.trials for c in ev.checks] == [5]


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("log_softmax", "differ beyond tolerance"),  # one row's logsumexp for every row
        ("group_norm", "differ beyond tolerance"),  # U[0,1)'s mean and variance, not measured
        ("attention", "differ beyond tolerance"),  # each head's first row's max and sum
    ],
)
def test_shortcuts_are_incorrect(tmp_path: Path, name: str, words: str) -> None:
    ev = _judge(tmp_path, name, scale.CANDIDATES[(name, "shortcut")])
    assert ev.verdict is Verdict.INCORRECT, ev.reason
    assert words in ev.reason


def test_a_shortcut_assuming_uniform_population_statistics_is_incorrect(tmp_path: Path) -> None:
    ev = _judge(tmp_path, "log_softmax", POPULATION, {"batch_size": 12, "dim": 40000})
    assert ev.verdict is Verdict.INCORRECT, ev.reason
    assert "differ beyond tolerance" in ev.reason


def test_an_input_modified_in_place_is_caught(tmp_path: Path) -> None:
    source = scale.CANDIDATES[("log_softmax", "correct")].replace(
        "tl.store(y_ptr + row * n_cols + cols, (x - lse).to(y_ptr.dtype.element_ty), mask=mask)",
        "tl.store(y_ptr + row * n_cols + cols, (x - lse).to(y_ptr.dtype.element_ty), mask=mask)\n"
        "        tl.store(x_ptr + row * n_cols + cols, x * 0.5, mask=mask & (cols == 3))",
    )
    ev = _judge(tmp_path, "log_softmax", source)
    assert ev.verdict is Verdict.INCORRECT, ev.reason
    assert ev.reason.startswith(
        "shape as given float32: the candidate modified its inputs (input 0 was modified in "
        "place: 24 of 24000 elements differ bitwise (first at [0, 3]: "
    )


def test_a_problem_too_large_for_the_host_is_a_verdict_with_its_numbers(tmp_path: Path) -> None:
    sizes = {"batch_size": 2**21, "dim": 2**20}  # 8 TiB a tensor: never allocated
    ev = _judge(tmp_path, "log_softmax", scale.CANDIDATES[("log_softmax", "correct")], sizes)
    assert ev.verdict is Verdict.RUNTIME_ERROR
    found = re.fullmatch(
        r"shape as given float32: does not fit: judging it needs about ([\d.]+) GiB at once "
        r"\(inputs 8192\.0 GiB, outputs 8192\.0 GiB, .*\), more than the ([\d.]+) GiB this host "
        r"has available; the largest size that fits has (\d+) of its 2097152 rows along the "
        r"leading dimension \(about ([\d.]+) GiB\): make the leading dimension at most \3",
        ev.reason,
    )
    assert found is not None, ev.reason
    need, available, rows, fits = (float(g) for g in found.groups())
    # The judge holds the input, its float32 clone's answer, an input clone and the answer at
    # its own dtype; the worker the input and its answer: six 8 TiB tensors.
    assert need == pytest.approx(6 * 8192, rel=0.001)
    assert 0 < rows < 2**21 and fits <= available
    assert ev.checks == []  # no trial ran: nothing was allocated
