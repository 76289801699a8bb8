"""Tests for `harness.sandbox.channel`: frames survive a pipe; garbage and truncation refused."""

from __future__ import annotations

import fcntl
import io
import os
import struct
from pathlib import Path

import pytest
from kevolve.harness.sandbox import channel
from kevolve.harness.sandbox.channel import ChannelClosed, ChannelCorrupt, recv, send


def raw_frame(head: bytes, body: bytes = b"") -> io.BytesIO:
    """A stream holding one hand-built frame: 8-byte little-endian header length, header, body."""
    return io.BytesIO(struct.pack("<Q", len(head)) + head + body)


def test_frames_round_trip_over_a_pipe_then_eof_closes() -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as reader, os.fdopen(write_fd, "wb") as writer:
        header = {"op": "run", "shape": [3, 17], "nested": {"ok": True, "text": "ü"}}
        blobs = [b"abc", b"", bytes(range(256)) * 4, b"\x00"]
        send(writer, header, blobs)
        send(writer, {"op": "kernels"})
        writer.close()
        assert recv(reader) == (header, blobs)
        assert recv(reader) == ({"op": "kernels"}, [])
        with pytest.raises(ChannelClosed):
            recv(reader)
    assert "_blobs" not in header  # send leaves the caller's header alone


def test_blobs_go_out_from_any_buffer_and_arrive_as_bytearrays() -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as reader, os.fdopen(write_fd, "wb") as writer:
        words = memoryview(bytearray(range(16))).cast("I")  # 4 items of 4 bytes: 16 bytes
        send(writer, {"op": "run"}, [words, bytearray(b"xy")])
        writer.close()
        _, blobs = recv(reader)
    assert blobs == [bytes(range(16)), b"xy"]
    assert all(type(b) is bytearray for b in blobs)


def test_eof_inside_the_length_prefix_is_corrupt_not_closed() -> None:
    with pytest.raises(ChannelCorrupt, match="5 bytes short"):
        recv(io.BytesIO(b"\x01\x02\x03"))


@pytest.mark.parametrize(
    "data",
    [
        struct.pack("<Q", 40) + b'{"_blobs": []}',  # header cut short
        struct.pack("<Q", 18) + b'{"_blobs": [4, 2]}' + b"abcdx",  # second blob cut short
    ],
    ids=["header", "blob"],
)
def test_truncated_frame_is_corrupt(data: bytes) -> None:
    with pytest.raises(ChannelCorrupt, match="short of a frame"):
        recv(io.BytesIO(data))


@pytest.mark.parametrize("head", [b"not json", b"{'single': 1}", b"\x80\x81\x82"])
def test_header_that_is_not_json_is_corrupt(head: bytes) -> None:
    with pytest.raises(ChannelCorrupt, match="not JSON"):
        recv(raw_frame(head))


def test_header_length_above_the_cap_is_refused_before_reading_it() -> None:
    stream = io.BytesIO(struct.pack("<Q", channel.MAX_HEADER_BYTES + 1))
    with pytest.raises(ChannelCorrupt, match="exceeds"):
        recv(stream)


@pytest.mark.parametrize(
    "head",
    [b'{"_blobs": [-1]}', b'{"_blobs": [1.5]}', b'{"_blobs": ["3"]}', b'{"_blobs": 3}', b"[1, 2]"],
    ids=["negative", "float", "string", "not-a-list", "header-not-an-object"],
)
def test_invalid_blob_list_is_corrupt(head: bytes) -> None:
    with pytest.raises(ChannelCorrupt, match="blob list"):
        recv(raw_frame(head, b"xyz"))


def test_missing_blob_list_is_corrupt() -> None:
    with pytest.raises(ChannelCorrupt, match="blob list"):
        recv(raw_frame(b'{"op": "run"}'))


def test_frame_total_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channel, "MAX_FRAME_BYTES", 10)
    assert recv(raw_frame(b'{"_blobs": [5, 5]}', b"0123456789")) == ({}, [b"01234", b"56789"])
    with pytest.raises(ChannelCorrupt, match="exceeds 10"):
        recv(raw_frame(b'{"_blobs": [5, 6]}', b"0123456789a"))


def test_a_widened_pipe_holds_a_mebibyte_and_a_file_is_left_as_it_is(tmp_path: Path) -> None:
    """A blob crosses a widened pipe in 1 MiB pieces; widening what is not a pipe is no error."""
    read_fd, write_fd = os.pipe()
    try:
        before = fcntl.fcntl(read_fd, fcntl.F_GETPIPE_SZ)
        channel.widen(read_fd)
        assert (before, fcntl.fcntl(write_fd, fcntl.F_GETPIPE_SZ)) == (
            64 * 1024,
            channel.PIPE_BYTES,
        )
        os.write(write_fd, b"x" * channel.PIPE_BYTES)  # would block on 64 KiB
    finally:
        os.close(read_fd)
        os.close(write_fd)
    with open(tmp_path / "file", "wb") as file:
        channel.widen(file.fileno())
