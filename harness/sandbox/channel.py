"""Framed messages between the judge and an evaluation worker: a JSON header plus raw blobs.

The worker side runs untrusted code, so the reader bounds every size and trusts nothing it
parses: a frame is a length-prefixed JSON header listing blob sizes, then the blobs. Blobs are
written from the sender's buffers and read into one buffer each, copied nowhere else: at
KernelBench's sizes a blob is a 6 GiB tensor, and every extra copy of it costs seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import struct
from collections.abc import Sequence
from typing import IO, Any

_LENGTH = struct.Struct("<Q")
MAX_HEADER_BYTES = 16 * 2**20
MAX_FRAME_BYTES = 16 * 2**30
# Bytes-like blobs: what `send` writes (a tensor's memory through a memoryview, say).
Blob = bytes | bytearray | memoryview
# Linux's largest pipe buffer for an unprivileged user (/proc/sys/fs/pipe-max-size's default).
PIPE_BYTES = 2**20


class ChannelClosed(Exception):
    """The other end closed the channel (for a worker: it exited or died)."""


class ChannelCorrupt(Exception):
    """The bytes on the channel are not a well-formed frame."""


def widen(fd: int) -> None:
    """Give the pipe `fd` a 1 MiB buffer where the system allows (it keeps 64 KiB otherwise): a
    blob then crosses in 1 MiB pieces, not 64 KiB ones, with 16x fewer switches between writer
    and reader (a 512 MiB blob between two processes: 0.45 -> 0.7 GB/s on a 2-core machine)."""
    # A user's pipes share 64 MiB past the default (/proc/sys/fs/pipe-user-pages-soft): room
    # for 64 judges' workers at once; past it this is refused and the pipe stays as it was.
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def send(stream: IO[bytes], header: dict[str, Any], blobs: Sequence[Blob] | None = None) -> None:
    """Write one frame and flush it."""
    blobs = blobs or []
    head = json.dumps({**header, "_blobs": [memoryview(b).nbytes for b in blobs]}).encode()
    stream.write(_LENGTH.pack(len(head)))
    stream.write(head)
    for blob in blobs:
        stream.write(blob)
    stream.flush()


def recv(stream: IO[bytes]) -> tuple[dict[str, Any], list[bytearray]]:
    """Read one frame; raises `ChannelClosed` at end of stream, `ChannelCorrupt` on garbage."""
    size = _LENGTH.unpack(_read_exact(stream, _LENGTH.size, allow_eof=True))[0]
    if size > MAX_HEADER_BYTES:
        raise ChannelCorrupt(f"frame header of {size} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        header = json.loads(_read_exact(stream, size))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ChannelCorrupt(f"frame header is not JSON: {exc}") from exc
    sizes = header.pop("_blobs", None) if isinstance(header, dict) else None
    if not isinstance(sizes, list) or not all(type(n) is int and n >= 0 for n in sizes):
        raise ChannelCorrupt("frame header lacks a valid blob list")
    if sum(sizes) > MAX_FRAME_BYTES:
        raise ChannelCorrupt(f"frame of {sum(sizes)} bytes exceeds {MAX_FRAME_BYTES}")
    return header, [_read_blob(stream, n) for n in sizes]


def _read_exact(stream: IO[bytes], n: int, allow_eof: bool = False) -> bytes:
    """Exactly n bytes from the stream."""
    chunks: list[bytes] = []
    remaining = n
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            if allow_eof and remaining == n:
                raise ChannelClosed("the other end closed the channel")
            raise ChannelCorrupt(f"stream ended {remaining} bytes short of a frame")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _read_blob(stream: IO[bytes], n: int) -> bytearray:
    """Exactly n bytes from the stream, read straight into the buffer returned."""
    blob = bytearray(n)
    view = memoryview(blob)
    done = 0
    while done < n:
        got = stream.readinto(view[done:])  # type: ignore[attr-defined]
        if not got:
            raise ChannelCorrupt(f"stream ended {n - done} bytes short of a frame")
        done += got
    return blob
