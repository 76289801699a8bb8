"""`kevolve serve`: the GitHub App service under uvicorn."""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn

from bot.commands.common import usage_error
from bot.service import build
from bot.settings import bot_settings
from bot.storage import StorageError


def add_parser(sub: Any) -> None:
    """Register the subcommand and its arguments."""
    serve = sub.add_parser(
        "serve",
        help="run the GitHub App service (webhooks, /healthz, /metrics)",
        description="Run the GitHub App service. Configuration comes from the environment: "
        "KEVOLVE_WEBHOOK_SECRET (required), KEVOLVE_DATABASE_URL (default "
        "sqlite:///kevolve.db), KEVOLVE_GITHUB_APP_ID, KEVOLVE_GITHUB_PRIVATE_KEY_PATH, "
        "KEVOLVE_GITHUB_API_URL (default https://api.github.com), KEVOLVE_HARDWARE (labels, "
        "default local), KEVOLVE_BUDGET, KEVOLVE_DEVICE, KEVOLVE_WORKDIR, KEVOLVE_MAX_OPEN_PRS, "
        "KEVOLVE_MAX_PRS_PER_HOUR, KEVOLVE_PUBLISH_UNTIMED.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")
    serve.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """`kevolve serve`: serve until interrupted; 2 when the configuration is unusable."""
    if not 0 < args.port < 65536:
        return usage_error(f"--port {args.port} is not a TCP port (1-65535)")
    try:
        app, _worker = build(bot_settings())
    except (ValueError, StorageError) as exc:
        return usage_error(str(exc))
    uvicorn.run(app, host=args.host, port=args.port)
    return 0
