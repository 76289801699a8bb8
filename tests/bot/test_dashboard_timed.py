"""Timed searches on the dashboard (what a GPU search stores, written here through the search's own
store): the chart plots speedups with the best's share of the roofline limit, a node shows each
case against the current kernel, eager PyTorch and torch.compile, and the repos page sums a job's
result into speedups over each."""

from __future__ import annotations

import math
import os
import re
import select
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from kevolve.bot.dashboard.overview import overview
from kevolve.bot.storage import Job
from kevolve.harness.evaluation import (
    CaseCheck,
    CaseTiming,
    CompiledTiming,
    Evaluation,
    Timing,
    Verdict,
)
from kevolve.harness.profile import KernelProfile, Profile, Stall
from kevolve.harness.search.candidate import Candidate, candidate_id
from kevolve.harness.search.store import Store

ROOT = Path(__file__).resolve().parents[2]
SEED = (ROOT / "examples" / "demo" / "demo_kernels" / "softmax.py").read_text()
HARDWARE = "cuda:NVIDIA H100 80GB HBM3"


def _timing(ms: float) -> Timing:
    return Timing(n=100, median_ms=ms, q10_ms=ms * 0.98, q90_ms=ms * 1.02, min_ms=ms * 0.97)


def _timed(best_ms: float, compiled: bool) -> Evaluation:
    """A correct evaluation timed on two cases against a 2 ms current kernel and 3 ms eager."""
    cases = [
        CaseTiming(
            shape=shape,
            dtype="float16",
            candidate=_timing(best_ms),
            baseline=_timing(2.0),
            reference=_timing(3.0),
            speedup=2.0 / best_ms,
            speedup_ci=[2.0 / best_ms * 0.97, 2.0 / best_ms * 1.03],
            speedup_vs_reference=3.0 / best_ms,
            roofline_fraction=0.4 / best_ms,
            compiled=[CompiledTiming("default", _timing(2.5))] if compiled else [],
        )
        for shape in ([8192, 8192], [4096, 32000])
    ]
    return Evaluation(
        Verdict.CORRECT, "correct and timed", "softmax", "cuda", timed=True, timings=cases
    )


def _state(path: Path) -> tuple[Candidate, Candidate]:
    """A seed timed with torch.compile, and a child twice as fast, folded in one generation."""
    store = Store(path)
    store.bind({"problem": "softmax", "seed": 0, "hardware": HARDWARE})
    seed = Candidate(SEED)
    launch = "BLOCK=triton.next_power_of_2(n_cols),"
    child = Candidate(
        SEED.replace(launch, f"{launch} num_warps=8,"),
        (seed.id,),
        "tuner",
        0,
        1,
    )
    evaluations = [(seed, _timed(2.0, compiled=True)), (child, _timed(1.0, compiled=False))]
    history = []
    for n, (c, ev) in enumerate(evaluations, start=1):
        store.save_candidate(c)
        store.save_evaluation(c.id, HARDWARE, ev)
        score = 2.0 / ev.timings[0].candidate.median_ms
        history.append(
            {
                "evaluated": n,
                "candidate": c.id,
                "verdict": "correct",
                "score": score,
                "best_score": score,
            }
        )
    state = {
        "generation": 1, "evaluated": 2, "elapsed_s": 95.0, "history": history,
        "best": child.id, "database": {"islands": [[{"id": child.id, "score": 2.0}]]},
        "counts": {"correct": 2}, "tokens": 0, "cost_usd": 0.0,
    }  # fmt: skip
    store.save_checkpoint(1, state)
    kernel = KernelProfile(
        "_softmax_kernel", 812.0, dram_pct=91.0, sm_pct=30.0, occupancy_pct=80.0,
        stalls=(Stall("long_scoreboard", 3.2),),
    )  # fmt: skip
    store.save_profile(child.id, HARDWARE, Profile((8192, 8192), "float16", (kernel,), "ncu 2025"))
    store.close()
    return seed, child


def test_a_timed_search_shows_speedups_the_limit_and_each_case_against_pytorch(
    tmp_path: Path,
) -> None:
    _seed, child = _state(tmp_path / "softmax.sqlite")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEVOLVE_")}
    env["PYTHONPATH"] = str(ROOT)
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "ui", str(tmp_path), "--port", "0"]
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        found = re.search(r"(http://\S+/dashboard/)", proc.stdout.readline() if ready else "")
        assert found, "no address"
        page = httpx.get(f"{found[1]}search/softmax?node={child.id}", timeout=30).text
    finally:
        proc.terminate()
        proc.wait(30)
    assert 'id="untimed"' not in page
    assert ">speedup</text>" in page and 'class="limit"' in page  # the best's % of the limit
    assert '<span class="value" id="best"><a href="/dashboard/search/softmax?node=' in page
    assert "2.00×" in page  # the best's speedup
    timings = page.split('id="node-timings"')[1].split("</table>")[0]
    rows = re.findall(r"<tr><td>(\d+x\d+)</td>(.*?)</tr>", timings, re.S)
    assert [shape for shape, _ in rows] == ["8192x8192", "4096x32000"]
    cells = re.findall(r"<td>(.*?)</td>", rows[0][1], re.S)
    # dtype, this kernel, current kernel, eager, torch.compile (the seed's, borrowed), speedup...
    assert cells[1:4] == ["1 ms", "2 ms", "3 ms"]
    assert cells[4].startswith("2.5 ms") and "default" in cells[4]
    assert cells[5].startswith("2.00×") and cells[6] == "3.00×" and cells[7] == "40%"
    profile = page.split('id="node-profile"')[1].split("</table>")[0]
    assert "_softmax_kernel" in profile and "<td>memory</td>" in profile
    assert "waiting on global memory loads" in profile


def _stored(best: Evaluation, source: str) -> dict[str, Any]:
    """A finished job's stored result whose best, `source`, has the evaluation `best` (checked on
    one case), the current kernel timed with torch.compile as its baseline."""
    checks = [CaseCheck(shape=[8192, 8192], dtype="float16", trials=1, passed=True)]
    evaluation = replace(best, checks=checks).to_dict()
    return {
        "problem": "softmax",
        "device": "cuda",
        "timed": True,
        "evaluated": 2,
        "best": {"id": candidate_id(source), "proposer": "llm", "source": source,
                 "evaluation": evaluation},
        "baseline": _timed(2.0, compiled=True).to_dict(),
    }  # fmt: skip


def test_the_repos_page_sums_a_job_result_into_speedups_over_the_kernel_eager_and_compile() -> None:
    result = _stored(_timed(1.0, compiled=False), SEED + "# tuned\n")
    earlier = _stored(_timed(1.6, compiled=False), SEED + "# first\n")
    proposals = [
        {
            "op": "softmax",
            "status": "opened",
            "pr": 7,
            "url": "https://github.com/acme/kernels/pull/7",
        }
    ]
    now = datetime(2026, 12, 1, tzinfo=UTC)
    jobs = [
        Job(1, "acme/kernels", "a" * 40, "softmax", "h100", "push", 50, "done", now, None,
            {"results": {"softmax": earlier}, "proposals": []}),
        Job(2, "acme/kernels", "b" * 40, "softmax", "h100", "schedule", 50, "done", now, None,
            {"results": {"softmax": result}, "proposals": proposals}),
        Job(3, "acme/kernels", "c" * 40, "softmax", "h100", "push", 50, "running", now, None, None),
    ]  # fmt: skip
    [row] = overview(jobs)
    [cell] = row.cells
    assert (row.active, row.failed) == (1, 0)
    assert cell.newest.id == 3 and cell.result_job is not None and cell.result_job.id == 2
    assert cell.timed and math.isclose(cell.speedup or 0, 2.0)
    assert math.isclose(cell.vs_eager or 0, 3.0) and math.isclose(cell.vs_compile or 0, 2.5)
    assert [round(v, 3) for v in cell.trend] == [1.25, 2.0]
    assert cell.pull is not None and (cell.pull.number, cell.pull.status) == (7, "opened")
    assert cell.gate == "proposed as PR #7"
    assert [(c.shape, c.best_ms, c.current_ms, c.eager_ms, c.compile_ms) for c in cell.cases] == [
        ((8192, 8192), 1.0, 2.0, 3.0, 2.5),
        ((4096, 32000), 1.0, 2.0, 3.0, 2.5),
    ]
