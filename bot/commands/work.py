"""`kevolve worker`: handles stored webhook deliveries and runs jobs, apart from the web app."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
from typing import Any

from kevolve.bot.commands.common import configure_logging, usage_error
from kevolve.bot.hardening import make_undumpable, seal
from kevolve.bot.processor import POLL_S
from kevolve.bot.service.assembly import build_worker
from kevolve.bot.settings import BotSettings, bot_settings
from kevolve.bot.storage import StorageError
from kevolve.bot.vault import BotSecrets


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
    worker.add_argument(
        "--secrets-on-stdin",
        action="store_true",
        help="read the webhook secret, database URL and LLM key as JSON on stdin instead of "
        "the environment (how `kevolve serve` hands them to its worker)",
    )
    worker.set_defaults(run=run)


def command_line(parent: int) -> list[str]:
    """How a server starts its worker: this Python, this command, the server's pid."""
    return [
        sys.executable,
        "-m",
        "kevolve.bot.commands.cli",
        "worker",
        "--parent-pid",
        str(parent),
        "--secrets-on-stdin",
    ]


def run(args: argparse.Namespace) -> int:
    """`kevolve worker`: work until SIGTERM, SIGINT or the parent's end; 2 on bad configuration."""
    if not args.poll > 0:
        return usage_error(f"--poll {args.poll} must be a positive number of seconds")
    make_undumpable()  # before any secret is read: no process of this user may read them
    configure_logging()
    try:
        settings = _with_stdin_secrets(bot_settings()) if args.secrets_on_stdin else bot_settings()
        seal(settings)
        worker = build_worker(settings, poll_s=args.poll)
    except (ValueError, StorageError) as exc:
        return usage_error(str(exc))
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda _signal, _frame: stop.set())
    worker.run(stop, args.parent_pid)
    return 0


def _with_stdin_secrets(settings: BotSettings) -> BotSettings:
    """`settings` with the secrets a server wrote on this process's stdin."""
    secrets = BotSecrets.from_bytes(sys.stdin.buffer.read())
    return dataclasses.replace(
        settings,
        webhook_secret=secrets.webhook_secret,
        database_url=secrets.database_url,
        llm_api_key=secrets.llm_api_key,
        exposed=(),  # the server already said where they came from
    )
