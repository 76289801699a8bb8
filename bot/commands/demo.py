"""`kevolve demo`: the whole pipeline on this machine, with no GitHub and no configuration."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kevolve.bot.commands.common import device_name, usage_error
from kevolve.bot.commands.optimize import PAUSED, add_llm_arguments, llm_config
from kevolve.bot.settings import cli_settings
from kevolve.bot.showcase import (
    CPU_BUDGET,
    EXAMPLE,
    GPU_BUDGET,
    DemoOptions,
    DemoStopped,
    default_out,
    run_demo,
)
from kevolve.harness.spec.checks import did_you_mean
from kevolve.harness.spec.load import SpecError, load_problems
from kevolve.runners.local import LocalRunner


def add_parser(sub: Any) -> None:
    """Register the subcommand and its arguments."""
    p = sub.add_parser(
        "demo",
        help="run the whole pipeline on the example kernels, locally",
        description="Copy examples/demo into a fresh git repository, search each op (timed on "
        "a local GPU, correctness only on CPU), write each winner on a kevolve/<op>/<hardware> "
        "branch and render each pull request body to a file. On a GPU each op runs in its first "
        "dtype and is timed at its first production shape (every check shape is still checked), "
        "so the demo takes minutes; --all-shapes runs every declared dtype and shape.",
    )
    p.add_argument("--out", type=Path, help="new directory for the demo (default ./kevolve-demo)")
    p.add_argument("--device", default="auto", type=device_name, help="cpu, cuda, cuda:N or auto")
    p.add_argument(
        "--budget",
        type=int,
        help=f"candidates per op (default {CPU_BUDGET} on CPU, {GPU_BUDGET} on a GPU)",
    )
    p.add_argument("--op", action="append", default=[], help="only this op (repeatable)")
    p.add_argument(
        "--all-shapes",
        action="store_true",
        help="on a GPU, check and time every declared dtype and shape (several times slower)",
    )
    add_llm_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """0 when every op was searched; 1 when a search failed; 2 on bad input; 128 + the signal
    when SIGTERM or SIGINT stopped it (the search and every process under it killed first)."""
    with _stop_signals() as received:
        try:
            return _run(args, lambda: bool(received))
        except DemoStopped as stopped:
            name = signal.Signals(received[0]).name
            print(f"kevolve demo: {name}: {stopped}; the search and its processes were stopped.")
            return 128 + received[0]


@contextmanager
def _stop_signals() -> Iterator[list[int]]:
    """While the block runs, SIGTERM and SIGINT are recorded (in the list it yields) instead of
    ending the process at once, so the demo can stop its search and its children first."""
    received: list[int] = []
    numbers = (signal.SIGTERM, signal.SIGINT)
    if threading.current_thread() is not threading.main_thread():
        yield received  # signals go to the main thread only: nothing to catch here
        return
    previous = {
        number: signal.signal(number, lambda n, _f: received.append(n)) for number in numbers
    }
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _run(args: argparse.Namespace, cancelled: Callable[[], bool]) -> int:
    """The demo itself; `cancelled` turns true once a stop signal came."""
    out = (args.out or default_out(Path.cwd())).absolute()  # the searches run elsewhere
    settings = cli_settings()
    try:
        llm = llm_config(args, settings)
    except ValueError as exc:
        return usage_error(str(exc))
    # A demo on a reply queue pauses; the same command with the same --out goes on from there.
    resume = llm is not None and llm.queue is not None and (out / "state").is_dir()
    if out.exists() and not resume:
        return usage_error(f"{out} already exists. Fix: pass --out with a new directory")
    if args.budget is not None and args.budget < 1:
        return usage_error("--budget must be at least 1")
    declared = [p.name for p in load_problems(EXAMPLE)]
    for op in args.op:
        if op not in declared:
            hint = did_you_mean(op, declared)
            return usage_error(
                f"--op {op}: the demo has no such op. Fix: {hint}use one of {', '.join(declared)}"
            )
    device = args.device
    if device == "auto":
        device = "cuda" if _has_gpu() else "cpu"
    options = DemoOptions(
        out=out,
        device=device,
        budget=args.budget,
        ops=tuple(args.op),
        cache_dir=settings.cache_dir,
        all_shapes=args.all_shapes,
        llm=llm,
        llm_share=args.llm_share,
        resume=resume,
        progress_every_s=settings.progress_every_s,
    )
    try:
        outcomes = run_demo(options, LocalRunner(), cancelled=cancelled)
    except SpecError as exc:
        return usage_error(str(exc))
    if device == "cpu":
        print("kevolve demo: no GPU here, so nothing was timed; every result is correctness only.")
    failed = [o for o in outcomes if o.failed]
    if any(o.paused for o in outcomes):
        print(
            f"kevolve demo: paused in {out}: write the replies, then run the same command "
            "again to go on"
        )
        return PAUSED
    print(f"kevolve demo: done in {out}")
    return 1 if failed else 0


def _has_gpu() -> bool:
    """Whether torch sees a CUDA device (asked in a child process, keeping this one light)."""
    probe = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"
    try:
        return subprocess.run([sys.executable, "-c", probe], timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
