"""`kevolve app create`: register kevolve as a GitHub App through GitHub's App manifest flow and
write its id, private key and webhook secret where `kevolve serve` reads them."""

from __future__ import annotations

import argparse
import errno
import secrets
import socket
import sys
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from kevolve.bot.app_files import AppFiles, clash_message
from kevolve.bot.app_manifest import AppManifest, app_name, creation_url, org_login, web_url
from kevolve.bot.commands.common import usage_error
from kevolve.bot.signup import CALLBACK_PATH, SignupOutcome, SignupPlan, signup_app

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8765
GITHUB = "https://github.com"
EXIT_FAILED = 1


def add_parser(sub: Any) -> None:
    """Register `app` and its `create` action."""
    app = sub.add_parser(
        "app",
        help="register kevolve as a GitHub App (GitHub's App manifest flow)",
        description="Manage kevolve's GitHub App registration.",
    )
    actions = app.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create",
        help="register the App on GitHub and write its key and secret",
        description="Serve a page on 127.0.0.1 that posts kevolve's App manifest (its name, "
        "webhook URL, permissions and events) to GitHub. Open it in a browser signed in to "
        "GitHub and confirm there; GitHub sends the browser back to the page, which exchanges "
        "the code for the App's id, private key and webhook secret and writes them to --dir: "
        "github-app.pem and webhook-secret (mode 600), and kevolve.env (KEVOLVE_GITHUB_APP_ID, "
        "KEVOLVE_GITHUB_PRIVATE_KEY_PATH, KEVOLVE_WEBHOOK_SECRET_FILE, ...) for a shell or "
        "systemd's EnvironmentFile=. Existing files are kept unless --force. On a remote host, "
        "forward the port first (ssh -L PORT:127.0.0.1:PORT host).",
    )
    create.add_argument(
        "--webhook-url",
        required=True,
        type=_checked(web_url, "--webhook-url"),
        help="where GitHub posts events: `kevolve serve`'s public /webhook, e.g. "
        "https://kevolve.example.com/webhook",
    )
    create.add_argument(
        "--name", default="kevolve", type=_checked(app_name), help="the App's name (kevolve)"
    )
    create.add_argument(
        "--homepage",
        type=_checked(web_url, "--homepage"),
        help="the App's homepage (default: the webhook URL's site)",
    )
    create.add_argument(
        "--org",
        type=_checked(org_login),
        help="register the App for this organization (default: your own account)",
    )
    create.add_argument(
        "--public", action="store_true", help="let any account install it (default: owner only)"
    )
    create.add_argument(
        "--dir", type=Path, default=Path("."), help="where to write the files (default: here)"
    )
    create.add_argument("--force", action="store_true", help="replace files that exist")
    create.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"the page's port on {LOOPBACK} ({DEFAULT_PORT}; 0: any free port)",
    )
    create.add_argument(
        "--github-url",
        default=GITHUB,
        type=_checked(web_url, "--github-url"),
        help=f"GitHub's web address ({GITHUB}; GitHub Enterprise Server: https://HOST)",
    )
    create.add_argument(
        "--api-url",
        type=_checked(web_url, "--api-url"),
        help="GitHub's REST API (default: https://api.github.com for github.com, else "
        "GITHUB_URL/api/v3)",
    )
    create.add_argument("--open", action="store_true", help="open the page in a browser")
    create.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """`kevolve app create`: 0 with the App written, 1 when GitHub's part failed, 2 for usage."""
    if not 0 <= args.port < 65536:
        return usage_error(f"--port {args.port} is not a TCP port (0-65535; 0: any free port)")
    files = AppFiles.under(args.dir)
    if not args.force and (clash := files.existing()):
        return usage_error(clash_message(clash))
    try:
        listener = _listen(args.port)
    except OSError as exc:
        return usage_error(_port_error(args.port, exc))
    with listener:
        port = listener.getsockname()[1]
        plan = _plan(args, files, f"http://{LOOPBACK}:{port}")
        outcome: list[SignupOutcome] = []
        server = uvicorn.Server(
            uvicorn.Config(
                signup_app(plan, _finisher(outcome, lambda: server)), log_level="warning"
            )
        )
        address = f"http://{LOOPBACK}:{port}/?token={plan.page_token}"
        print(f"Open {address} in a browser signed in to GitHub.", flush=True)
        if args.open:
            webbrowser.open(address)
        server.run(sockets=[listener])
    return _report(outcome[0] if outcome else None, files)


def _plan(args: argparse.Namespace, files: AppFiles, origin: str) -> SignupPlan:
    """The flow the arguments ask for, served at `origin`."""
    webhook = urlsplit(args.webhook_url)
    manifest = AppManifest(
        name=args.name,
        url=args.homepage or f"{webhook.scheme}://{webhook.netloc}",
        webhook_url=args.webhook_url,
        redirect_url=origin + CALLBACK_PATH,
        public=args.public,
    )
    state = secrets.token_urlsafe(32)
    return SignupPlan(
        manifest=manifest,
        creation_url=creation_url(args.github_url, args.org, state),
        state=state,
        page_token=secrets.token_urlsafe(16),
        org=args.org,
        api_url=args.api_url or _api_url(args.github_url),
        files=files,
        force=args.force,
    )


def _api_url(github_url: str) -> str:
    """GitHub's REST API for its web address: api.github.com, or a server's /api/v3."""
    if urlsplit(github_url).hostname == "github.com":
        return "https://api.github.com"
    return github_url.rstrip("/") + "/api/v3"


def _finisher(
    outcome: list[SignupOutcome], server: Callable[[], uvicorn.Server]
) -> Callable[[SignupOutcome], None]:
    """Record the outcome and stop serving once the page has answered."""

    def finish(result: SignupOutcome) -> None:
        outcome.append(result)
        server().should_exit = True

    return finish


def _listen(port: int) -> socket.socket:
    """A listening socket on loopback: bound here, so a busy port is said before anything."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, port))
        listener.listen(16)
    except OSError:
        listener.close()
        raise
    return listener


def _port_error(port: int, exc: OSError) -> str:
    """What to say when the page's port cannot be had."""
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {LOOPBACK} is in use by another program. Fix: stop it, or pass "
            "--port with a free port (--port 0 picks one)"
        )
    return f"cannot listen on {LOOPBACK}:{port}: {exc.strerror}. Fix: pass another --port"


def _report(outcome: SignupOutcome | None, files: AppFiles) -> int:
    """Say how the flow ended; the exit status."""
    if outcome is None:
        print(
            "kevolve: stopped before GitHub sent the App back; nothing was written.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if outcome.app is None:
        print(f"kevolve: error: {outcome.error}", file=sys.stderr)
        return EXIT_FAILED
    app = outcome.app
    print(f"Registered the GitHub App {app.name!r} (id {app.id}): {app.html_url}")
    written = [files.key, files.env] if app.webhook_secret is None else files.paths()
    print(f"Wrote {', '.join(map(str, written))} (mode 600).")
    if app.webhook_secret is None:
        print(f"GitHub made no webhook secret: see {files.env} for what to do.")
    print(f"Next: install it on your repositories: {app.html_url}/installations/new")
    print(f"Then: set -a; . {files.env}; set +a; kevolve serve")
    return 0


def _checked(check: Callable[..., str], *names: str) -> Callable[[str], str]:
    """An argparse type from a check that raises ValueError with its message."""

    def parse(text: str) -> str:
        try:
            return check(text, *names)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse
