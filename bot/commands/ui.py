"""`kevolve ui`: the dashboard's search pages for a local state file or folder, no GitHub."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sqlite3
from pathlib import Path
from typing import Any

import uvicorn
from kevolve.bot.commands.common import usage_error
from kevolve.bot.dashboard.catalog import FolderCatalog
from kevolve.bot.dashboard.mount import folder_dashboard, ui_app
from kevolve.harness.search.snapshot import records

BACKLOG = 2048  # uvicorn's own default


def add_parser(sub: Any) -> None:
    """Register the subcommand and its arguments."""
    p = sub.add_parser(
        "ui",
        help="browse a search (or a demo's folder) in the dashboard, locally",
        description="Serve the dashboard's search pages for one search state file (e.g. "
        ".kevolve/softmax.sqlite) or a folder of them (a `kevolve demo` folder, or a state "
        "folder): the best-so-far chart, verdicts, the lineage tree with each candidate's "
        "source, diff, verdict, timings, prompt and reply, islands, cost by model and the "
        "evaluation timeline. Pages follow a running search live. Only this host can open it "
        "unless --host names another address.",
    )
    p.add_argument("state", type=Path, help="a state file, or a folder holding state files")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (8765; 0: any free)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (127.0.0.1); another address lets anyone who reaches it "
        "see the searches, prompts and replies included",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; 2 when the path holds no search or the port is unusable."""
    problem = _check_path(args.state)
    if problem:
        return usage_error(problem)
    if not 0 <= args.port < 65536:
        return usage_error(f"--port {args.port} is not a TCP port (0-65535)")
    try:
        local = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        local = args.host == "localhost"
    try:
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
        sock.listen(BACKLOG)  # connections wait from now on, while the app starts
    except OSError as exc:
        return usage_error(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror}. Fix: pass another "
            "--port (0 picks a free one)"
        )
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    app = ui_app(folder_dashboard(args.state.resolve(), open_to_all=not local))
    print(f"kevolve ui: http://{shown}:{port}/dashboard/ (Ctrl-C stops)", flush=True)
    if not local:
        print(f"kevolve ui: listening on {args.host}: anyone who reaches it sees these searches")
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _check_path(path: Path) -> str | None:
    """What is wrong with the path given, or None when it holds (or may soon hold) searches."""
    if path.is_dir():
        return None  # a folder may fill as a search starts: the page lists what is there
    if not path.exists():
        return f"{path}: no such file or folder. Fix: pass a search's --state file or its folder"
    if not FolderCatalog(path).entries():
        return f"{path} is not a kevolve search's state file. Fix: pass the file --state named"
    try:
        records(path)
    except (sqlite3.Error, KeyError, ValueError, TypeError) as exc:
        return f"{path} cannot be read as a search's state ({exc})"
    return None
