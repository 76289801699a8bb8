"""Tests of harness.judge.footprint: the memory a case needs, from sizes alone, and the verdict's
words for a case that cannot fit."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from kevolve.harness.judge.footprint import (
    COMPARE_WORK,
    DIGEST_WORK,
    GIB,
    Capacity,
    Footprint,
    Part,
    footprint,
    host_available,
    misfit,
)


def _meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device="meta")


def _log_softmax(rows: int, timed: bool = False) -> Footprint:
    x = _meta(rows, 1024)  # 4 KiB a row
    return footprint([x], [_meta(rows, 1024)], timed, chunk_bytes=GIB, timing_bytes=GIB)


def test_sizes_that_grow_with_the_rows_are_counted_per_row() -> None:
    x, w = _meta(100, 256, dtype=torch.bfloat16), _meta(256, 256)
    fp = footprint([x, w, 3], [_meta(100, 256, dtype=torch.bfloat16)], False, GIB, GIB)
    assert fp.rows == 100
    assert fp.inputs == Part(fixed=256 * 256 * 4, per_row=256 * 2)
    assert fp.inputs32 == Part(fixed=256 * 256 * 4, per_row=256 * 4)  # float32 clones
    assert fp.outputs == Part(0, 256 * 2) and fp.outputs32 == Part(0, 256 * 4)


def test_the_judge_and_the_worker_peaks_follow_what_each_holds() -> None:
    fp = _log_softmax(1000)
    i = o = 1000 * 4096  # inputs, outputs; float32 already, so their float32 copies are as large
    chunk = 2 * min(GIB, 8 * (i + o)) + COMPARE_WORK
    assert fp.judge(1000) == i + o + max(i, i + o, o + chunk)
    assert fp.worker(1000) == i + o + DIGEST_WORK
    timed = _log_softmax(1000, timed=True)
    assert timed.worker(1000) == max(i + o + DIGEST_WORK, max(i, min(GIB, 10 * i)) + 2 * o)
    assert timed.judge(1000) >= fp.judge(1000)


def test_a_case_that_fits_gets_no_verdict() -> None:
    assert misfit(_log_softmax(1000), Capacity(64 * GIB, None, "the host")) is None


def test_a_case_too_large_names_what_it_needs_and_the_largest_size_that_fits() -> None:
    fp = _log_softmax(2_000_000)  # 7.6 GiB a tensor
    cap = Capacity(20 * GIB, None, "the 20.0 GiB this host has available")
    words = misfit(fp, cap)
    assert words is not None
    found = re.search(r"fits has (\d+) of its 2000000 rows", words)
    assert found is not None
    fits = int(found.group(1))

    def need(rows: int) -> int:
        return fp.judge(rows) + fp.worker(rows)

    assert need(fits) <= cap.total < need(fits + 1)  # the largest, not merely one that fits
    assert words == (
        f"does not fit: judging it needs about {need(2_000_000) / GIB:.1f} GiB at once (inputs "
        "7.6 GiB, outputs 7.6 GiB, with the judge's float32 reference, the outputs copied back "
        "and the worker's own), more than the 20.0 GiB this host has available; the largest "
        f"size that fits has {fits} of its 2000000 rows along the leading dimension (about "
        f"{need(fits) / GIB:.1f} GiB): make the leading dimension at most {fits}"
    )


def test_a_worker_beyond_its_share_is_named_as_such() -> None:
    fp = _log_softmax(2_000_000)
    cap = Capacity(200 * GIB, 10 * GIB, "the 210.0 GiB of this GPU")
    words = misfit(fp, cap)
    assert words is not None
    worker = fp.worker(2_000_000) / GIB
    assert f"the worker alone needs about {worker:.1f} GiB, more than its share (10.0 GiB)" in words
    assert "the largest size that fits has " in words


def test_a_case_whose_fixed_part_cannot_fit_says_no_size_fits() -> None:
    weights = _meta(40000, 40000)  # 6 GiB whatever the rows
    fp = footprint([_meta(8, 16), weights], [_meta(8, 16)], False, GIB, GIB)
    words = misfit(fp, Capacity(4 * GIB, None, "the 4.0 GiB this host has available"))
    assert words is not None
    assert words.endswith("no size of it fits: even one row of its leading dimension is too much")


def test_outputs_the_reference_cannot_say_are_taken_as_large_as_the_largest_input() -> None:
    fp = footprint([_meta(10, 4), _meta(10, 100)], None, False, GIB, GIB)
    assert fp.outputs == Part(0, 400)


def test_host_memory_is_read_from_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       32000000 kB\nMemAvailable:   1536 kB\n")
    assert host_available(meminfo) == 1536 * 1024
    assert host_available(tmp_path / "missing") > 0  # free pages, where there is no meminfo
