"""Tests of harness.judge.bitwise with digests instead of clones: read a few elements at a time,
every change is caught and named as a clone would name it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from kevolve.harness.judge.bitwise import digest, identical, inputs_unchanged, snapshot
from kevolve.harness.judge.client import WorkerClient
from kevolve.harness.sandbox.spawn import Limits, clean_env
from kevolve.harness.spec.load import load_problems
from kevolve.harness.spec.problem import problem_to_dict

ROOT = Path(__file__).resolve().parents[2]
SOFTMAX = ROOT / "examples" / "kernelbench" / "softmax.py"
STARTUP = 120.0
PIECE = 5  # elements a digest reads at once: many pieces even for these small tensors


def _randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype)


def test_untouched_inputs_match_their_digests() -> None:
    inputs: list[object] = [_randn(6, 7), 3, [_randn(4, seed=1), (_randn(2, 2, seed=2),)]]
    before = snapshot(inputs, key=11, piece_elements=PIECE)
    assert inputs_unchanged(before, inputs) is None


def test_a_change_against_a_digest_reads_as_it_would_against_a_clone() -> None:
    original = _randn(9, 8, seed=3)
    changed = original.clone()
    changed[2, 7] = 0.0
    changed[8, 1] = -1.5
    clone_words = inputs_unchanged([7, original], [7, changed])
    before = snapshot([7, original], key=4, piece_elements=PIECE)
    digest_words = inputs_unchanged(before, [7, changed], lambda: [7, original.clone()])
    assert clone_words is not None
    assert digest_words == clone_words
    assert digest_words.startswith(
        "input 1 was modified in place: 2 of 72 elements differ bitwise (first at [2, 7]: "
    )


def test_without_originals_a_change_is_still_caught() -> None:
    x = _randn(5, 5, seed=5)
    before = snapshot([x], piece_elements=PIECE)
    x[4, 4] += 1.0
    assert inputs_unchanged(before, [x]) == (
        "input 0 was modified in place: its bits changed (its checksum differs; 25 elements)"
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda t: t.flip(0),  # a permutation keeps every value, only moves them
        lambda t: t.roll(1, dims=1),
        lambda t: torch.where(t == t.flatten()[0], -t, t),  # one sign bit
    ],
    ids=["flip", "roll", "sign"],
)
def test_moves_and_single_bits_change_the_digest(make: object) -> None:
    x = _randn(6, 4, seed=6)
    y = make(x)  # type: ignore[operator]
    assert not torch.equal(x, y)
    assert digest(x, 9, PIECE).value != digest(y, 9, PIECE).value


@pytest.mark.parametrize(
    "t",
    [
        torch.zeros(4),
        torch.tensor(2.5),
        _randn(3, 4, dtype=torch.bfloat16),
        torch.tensor([True, False, True]),
        torch.arange(-5, 5, dtype=torch.int8),
        torch.arange(12, dtype=torch.int64).reshape(3, 4) * 2**40,
        torch.complex(_randn(3), _randn(3, seed=1)),
        _randn(5, 6, seed=7).t(),  # not contiguous
    ],
    ids=["zeros", "scalar", "bf16", "bool", "int8", "int64", "complex", "transposed"],
)
def test_every_dtype_and_layout_keeps_its_digest_and_loses_it_on_any_change(
    t: torch.Tensor,
) -> None:
    before = snapshot([t], key=2, piece_elements=3)
    assert inputs_unchanged(before, [t]) is None
    changed = t.clone()
    flat = changed.view(-1) if changed.is_contiguous() else changed.reshape(-1)
    if t.dtype == torch.bool:
        flat[-1] = not bool(flat[-1])
    elif t.is_floating_point() and bool(flat[-1] == 0):
        flat[-1] = -0.0  # the same value, another bit
    else:
        flat[-1] = flat[-1] + 1
    if not changed.is_contiguous():
        changed = flat.reshape(t.shape)
    found = inputs_unchanged(before, [changed], lambda: [t])
    assert found is not None and "1 of" in found and "differ bitwise" in found


def test_a_repeat_is_judged_against_the_first_runs_digest() -> None:
    out = _randn(16, 16, seed=15)
    first = snapshot([out, 5], piece_elements=PIECE)
    assert identical(first, [out.clone(), 5]) is None
    rerun = out.clone()
    rerun[7, 9] = torch.nextafter(rerun[7, 9], torch.tensor(float("inf")))
    assert identical(first, [rerun, 5], lambda: [out, 5]) == identical([out, 5], [rerun, 5])
    assert identical(first, ["<str>", 5]) == "output 0 differs between runs: Tensor then str"
    assert identical(first, [out[:8], 5]) == (
        "output 0 differs between runs: shape (16, 16) then (8, 16)"
    )


# Doubles x[0, 1] in place while writing x + 1 to its output.
WRITER = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _plus_one(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n)
    tl.store(y_ptr + offs, x + 1.0, mask=offs < n)
    tl.store(x_ptr + offs, x * 2.0, mask=offs == 1)


class ModelNew(nn.Module):
    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, n = torch.empty_like(x), x.numel()
        _plus_one[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        return y
"""


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerClient]:
    env = clean_env({"TRITON_INTERPRET": "1"}, os.environ)
    client = WorkerClient(env, tmp_path, Limits())
    yield client
    client.close()


def test_the_worker_names_an_input_written_in_place_from_digests_of_small_pieces(
    worker: WorkerClient, tmp_path: Path
) -> None:
    candidate = tmp_path / "writer.py"
    candidate.write_text(WRITER)
    [problem] = load_problems(SOFTMAX)
    load = {
        "op": "load",
        "problem": problem_to_dict(problem),
        "path": str(candidate),
        "device": "cpu",
        "init_seed": 0,
        "piece_elements": 100,  # 16 x 4096 inputs: 656 pieces per digest
    }
    worker.request(load, "loading", STARTUP)
    run = {"op": "run", "shape": [], "dtype": "float32", "trial": {"seed": 3}, "repeat": 2}
    run["trial"]["distribution"] = "normal"
    header, blobs = worker.request(run, "running", STARTUP)
    assert len(blobs) == 1
    for report in header["runs"]:
        assert report["inputs_changed"].startswith(
            "input 0 was modified in place: 1 of 65536 elements differ bitwise (first at [0, 1]: "
        )
    assert header["repeat_diff"] is None  # the same inputs made again: the same outputs
