"""Tests for `harness.judge.wire`: tensors cross the channel bit for bit; bad metadata refused."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from kevolve.harness.judge.wire import Foreign, WireError, decode, encode

CPU = torch.device("cpu")
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.int64, torch.bool]
SHAPES = [(), (0,), (3, 0), (1,), (2, 3, 4)]


def sample(shape: tuple[int, ...], dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """A seeded tensor of any dtype."""
    gen = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=gen).bool()
    if dtype == torch.int64:
        return torch.randint(-(2**40), 2**40, shape, generator=gen)
    return torch.randn(shape, generator=gen).to(dtype)


def round_trip(values: list[object]) -> list[object]:
    metas, blobs = encode(values)
    return decode(metas, blobs, CPU)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_tensor_round_trips_exactly(dtype: torch.dtype, shape: tuple[int, ...]) -> None:
    x = sample(shape, dtype)
    [y] = round_trip([x])
    assert isinstance(y, torch.Tensor)
    assert (y.dtype, y.shape, y.device) == (x.dtype, x.shape, CPU)
    assert torch.equal(y, x)


def test_metadata_names_dtype_shape_and_device() -> None:
    metas, blobs = encode([sample((2, 3), torch.bfloat16)])
    assert metas == [{"kind": "tensor", "dtype": "bfloat16", "shape": [2, 3], "device": "cpu"}]
    assert [len(b) for b in blobs] == [12]


@pytest.mark.parametrize(
    "view",
    [
        lambda x: x[:, ::2],
        lambda x: x.t(),
        lambda x: x[1:, 2:5],
        lambda x: x[:, :1].expand(4, 6),
    ],
    ids=["strided", "transposed", "offset", "expanded"],
)
def test_non_contiguous_views_arrive_as_their_values(view: Any) -> None:
    x = view(sample((4, 6), torch.float32))
    assert not x.is_contiguous()
    [y] = round_trip([x])
    assert isinstance(y, torch.Tensor) and y.is_contiguous()
    assert torch.equal(y, x)


def test_non_tensors_become_foreign_and_keep_blobs_aligned() -> None:
    a, b = sample((2,), torch.float32, seed=1), sample((3,), torch.int64, seed=2)
    values = [a, 1.5, None, b, torch.zeros(2, dtype=torch.complex64), (a,)]
    metas, blobs = encode(values)
    assert len(blobs) == 2
    out = decode(metas, blobs, CPU)
    assert torch.equal(out[0], a) and torch.equal(out[3], b)
    foreign = [o for o in out if isinstance(o, Foreign)]
    assert [f.type_name for f in foreign] == ["float", "NoneType", "Tensor", "tuple"]
    assert repr(foreign[0]) == "<float>"


def test_metadata_that_is_not_a_dict_decodes_as_unknown_foreign() -> None:
    [value] = decode(["garbage"], [], CPU)
    assert isinstance(value, Foreign) and value.type_name == "?"


def meta(dtype: object = "float32", shape: object = (2,)) -> dict[str, Any]:
    """Tensor metadata as a peer might send it; tuples become the JSON lists they arrive as."""
    shape = list(shape) if isinstance(shape, tuple) else shape
    return {"kind": "tensor", "dtype": dtype, "shape": shape, "device": "cpu"}


@pytest.mark.parametrize(
    ("bad", "blob"),
    [
        pytest.param(meta(dtype="complex128"), b"\0" * 32, id="unknown-dtype"),
        pytest.param(meta(dtype="torch.float32"), b"\0" * 8, id="torch-prefixed-dtype"),
        pytest.param(meta(dtype=None), b"\0" * 8, id="no-dtype"),
        pytest.param(meta(shape=(-1, -8)), b"\0" * 32, id="negative-dims"),
        pytest.param(meta(shape=(2.0,)), b"\0" * 8, id="float-dim"),
        pytest.param(meta(shape="2"), b"\0" * 8, id="shape-not-a-list"),
        pytest.param(meta(), b"\0" * 7, id="bytes-short"),
        pytest.param(meta(), b"\0" * 9, id="bytes-long"),
        pytest.param(meta(shape=(2**62, 2**62)), b"\0" * 8, id="huge-shape"),
        pytest.param(meta(shape=(0,)), b"\0", id="bytes-for-empty"),
    ],
)
def test_decode_rejects_inconsistent_metadata(bad: dict[str, Any], blob: bytes) -> None:
    with pytest.raises(WireError):
        decode([bad], [blob], CPU)


def test_decode_rejects_a_tensor_without_its_blob() -> None:
    with pytest.raises(WireError, match="needs 8 bytes, got 0"):
        decode([meta(), meta()], [b"\0" * 8], CPU)


def test_a_blob_is_a_copy_the_tensor_can_no_longer_change() -> None:
    # The worker encodes a first run's outputs before the repeat runs; a candidate writing into
    # its earlier output must not change what was sent.
    x = sample((4, 8), torch.float32)
    sent = x.clone()
    metas, blobs = encode([x])
    x.fill_(7.0)
    [y] = decode(metas, blobs, CPU)
    assert torch.equal(y, sent)


def test_a_received_blob_becomes_the_tensor_and_any_other_is_copied() -> None:
    x = sample((3, 5), torch.float32)
    metas, [blob] = encode([x])
    received = bytearray(blob)
    [taken] = decode(metas, [received], CPU)
    received[:4] = b"\0\0\0\0"  # the channel's buffer, handed over: the tensor is its memory
    assert taken.flatten()[0].item() == 0.0  # type: ignore[union-attr]
    [copied] = decode(metas, [blob], CPU)
    assert torch.equal(copied, x)
    blob[:4] = b"\0\0\0\0"  # type: ignore[index]
    assert torch.equal(copied, x)
