"""`kevolve worker`: handles stored webhook deliveries and runs jobs, apart from the web app."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from bot.commands.common import configure_logging, usage_error
from bot.service import build_worker
from bot.settings import bot_settings
from bot.storage import StorageError
from bot.worker import POLL_S


def add_parser(sub: Any) -> None:
    """Register the subcommand and its arguments."""
    worker = sub.add_parser(
        "worker",
        help="handle stored webhook deliveries and run jobs (`kevolve serve` starts one)",
        description="Handle the webhook deliveries `kevolve serve` stored, and run the jobs "
        "they queue. `kevolve serve` starts one itself; run it apart with `kevolve serve "
        "--no-worker`. Run one worker per database: two would handle a delivery twice. "
        "Configuration: the same environment as `kevolve serve` (the webhook secret is not "
        "needed here).",
    )
    worker.add_argument(
        "--poll",
        type=float,
        default=POLL_S,
        help=f"seconds between looks for new deliveries ({POLL_S:g})",
    )
    worker.add_argument(
        "--parent-pid",
        type=int,
        help="stop when this process is gone (`kevolve serve` passes its own pid)",
    )
    worker.set_defaults(run=run)


def command_line(parent: int) -> list[str]:
    """How a server starts its worker: this Python, this command, the server's pid."""
    return [sys.executable, "-m", "bot.cli", "worker", "--parent-pid", str(parent)]


def run(args: argparse.Namespace) -> int:
    """`kevolve worker`: work until SIGTERM, SIGINT or the parent's end; 2 on bad configuration."""
    if not args.poll > 0:
        return usage_error(f"--poll {args.poll} must be a positive number of seconds")
    configure_logging()
    try:
        worker = build_worker(bot_settings(), poll_s=args.poll)
    except (ValueError, StorageError) as exc:
        return usage_error(str(exc))
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda _signal, _frame: stop.set())
    worker.run(stop, args.parent_pid)
    return 0
