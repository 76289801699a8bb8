"""One hanging candidate among 16 evaluations in flight: does anyone wait on it?

Judges `--total` candidates for the demo softmax (default 32, one production shape and dtype),
`--parallel` at a time (default 16), all sharing one GPU and its lock, as a search does. One of
them, submitted once the others fill every slot (`--hang-at`), launches a kernel that spins on a
flag nobody sets: a hang on the GPU. The rest are correct kernels (the demo's and two corpus
solutions, each made a distinct source).

Two records of the waits, each written to `--out` as results come in (one JSON file, rewritten):

- per evaluation, from its phases: every wait for a hold (`check_wait`, `prepare_wait`, `wait` for
  the timing hold, `recheck_wait`, each with its longest single wait `*_max`), its verdict and
  notes, and when it started and ended;
- from /proc/locks, sampled every 10 ms: each stretch in which the hang's judge held the GPU
  shared while a timer stood blocked on the lock waiting for readers to leave. The longest such
  stretch is the longest any evaluation waited because of the hang (target: 5 s or less).

    python3 bench/scale/hangs.py --out hangs.json [--total 32] [--parallel 16] [--hang-at 16]
        [--dtype bfloat16] [--shape 8192x8192] [--timeout 120] [--minutes 3.5]

Runs on a GPU host with kevolve (and torch, triton) installed; about 3 minutes on an H100.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kevolve.harness.evaluate import CompileArm, EvalOptions, HarnessError, evaluate
from kevolve.harness.evaluation import Evaluation
from kevolve.harness.spec.load import load_problems, narrow, select
from kevolve.harness.spec.problem import Problem

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"
LEGIT = (
    DEMO / "demo_kernels" / "softmax.py",
    ROOT / "tests" / "corpus" / "softmax" / "good_online.py",
    ROOT / "tests" / "corpus" / "softmax" / "good_from_import.py",
)
MARKER = "kevolve-bench-hang"  # in the hang's source: how the lock watch knows its judge
TARGET_S = 5.0
SAMPLE_S = 0.01
HANG = f'''"""A softmax whose kernel first waits for a flag that nobody sets ({MARKER})."""

import torch
import triton
import triton.language as tl


@triton.jit
def _softmax_kernel(x_ptr, y_ptr, flag_ptr, x_row_stride, y_row_stride, n_cols,
                    BLOCK: tl.constexpr):
    spins = 0
    while tl.load(flag_ptr, volatile=True) == 0:
        spins += 1
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * x_row_stride + cols, mask=mask, other=-float("inf"))
    x = x.to(tl.float32) + spins * 0.0
    num = tl.exp(x - tl.max(x, axis=0))
    y = num / tl.sum(num, axis=0)
    tl.store(y_ptr + row * y_row_stride + cols, y.to(y_ptr.dtype.element_ty), mask=mask)


def softmax(x: torch.Tensor) -> torch.Tensor:
    n_rows, n_cols = x.shape
    y = torch.empty_like(x)
    flag = torch.zeros(1, dtype=torch.int32, device=x.device)
    _softmax_kernel[(n_rows,)](x, y, flag, x.stride(0), y.stride(0), n_cols,
                               BLOCK=triton.next_power_of_2(n_cols))
    return y
'''

WAITS = ("check_wait", "prepare_wait", "wait", "recheck_wait")


@dataclass
class Stretch:
    """A time the hang's judge held the GPU while a timer waited for it."""

    start: float
    end: float
    timers: set[int] = field(default_factory=set)

    def to_dict(self, origin: float) -> dict[str, Any]:
        return {
            "start_s": round(self.start - origin, 3),
            "seconds": round(self.end - self.start, 3),
            "timers": len(self.timers),
        }


class LockWatch:
    """Samples /proc/locks for the GPU locks under a cache dir: who holds, who waits."""

    def __init__(self, cache: Path, origin: float) -> None:
        self.cache = cache
        self.origin = origin
        self.stretches: list[Stretch] = []
        self.hang_pids: set[int] = set()
        self.samples = 0
        self._known: dict[int, bool] = {}
        self._open: Stretch | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._close(time.monotonic())

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample(time.monotonic())
            self.samples += 1
            time.sleep(SAMPLE_S)

    def _sample(self, now: float) -> None:
        """One look: a stretch is open while the hang holds the lock and a timer waits on it."""
        inodes = self._lock_inodes()
        holders: set[int] = set()
        timers: set[int] = set()
        for pid, mode, blocked, inode in _flocks():
            if inode not in inodes:
                continue
            if blocked and mode == "WRITE":
                timers.add(pid)
            elif not blocked and mode == "READ":
                holders.add(pid)
        hang = {pid for pid in holders if self._is_hang(pid)}
        self.hang_pids |= hang
        if hang and timers:
            if self._open is None:
                self._open = Stretch(now, now)
                self.stretches.append(self._open)
            self._open.end = now
            self._open.timers |= timers
        else:
            self._close(now)

    def _close(self, now: float) -> None:
        if self._open is not None:
            self._open.end = now
            self._open = None

    def _lock_inodes(self) -> set[int]:
        inodes = set()
        for path in self.cache.glob("gpu-*.lock"):
            try:
                inodes.add(path.stat().st_ino)
            except OSError:
                continue
        return inodes

    def _is_hang(self, pid: int) -> bool:
        """Whether `pid` is the hang's judge: its scratch dir holds the hang's source."""
        if pid not in self._known:
            try:
                cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
                self._known[pid] = MARKER in (cwd / "candidate" / "candidate.py").read_text()
            except OSError:
                return False
        return self._known[pid]


def _flocks() -> list[tuple[int, str, bool, int]]:
    """(pid, READ or WRITE, blocked, inode) of every flock on the machine."""
    found: list[tuple[int, str, bool, int]] = []
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        blocked = len(fields) > 1 and fields[1] == "->"
        rest = fields[2:] if blocked else fields[1:]
        if len(rest) >= 5 and rest[0] == "FLOCK":
            found.append((int(rest[3]), rest[2], blocked, int(rest[4].split(":")[-1])))
    return found


def sources(total: int, hang_at: int) -> list[tuple[str, str]]:
    """(name, source) of every candidate: distinct correct ones, the hang at `hang_at`."""
    out = []
    for i in range(total):
        if i == hang_at:
            out.append(("hang", HANG))
            continue
        path = LEGIT[i % len(LEGIT)]
        out.append((f"{path.stem}-{i}", path.read_text() + f"\n# bench candidate {i}\n"))
    return out


def record(
    name: str, ev: Evaluation, started: float, ended: float, origin: float
) -> dict[str, Any]:
    """What the bench keeps of one evaluation."""
    waits = {k: ev.phases.get(k, 0.0) for w in WAITS for k in (w, f"{w}_max")}
    return {
        "name": name,
        "verdict": ev.verdict.value,
        "reason": ev.reason[:400],
        "start_s": round(started - origin, 3),
        "end_s": round(ended - origin, 3),
        "waits": waits,
        "longest_wait_s": max(ev.phases.get(f"{w}_max", 0.0) for w in WAITS),
        "preempted_s": ev.phases.get("preempted", 0.0),
        "phases": ev.phases,
        "notes": [n for n in ev.notes if "GPU" in n or "ahead" in n],
    }


def summary(results: list[dict[str, Any]], watch: LockWatch) -> dict[str, Any]:
    """The figures the target is read from."""
    legit = [r for r in results if r["name"] != "hang"]
    hang = next((r for r in results if r["name"] == "hang"), None)
    longest = max((s.end - s.start for s in watch.stretches), default=0.0)
    return {
        "finished": len(results),
        "correct": sum(r["verdict"] == "correct" for r in legit),
        "hang_verdict": hang and hang["verdict"],
        "hang_reason": hang and hang["reason"],
        "hang_yields": hang and hang["notes"],
        "longest_wait_on_hang_s": round(longest, 3),
        "waits_on_hang": [s.to_dict(watch.origin) for s in watch.stretches],
        "longest_wait_of_any_s": max((r["longest_wait_s"] for r in legit), default=0.0),
        "target_s": TARGET_S,
        "target_met": longest <= TARGET_S,
        "lock_samples": watch.samples,
        "hang_judges_seen": len(watch.hang_pids),
    }


def write(out: Path, report: dict[str, Any]) -> None:
    """Replace `out` with `report` in one step, so a reader never sees half a file."""
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=2))
    tmp.replace(out)


def judge_all(args: argparse.Namespace, problem: Problem, options: EvalOptions, out: Path) -> None:
    """Judge every candidate, `--parallel` at a time, rewriting `out` as each finishes."""
    origin = time.monotonic()
    watch = LockWatch(options.cache_dir or Path("."), origin)
    report: dict[str, Any] = {"setup": setup(args), "evaluations": [], "summary": {}}
    write(out, report)
    watch.start()
    started: dict[str, float] = {}

    def one(name: str, source: str) -> tuple[str, Evaluation | str, float]:
        started[name] = time.monotonic()
        try:
            return name, evaluate(problem, source, options), time.monotonic()
        except HarnessError as exc:  # the judge itself failed (out of GPU memory, say): recorded
            return name, str(exc)[:600], time.monotonic()

    with ThreadPoolExecutor(args.parallel) as pool:
        futures: list[Future[tuple[str, Evaluation | str, float]]] = []
        for name, source in sources(args.total, args.hang_at):
            futures.append(pool.submit(one, name, source))
        for done in as_completed(futures):
            name, ev, ended = done.result()
            if isinstance(ev, str):
                report.setdefault("harness_errors", []).append({"name": name, "error": ev})
                write(out, report)
                print(f"{time.monotonic() - origin:6.1f} s  {name:24} harness error: {ev[:120]}")
                continue
            if ev.hardware and not report["setup"]["device"]:
                report["setup"]["device"] = ev.hardware.get("name") or ev.hardware.get("cpu")
            report["evaluations"].append(record(name, ev, started[name], ended, origin))
            report["summary"] = summary(report["evaluations"], watch)
            write(out, report)
            print(f"{time.monotonic() - origin:6.1f} s  {name:24} {ev.verdict.value}", flush=True)
    watch.stop()
    report["summary"] = summary(report["evaluations"], watch)
    report["wall_s"] = round(time.monotonic() - origin, 1)
    write(out, report)


def setup(args: argparse.Namespace) -> dict[str, Any]:
    """What was run where (the card's name comes with the first timed evaluation)."""
    return {
        "device": None,
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "op": "softmax",
        "dtype": args.dtype,
        "shape": args.shape,
        "total": args.total,
        "parallel": args.parallel,
        "hang_at": args.hang_at,
        "timeout_s": args.timeout,
        "device_kind": args.device,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    parser.add_argument("--total", type=int, default=32)
    parser.add_argument("--parallel", type=int, default=16)
    parser.add_argument("--hang-at", type=int, default=16, help="the hang's place in the queue")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--shape", default="8192x8192")
    parser.add_argument("--timeout", type=float, default=120.0, help="--timeout of each judge")
    parser.add_argument("--minutes", type=float, default=3.5, help="no evaluation runs longer")
    parser.add_argument("--cache", type=Path, help="the judge cache (GPU locks, ceilings)")
    parser.add_argument("--device", default="cuda", help="cpu: a smoke run of the bench itself")
    args = parser.parse_args()
    if not 0 <= args.hang_at < args.total or args.parallel < 1:
        parser.error("--hang-at must be below --total, and --parallel at least 1")
    problem = narrow(select(load_problems(DEMO), "softmax", DEMO), [args.dtype], [args.shape], DEMO)
    cache = args.cache or Path(tempfile.mkdtemp(prefix="kevolve-hangs-"))
    options = EvalOptions(
        device=args.device,
        timeout=args.timeout,
        total_timeout=args.minutes * 60.0,
        cache_dir=cache,
        compile_arm=CompileArm.OFF,
    )
    judge_all(args, problem, options, args.out)
    print(json.dumps(json.loads(args.out.read_text())["summary"], indent=2))


if __name__ == "__main__":
    main()
