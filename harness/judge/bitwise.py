"""Bitwise checks: inputs untouched by the candidate, and two runs that agree bit for bit.

What is kept of a tensor to check later is a `Digest` (its shape, dtype and a keyed hash of its
bits, computed on its device a piece at a time), not a clone: a clone of a 6 GiB input is 6 GiB
the candidate cannot use. Where a digest no longer matches, the caller's `originals` (the inputs
made again from their seed, the first run's outputs from the bytes already sent) say exactly
which elements changed, so a failure reads as it would against a clone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from kevolve.harness.judge.pieces import PIECE_ELEMENTS, Piece, first_true, pieces, unravel

_SAME_SIZE_INT = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
# A prime modulus: a change of 16-bit words by less than 2**16 is never a multiple of it, so with
# weights drawn uniformly below it a changed tensor keeps its hash with probability 1 / (2**31 - 1).
_PRIME = 2**31 - 1
Originals = Callable[[], Sequence[object]]


@dataclass(frozen=True)
class Digest:
    """What is kept of a tensor to tell later whether its bits changed."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    key: int
    value: int
    piece_elements: int


def digest(t: torch.Tensor, key: int = 0, piece_elements: int = PIECE_ELEMENTS) -> Digest:
    """The digest of tensor `t` under `key` (the seed of its random weights)."""
    return Digest(tuple(t.shape), t.dtype, key, _hash(t, key, piece_elements), piece_elements)


def snapshot(
    values: Sequence[object], key: int = 0, piece_elements: int = PIECE_ELEMENTS
) -> list[object]:
    """Digests of the tensors in `values` (also inside lists and tuples), to check later."""
    return [_keep(v, key, piece_elements) for v in values]


def inputs_unchanged(
    before: Sequence[object], after: Sequence[object], originals: Originals | None = None
) -> str | None:
    """None if every input is bitwise what it was before the candidate ran, else what changed.

    `before` holds digests (or clones); `originals` makes the inputs again, to name the elements
    that changed.
    """
    if len(before) != len(after):
        return f"input count changed from {len(before)} to {len(after)}"
    return _first_change("input", "was modified in place", before, after, originals)


def identical(
    first: Sequence[object], second: Sequence[object], originals: Originals | None = None
) -> str | None:
    """None if two runs gave bitwise-identical outputs (NaNs in the same places), else where not.

    `first` holds digests (or the tensors themselves); `originals` gives the first run's outputs.
    """
    if len(first) != len(second):
        return f"output count differs between runs: {len(first)} then {len(second)}"
    return _first_change("output", "differs between runs", first, second, originals)


def _keep(value: object, key: int, piece_elements: int) -> object:
    """A digest of a tensor, a list or tuple of what is kept, any other value as it is."""
    if isinstance(value, torch.Tensor):
        return digest(value, key, piece_elements)
    if type(value) is list:
        return [_keep(v, key, piece_elements) for v in value]
    if type(value) is tuple:
        return tuple(_keep(v, key, piece_elements) for v in value)
    return value


def _first_change(
    noun: str,
    verb: str,
    first: Sequence[object],
    second: Sequence[object],
    originals: Originals | None,
) -> str | None:
    """The first item that is not bitwise the same in both sequences, described, or None."""
    for i, (a, b) in enumerate(zip(first, second, strict=True)):
        found = _difference(a, b, _item(originals, i))
        if found is not None:
            where, how = found
            return f"{noun} {i}{where} {verb}: {how}"
    return None


def _item(originals: Originals | None, i: int) -> Callable[[], object] | None:
    """A getter of the original's item i (None where there are no originals)."""
    if originals is None:
        return None
    return lambda: list(originals())[i]


def _nested(original: Callable[[], object] | None, j: int) -> Callable[[], object] | None:
    """A getter of item j of the original list or tuple that `original` gives."""
    if original is None:
        return None
    return lambda: _index(original(), j)


def _index(value: object, j: int) -> object:
    return value[j] if isinstance(value, list | tuple) and j < len(value) else None


def _difference(
    a: object, b: object, original: Callable[[], object] | None
) -> tuple[str, str] | None:
    """Where (an index path such as "[1]", or "") and how `b` differs from `a`, or None."""
    if isinstance(a, Digest) and isinstance(b, torch.Tensor):
        how = _digest_difference(a, b, original)
        return None if how is None else ("", how)
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        how = _tensor_difference(a, b.to(a.device))
        return None if how is None else ("", how)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and type(a) is type(b):
        return _items_difference(a, b, original)
    if isinstance(a, Digest):
        return "", f"Tensor then {type(b).__name__}"
    if type(a) is not type(b):
        return "", f"{type(a).__name__} then {type(b).__name__}"
    return None if repr(a) == repr(b) else ("", f"{a!r:.60} then {b!r:.60}")


def _items_difference(
    a: Sequence[object], b: Sequence[object], original: Callable[[], object] | None
) -> tuple[str, str] | None:
    """The first difference between two lists or tuples, with its index path."""
    if len(a) != len(b):
        return "", f"length {len(a)} then {len(b)}"
    for j, (x, y) in enumerate(zip(a, b, strict=True)):
        found = _difference(x, y, _nested(original, j))
        if found is not None:
            return f"[{j}]{found[0]}", found[1]
    return None


def _digest_difference(
    kept: Digest, b: torch.Tensor, original: Callable[[], object] | None
) -> str | None:
    """How tensor `b` differs from the tensor `kept` digests, or None if its bits are the same."""
    if kept.shape != tuple(b.shape):
        return f"shape {kept.shape} then {tuple(b.shape)}"
    if kept.dtype != b.dtype:
        return f"dtype {kept.dtype} then {b.dtype}"
    if _hash(b, kept.key, kept.piece_elements) == kept.value:
        return None
    try:
        was = original() if original is not None else None
        how = _tensor_difference(was, b) if isinstance(was, torch.Tensor) else None
    except torch.OutOfMemoryError:  # no room to make the original again: say less
        how = None
    return how or f"its bits changed (its checksum differs; {b.numel()} elements)"


def _tensor_difference(a: torch.Tensor, b: torch.Tensor) -> str | None:
    """How tensor `b` differs from `a` in shape, dtype or bits, or None if bitwise equal."""
    if a.shape != b.shape:
        return f"shape {tuple(a.shape)} then {tuple(b.shape)}"
    if a.dtype != b.dtype:
        return f"dtype {a.dtype} then {b.dtype}"
    b = b.to(a.device)
    count, first = 0, -1
    for piece in pieces(a.shape, PIECE_ELEMENTS):
        changed = _changed(piece, a, b)
        found = int(changed.sum().item())
        if found and first < 0:
            first = piece.offset + first_true(changed, 1)[0]
        count += found
    if count == 0:
        return None
    at = unravel(first, a.shape)
    return (
        f"{count} of {a.numel()} elements differ bitwise "
        f"(first at {at}: {_element(a, at)!r} then {_element(b, at)!r})"
    )


def _changed(piece: Piece, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per element of the piece: whether its bits differ (real and imaginary parts together)."""
    changed = _bits(piece.flat(a)).ne(_bits(piece.flat(b)))
    return changed.any(dim=-1) if a.is_complex() else changed


def _hash(t: torch.Tensor, key: int, piece_elements: int) -> int:
    """Sum over 16-bit words w_i of w_i * m_i mod a prime, m_i drawn from `key` and the piece."""
    total = 0
    for n, piece in enumerate(pieces(t.shape, piece_elements)):
        bits = _bits(piece.flat(t)).contiguous().reshape(-1)
        if bits.element_size() == 1:
            words = bits.to(torch.int64).bitwise_and_(0xFF)
        else:
            words = bits.view(torch.int16).to(torch.int64).bitwise_and_(0xFFFF)
        generator = torch.Generator(device=t.device).manual_seed(key * 1_000_003 + n)
        weights = torch.randint(
            1, _PRIME, words.shape, generator=generator, device=t.device, dtype=torch.int64
        )
        total += int(weights.mul_(words).remainder_(_PRIME).sum().item())
    return total % _PRIME


def _bits(t: torch.Tensor) -> torch.Tensor:
    """Raw bits as same-width integers (NaN equals NaN, -0 != 0); complex gains a last dim of 2."""
    t = t.resolve_conj().resolve_neg()
    if t.is_complex():
        t = torch.view_as_real(t)
    return t.view(_SAME_SIZE_INT[t.element_size()])


def _element(t: torch.Tensor, at: list[int]) -> float | int | bool | complex:
    """The element of `t` at a multi-dimensional index, as a Python number."""
    value: float | int | bool | complex = t[tuple(at)].item()
    return value
