"""harness.judge.bitwise at its edges: the cases mutation testing showed no other test pinned
(digests inside lists and tuples, originals of another structure, changes of kind, length and
shape, complex elements, a change in a later piece)."""

from __future__ import annotations

import struct

import pytest
import torch
from kevolve.harness.judge.bitwise import Digest, digest, identical, inputs_unchanged, snapshot
from kevolve.harness.judge.pieces import PIECE_ELEMENTS


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_a_snapshot_keeps_each_tensors_digest_under_the_key_and_piece_size_given() -> None:
    t = _randn(4, 5)
    assert snapshot([t]) == [digest(t)]
    assert digest(t).key == 0
    assert snapshot([t], key=3, piece_elements=5) == [digest(t, 3, 5)]


def test_tensors_inside_lists_and_tuples_are_kept_as_digests_and_their_changes_named() -> None:
    x, y = _randn(3, 4, seed=1), _randn(5, seed=2)
    inputs: list[object] = [[x, 7], (y,), "mode"]
    before = snapshot(inputs, key=5, piece_elements=4)
    assert isinstance(before[0], list) and isinstance(before[0][0], Digest)
    assert isinstance(before[1], tuple) and isinstance(before[1][0], Digest)
    assert (before[0][1], before[2]) == (7, "mode")
    x0, y0 = x.clone(), y.clone()
    made: list[object] = [[x0, 7], (y0,), "mode"]  # the inputs made again from their seed
    x[2, 1] = 0.5
    assert inputs_unchanged(before, inputs, lambda: made) == (
        f"input 0[0] was modified in place: 1 of 12 elements differ bitwise (first at [2, 1]: "
        f"{x0[2, 1].item()!r} then 0.5)"
    )
    x.copy_(x0)
    y[4] = -1.0
    found = inputs_unchanged(before, inputs, lambda: made)
    assert found is not None
    assert found.startswith("input 1[0] was modified in place: 1 of 5 elements differ bitwise")


@pytest.mark.parametrize(
    "made",
    [[[]], [5], [(7,)]],
    ids=["shorter", "not_a_list", "not_a_tensor"],
)
def test_originals_of_another_structure_leave_the_checksum_words(made: list[object]) -> None:
    x = _randn(6, seed=3)
    before = snapshot([[x]], piece_elements=4)
    x[0] += 1.0
    assert inputs_unchanged(before, [[x]], lambda: made) == (
        "input 0[0] was modified in place: its bits changed (its checksum differs; 6 elements)"
    )


def test_a_change_of_kind_length_or_shape_is_named_at_its_path() -> None:
    t = _randn(2, 3, seed=4)
    cases: list[tuple[object, object, str]] = [
        (t.clone(), 5, "Tensor then int"),
        ([1, 2], (1, 2), "list then tuple"),
        (3, "3", "int then str"),
        (3, 4, "3 then 4"),
        ([1, 2], [1], "length 2 then 1"),
        (t.clone(), t.reshape(3, 2), "shape (2, 3) then (3, 2)"),
    ]
    for was, now, how in cases:
        assert inputs_unchanged([was], [now]) == f"input 0 was modified in place: {how}"
        assert inputs_unchanged([[0, was]], [[0, now]]) == (
            f"input 0[1] was modified in place: {how}"
        )
    assert identical([[1, [2, 3]]], [[1, [2]]]) == (
        "output 0[1] differs between runs: length 2 then 1"
    )


def _documented_hash(values: list[float], key: int, piece_elements: int) -> int:
    """The digest of a 1-D float32 tensor as bitwise.py's docstring defines it: the sum over its
    16-bit words w_i (little-endian, piece by piece) of w_i * m_i mod 2**31 - 1, the weights m_i
    drawn uniformly in [1, 2**31 - 1) from seed key * 1_000_003 + the piece's number."""
    prime = 2**31 - 1
    total = 0
    for n, start in enumerate(range(0, len(values), piece_elements)):
        chunk = values[start : start + piece_elements]
        words = struct.unpack(f"<{2 * len(chunk)}H", struct.pack(f"<{len(chunk)}f", *chunk))
        generator = torch.Generator().manual_seed(key * 1_000_003 + n)
        weights = torch.randint(1, prime, (len(words),), generator=generator, dtype=torch.int64)
        total += sum(w * m % prime for w, m in zip(words, weights.tolist(), strict=True))
    return total % prime


def test_the_digest_is_the_documented_weighted_sum_of_16_bit_words() -> None:
    """Weights are never 0, so a change to any one word always moves the sum."""
    t = torch.tensor([1.0, -2.5, 0.0, -0.0, 3.1e-5, -7.25e9, 1.5], dtype=torch.float32)
    for key, piece_elements in ((0, 7), (4, 3), (9, 1)):
        expected = _documented_hash(t.tolist(), key, piece_elements)
        assert digest(t, key, piece_elements).value == expected
    assert digest(torch.zeros(5), 2, 2).value == 0


def test_each_changed_complex_element_counts_once() -> None:
    z = torch.complex(_randn(3, seed=5), _randn(3, seed=6))
    changed = z.clone()
    changed[0] += 1.0  # the real parts of two elements
    changed[2] += 1.0
    found = inputs_unchanged([z], [changed])
    assert found is not None
    assert found.startswith(
        "input 0 was modified in place: 2 of 3 elements differ bitwise (first at [0]: "
    )


def test_changes_in_two_pieces_are_counted_and_the_first_named() -> None:
    """A tensor past one piece of PIECE_ELEMENTS: a change in each piece, the first at 0."""
    a = torch.zeros(PIECE_ELEMENTS + 2, dtype=torch.int8)
    b = a.clone()
    b[0], b[-1] = 1, 2
    assert inputs_unchanged([a], [b]) == (
        f"input 0 was modified in place: 2 of {PIECE_ELEMENTS + 2} elements differ bitwise "
        "(first at [0]: 0 then 1)"
    )
