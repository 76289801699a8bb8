"""Bitwise checks: inputs untouched by the candidate, and two runs that agree bit for bit."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from kevolve.harness.judge.compare import element, first_indices

_SAME_SIZE_INT = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def snapshot(values: Sequence[object]) -> list[object]:
    """Bitwise copies of the tensors in `values` (also inside lists and tuples), to check later."""
    return [_copy(v) for v in values]


def inputs_unchanged(before: Sequence[object], after: Sequence[object]) -> str | None:
    """None if every input is bitwise what it was before the candidate ran, else what changed."""
    if len(before) != len(after):
        return f"input count changed from {len(before)} to {len(after)}"
    return _first_change("input", "was modified in place", before, after)


def identical(first: Sequence[object], second: Sequence[object]) -> str | None:
    """None if two runs gave bitwise-identical outputs (NaNs in the same places), else where not."""
    if len(first) != len(second):
        return f"output count differs between runs: {len(first)} then {len(second)}"
    return _first_change("output", "differs between runs", first, second)


def _copy(value: object) -> object:
    """A clone of a tensor, a list or tuple of copies, any other value as it is."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if type(value) is list:
        return [_copy(v) for v in value]
    if type(value) is tuple:
        return tuple(_copy(v) for v in value)
    return value


def _first_change(
    noun: str, verb: str, first: Sequence[object], second: Sequence[object]
) -> str | None:
    """The first item that is not bitwise the same in both sequences, described, or None."""
    for i, (a, b) in enumerate(zip(first, second, strict=True)):
        found = _difference(a, b)
        if found is not None:
            where, how = found
            return f"{noun} {i}{where} {verb}: {how}"
    return None


def _difference(a: object, b: object) -> tuple[str, str] | None:
    """Where (an index path such as "[1]", or "") and how `b` differs from `a`, or None."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        how = _tensor_difference(a, b.to(a.device))
        return None if how is None else ("", how)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and type(a) is type(b):
        return _items_difference(a, b)
    if type(a) is not type(b):
        return "", f"{type(a).__name__} then {type(b).__name__}"
    return None if repr(a) == repr(b) else ("", f"{a!r:.60} then {b!r:.60}")


def _items_difference(a: Sequence[object], b: Sequence[object]) -> tuple[str, str] | None:
    """The first difference between two lists or tuples, with its index path."""
    if len(a) != len(b):
        return "", f"length {len(a)} then {len(b)}"
    for j, (x, y) in enumerate(zip(a, b, strict=True)):
        found = _difference(x, y)
        if found is not None:
            return f"[{j}]{found[0]}", found[1]
    return None


def _tensor_difference(a: torch.Tensor, b: torch.Tensor) -> str | None:
    """How tensor `b` differs from `a` in shape, dtype or bits, or None if bitwise equal."""
    if a.shape != b.shape:
        return f"shape {tuple(a.shape)} then {tuple(b.shape)}"
    if a.dtype != b.dtype:
        return f"dtype {a.dtype} then {b.dtype}"
    changed = _bits(a).ne(_bits(b))
    if a.is_complex():
        changed = changed.any(dim=-1)  # real and imaginary parts, back to the shape of `a`
    count = int(changed.sum().item())
    if count == 0:
        return None
    at = first_indices(changed, 1)[0]
    return (
        f"{count} of {a.numel()} elements differ bitwise "
        f"(first at {at}: {element(a, at)!r} then {element(b, at)!r})"
    )


def _bits(t: torch.Tensor) -> torch.Tensor:
    """Raw bits as same-width integers (NaN equals NaN, -0 != 0); complex gains a last dim of 2."""
    t = t.resolve_conj().resolve_neg()
    if t.is_complex():
        t = torch.view_as_real(t)
    return t.view(_SAME_SIZE_INT[t.element_size()])
