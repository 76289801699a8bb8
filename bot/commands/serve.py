"""`kevolve serve`: the GitHub App service under uvicorn, with its worker process."""

from __future__ import annotations

import argparse
import gc
import os
import textwrap
from typing import Any

import uvicorn
from kevolve.bot.commands import work
from kevolve.bot.commands.common import configure_logging, usage_error
from kevolve.bot.hardening import make_undumpable, seal
from kevolve.bot.service.assembly import build, build_server
from kevolve.bot.settings import bot_settings
from kevolve.bot.storage import StorageError
from kevolve.bot.variables import variables_help


def add_parser(sub: Any) -> None:
    """Register the subcommand and its arguments."""
    serve = sub.add_parser(
        "serve",
        help="run the GitHub App service (webhooks, /healthz, /metrics)",
        description=textwrap.fill(
            "Run the GitHub App service: the web app stores each signed webhook and answers at "
            "once; a worker process (started and restarted here) handles the stored deliveries "
            "and runs the jobs. Configuration comes from the environment, below. Without the "
            "LLM settings the tuner alone proposes, and each check run and pull request says so.",
            80,
        ),
        epilog=variables_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")
    mode = serve.add_mutually_exclusive_group()
    mode.add_argument(
        "--no-worker",
        action="store_true",
        help="only receive webhooks; run one `kevolve worker` per database apart (to run "
        "several web servers, or the worker on another host)",
    )
    mode.add_argument(
        "--in-process",
        action="store_true",
        help="handle deliveries and run jobs on threads of this process, not in a worker",
    )
    serve.add_argument(
        "--access-log",
        action="store_true",
        help="log every request (off by default: deliveries are recorded in the database, and "
        "a log line per request costs the webhook time under load)",
    )
    serve.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """`kevolve serve`: serve until interrupted; 2 when the configuration is unusable."""
    if not 0 < args.port < 65536:
        return usage_error(f"--port {args.port} is not a TCP port (1-65535)")
    make_undumpable()  # before any secret is read: no process of this user may read them
    configure_logging()
    try:
        settings = bot_settings()
        seal(settings)
        if args.in_process:
            app, _jobs = build(settings)
        else:
            child = None if args.no_worker else work.command_line(parent=os.getpid())
            app = build_server(settings, child)
    except (ValueError, StorageError) as exc:
        return usage_error(str(exc))
    # Everything imported and built so far lives as long as the process. Without this, the
    # collector's occasional full pass walks those 150,000 objects and stops every request for
    # 100-250 ms (measured under load); frozen, a full pass takes about 1 ms.
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=args.host, port=args.port, access_log=args.access_log)
    return 0
