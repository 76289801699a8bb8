"""Does `kevolve serve` acknowledge signed webhooks fast enough? Open-loop load on loopback.

Starts the real service (`python -m kevolve.bot.commands.cli serve`, which starts its worker
process) on a free loopback port with a fresh SQLite database and a throwaway GitHub App key (or
uses a running one given with `--url`), waits for /healthz, then sends signed push deliveries to
`POST /webhook` at a fixed rate for a fixed time. The pushes go to a branch that is not the default
one, which the push feature ignores: the worker handles every delivery without calling GitHub (its
API URL points at a closed loopback port besides). Send times are fixed in advance (open loop), so a
slow server cannot slow the sender down: each latency runs from the scheduled send time to the
response. Afterwards it counts the stored deliveries and compares them with the acknowledged ones,
and waits for the worker to have handled them. Target (issue 4): p99 under 25 ms at 200 deliveries
per second for 30 s, none lost.

    python bench/webhook_load.py [--rate 200] [--duration 30] [--out results.json]
    python bench/webhook_load.py --serve-arg=--in-process   # the old one-process layout
    python bench/webhook_load.py --url http://127.0.0.1:8080 --secret S   # a running service
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import hmac
import json
import os
import random
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parent.parent
TARGET_P99_MS = 25.0
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_RECEIVED = re.compile(r'^kevolve_webhook_deliveries_total\{event="push"\} ([0-9.e+]+)$', re.M)
BRANCH = "refs/heads/bench-load"  # not the default branch: the push feature ignores it


@dataclass(frozen=True)
class Load:
    """What to send: rate, duration, connection pool and per-request timeout."""

    rate: float  # deliveries per second
    duration: float  # seconds
    connections: int  # concurrent keep-alive connections
    timeout: float  # seconds before a request counts as an error
    client: str = "raw"  # "raw": pre-encoded requests on plain sockets; "httpx": httpx's pool


@dataclass(frozen=True)
class Request:
    """One prepared delivery: its id, headers and signed body."""

    delivery_id: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Outcome:
    """What happened to one delivery: status or error kind, and its timings."""

    delivery_id: str
    status: int | None  # HTTP status; None when the request failed
    error: str | None  # exception class name, when the request failed
    latency_ms: float  # scheduled send time -> response
    lag_ms: float  # scheduled send time -> actual send (the sender's own delay)


@dataclass(frozen=True)
class Report:
    """The figures of one run."""

    client: str
    sent: int
    acknowledged: int
    errors: dict[str, int]
    target_rate: float
    achieved_rate: float  # acknowledged per second, first scheduled send to last answer
    duration_s: float
    latency_ms: dict[str, float]
    sender_lag_ms: dict[str, float]
    stored: int | None
    lost: int | None
    handled: int | None  # of the stored, how many the worker had handled when the wait ended
    handled_after_s: float | None  # seconds after the last answer until all were handled
    load_before: tuple[float, float, float]  # the machine's load averages (1, 5, 15 min)
    load_after: tuple[float, float, float]
    meets_target: bool


# ---- payloads -------------------------------------------------------------------------------


def _user(rng: random.Random, login: str) -> dict[str, Any]:
    """A GitHub user object as webhooks carry it."""
    uid = rng.randrange(10**6, 10**8)
    api = f"https://api.github.com/users/{login}"
    return {
        "login": login,
        "id": uid,
        "node_id": f"MDQ6VXNlcj{uid}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        "html_url": f"https://github.com/{login}",
        "url": api,
        "followers_url": f"{api}/followers",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "type": "User",
        "site_admin": False,
    }


def _repository(rng: random.Random, owner: str, name: str) -> dict[str, Any]:
    """A GitHub repository object as push webhooks carry it."""
    full = f"{owner}/{name}"
    api = f"https://api.github.com/repos/{full}"
    links = ("branches", "commits", "compare", "contents", "git_refs", "issues", "pulls", "tags")
    return {
        "id": rng.randrange(10**8, 10**9),
        "node_id": "R_kgDOJ" + uuid.UUID(int=rng.getrandbits(128)).hex[:10],
        "name": name,
        "full_name": full,
        "private": False,
        "owner": _user(rng, owner),
        "html_url": f"https://github.com/{full}",
        "description": "Triton kernels for fused normalization and attention",
        "fork": False,
        "url": api,
        **{f"{link}_url": f"{api}/{link}{{/sha}}" for link in links},
        "created_at": 1700000000,
        "updated_at": "2026-11-24T10:12:44Z",
        "pushed_at": 1764000000,
        "git_url": f"git://github.com/{full}.git",
        "clone_url": f"https://github.com/{full}.git",
        "size": 4211,
        "stargazers_count": 87,
        "language": "Python",
        "default_branch": "main",
        "master_branch": "main",
        "topics": ["triton", "gpu", "kernels"],
    }


def _sha(rng: random.Random) -> str:
    """A random 40-hex-digit object id."""
    return f"{rng.getrandbits(160):040x}"


def _commit(rng: random.Random, full: str, author: dict[str, str]) -> dict[str, Any]:
    """One commit of a push, with added and modified files."""
    sha = _sha(rng)
    ops = ("softmax", "rmsnorm", "bias_gelu", "matmul_bias_relu", "layernorm", "rope")
    picks = rng.sample(ops, 3)
    return {
        "id": sha,
        "tree_id": _sha(rng),
        "distinct": True,
        "message": f"Tune {picks[0]} block sizes for long rows\n\nMeasured on H100; "
        f"keeps the {picks[1]} reference unchanged.",
        "timestamp": "2026-11-25T09:30:00+00:00",
        "url": f"https://github.com/{full}/commit/{sha}",
        "author": author,
        "committer": author,
        "added": [f"ops/{picks[2]}/kernel_{rng.randrange(100)}.py"],
        "removed": [],
        "modified": [f"ops/{op}/{part}" for op in picks[:2] for part in ("kernel.py", "op.toml")],
    }


def push_payload(rng: random.Random, commits: int = 6) -> dict[str, Any]:
    """A realistic push (about 7 KB of JSON) to a branch other than the default one."""
    repo = _repository(rng, "octo-org", "fused-kernels")
    person = {"name": "Mona Lisa", "email": "mona@example.com", "username": "monalisa"}
    log = [_commit(rng, repo["full_name"], person) for _ in range(commits)]
    before = _sha(rng)
    return {
        "ref": BRANCH,
        "before": before,
        "after": log[-1]["id"],
        "repository": repo,
        "pusher": {"name": "monalisa", "email": "mona@example.com"},
        "sender": _user(rng, "monalisa"),
        "installation": {"id": 4242, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI0Mg=="},
        "created": False,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": f"https://github.com/{repo['full_name']}/compare/{before[:12]}...{log[-1]['id'][:12]}",
        "commits": log,
        "head_commit": log[-1],
    }


def sign(secret: bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` header GitHub sends for `body`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def prepare(count: int, secret: bytes, run_id: str, seed: int = 0) -> list[Request]:
    """`count` signed push deliveries with unique ids, built before the clock starts."""
    rng = random.Random(seed)
    requests = []
    for index in range(count):
        body = json.dumps(push_payload(rng)).encode()
        delivery_id = f"bench-{run_id}-{index:06d}"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/bench",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery_id,
            "X-GitHub-Hook-ID": "1",
            "X-Hub-Signature-256": sign(secret, body),
        }
        requests.append(Request(delivery_id, headers, body))
    return requests


# ---- the service ----------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def app_key(path: Path) -> Path:
    """Write a throwaway GitHub App private key (PEM) to `path`: `kevolve serve` needs one."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    return path


@contextmanager
def service(secret: str, tmp: Path, serve_args: Sequence[str] = ()) -> Iterator[str]:
    """`kevolve serve` in a subprocess on a free loopback port, its files in `tmp`; its URL.
    Always terminated (its worker process with it)."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        KEVOLVE_WEBHOOK_SECRET=secret,
        KEVOLVE_DATABASE_URL=f"sqlite:///{tmp / 'kevolve.db'}",
        KEVOLVE_GITHUB_APP_ID="1",
        KEVOLVE_GITHUB_PRIVATE_KEY_PATH=str(app_key(tmp / "app.pem")),
        KEVOLVE_GITHUB_API_URL="http://127.0.0.1:9",  # closed: no call can leave the machine
        KEVOLVE_WORKDIR=str(tmp / "work"),
        PYTHONPATH=str(ROOT),
    )
    command = [sys.executable, "-m", "kevolve.bot.commands.cli", "serve"]
    command += ["--host", "127.0.0.1", *serve_args]
    with (tmp / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
            [*command, "--port", str(port)], env=env, cwd=tmp, stdout=log, stderr=log
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            _terminate(proc)


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """Stop the service: SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_healthy(url: str, timeout: float = 30.0) -> None:
    """Return once `GET /healthz` answers 200; a RuntimeError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url}/healthz did not answer 200 within {timeout:.0f} s")


def received_counter(url: str) -> int:
    """The service's `kevolve_webhook_deliveries_total{event="push"}` (0 before the first)."""
    text = httpx.get(f"{url}/metrics", timeout=5.0).text
    found = _RECEIVED.search(text)
    return int(float(found.group(1))) if found else 0


def stored_deliveries(database: Path, run_id: str) -> tuple[int, int]:
    """How many of this run's deliveries the SQLite database holds, and how many are handled."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        query = (
            "SELECT COUNT(*), COALESCE(SUM(status != 'pending'), 0) FROM deliveries "
            "WHERE delivery_id LIKE ?"
        )
        stored, handled = conn.execute(query, (f"bench-{run_id}-%",)).fetchone()
        return int(stored), int(handled)


def wait_handled(database: Path, run_id: str, timeout: float = 60.0) -> tuple[int, int, float]:
    """Wait until the worker has handled every stored delivery of the run (or `timeout` s):
    stored, handled, and the seconds it took."""
    started = time.perf_counter()
    while True:
        stored, handled = stored_deliveries(database, run_id)
        waited = time.perf_counter() - started
        if handled >= stored or waited > timeout:
            return stored, handled, round(waited, 2)
        time.sleep(0.1)


# ---- the load -------------------------------------------------------------------------------


async def drive(url: str, requests: Sequence[Request], load: Load) -> tuple[list[Outcome], float]:
    """Send `requests` at `load.rate` on a fixed schedule; the outcomes and the elapsed seconds."""
    if load.client == "httpx":
        return await _drive_httpx(url, requests, load)
    return await _drive_raw(url, requests, load)


def _schedule(count: int, rate: float) -> Iterator[float]:
    """The send times of `count` deliveries at `rate` per second, starting shortly."""
    start = time.perf_counter() + 0.05
    return (start + index / rate for index in range(count))


async def _send(
    client: httpx.AsyncClient, request: Request, scheduled: float, url: str, timeout: float
) -> Outcome:
    """Send one delivery; its outcome, latency measured from `scheduled`, which starts the
    `timeout` too (so the whole run ends at most `timeout` seconds after the last send)."""
    lag = time.perf_counter() - scheduled
    status, error = None, None
    post = client.post(url, content=request.body, headers=request.headers)
    try:
        response = await asyncio.wait_for(post, scheduled + timeout - time.perf_counter())
        status = response.status_code
    except (httpx.HTTPError, TimeoutError) as exc:
        error = type(exc).__name__
    done = time.perf_counter()
    return Outcome(request.delivery_id, status, error, 1e3 * (done - scheduled), 1e3 * lag)


async def _drive_httpx(
    url: str, requests: Sequence[Request], load: Load
) -> tuple[list[Outcome], float]:
    """One task per delivery through httpx's connection pool (the first version of this bench).

    Its pool gets slow when many requests wait for a connection: after a pause of the server of
    about 150 ms, the sender itself falls seconds behind (measured against a trivial server), so
    the raw client is the default.
    """
    limits = httpx.Limits(max_connections=load.connections, max_keepalive_connections=None)
    timeout = httpx.Timeout(load.timeout, pool=load.timeout)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        tasks = []
        start = time.perf_counter()
        for request, scheduled in zip(requests, _schedule(len(requests), load.rate), strict=True):
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            send = _send(client, request, scheduled, f"{url}/webhook", load.timeout)
            tasks.append(asyncio.create_task(send))
        outcomes = await asyncio.gather(*tasks)
    return list(outcomes), time.perf_counter() - start


def wire(request: Request, host: str) -> bytes:
    """The delivery as HTTP/1.1 bytes on a keep-alive connection."""
    lines = [
        "POST /webhook HTTP/1.1",
        f"Host: {host}",
        f"Content-Length: {len(request.body)}",
        *(f"{name}: {value}" for name, value in request.headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + request.body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> int:
    """Write one request and read its whole response; the status code."""
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


_Lane = tuple[asyncio.StreamReader, asyncio.StreamWriter]
_Item = tuple[Request, bytes, float] | None


async def _lane(
    host: str, port: int, queue: asyncio.Queue[_Item], timeout: float, out: list[Outcome]
) -> None:
    """One keep-alive connection: send the queued deliveries one after another, in order."""
    conn: _Lane | None = None
    while (item := await queue.get()) is not None:
        request, data, scheduled = item
        lag = time.perf_counter() - scheduled
        status, error = None, None
        try:
            if conn is None:
                conn = await asyncio.open_connection(host, port)
            remaining = scheduled + timeout - time.perf_counter()
            status = await asyncio.wait_for(_exchange(*conn, data), max(remaining, 0.0))
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            error = type(exc).__name__
            if conn is not None:
                conn[1].close()
            conn = None  # a half-read answer would confuse the next request on it
        done = time.perf_counter()
        out.append(Outcome(request.delivery_id, status, error, 1e3 * (done - scheduled), 1e3 * lag))
    if conn is not None:
        conn[1].close()


async def _drive_raw(
    url: str, requests: Sequence[Request], load: Load
) -> tuple[list[Outcome], float]:
    """`load.connections` keep-alive connections take due deliveries from one queue, oldest
    first; each request is encoded before the clock starts, so the sender does little per
    delivery (about a tenth of httpx's CPU) and keeps its schedule when the server stalls."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    encoded = [wire(request, parts.netloc) for request in requests]
    queue: asyncio.Queue[_Item] = asyncio.Queue()
    outcomes: list[Outcome] = []
    lanes = [
        asyncio.create_task(_lane(host, port, queue, load.timeout, outcomes))
        for _ in range(load.connections)
    ]
    start = time.perf_counter()
    for request, data, scheduled in zip(
        requests, encoded, _schedule(len(requests), load.rate), strict=True
    ):
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((request, data, scheduled))
    for _ in lanes:
        queue.put_nowait(None)
    await asyncio.gather(*lanes)
    return outcomes, time.perf_counter() - start


async def warm_up(url: str, secret: bytes, count: int = 50) -> None:
    """A few deliveries first, so imports and connection setup are not in the figures."""
    requests = prepare(count, secret, "warmup-" + uuid.uuid4().hex[:8], seed=1)
    await drive(url, requests, Load(rate=100, duration=count / 100, connections=8, timeout=10))


# ---- the report -----------------------------------------------------------------------------


def quantiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and max of `values` (nearest rank), rounded to 0.01."""
    if not values:
        return {}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    marks = {"p50": rank(0.50), "p90": rank(0.90), "p99": rank(0.99), "max": ordered[-1]}
    return {name: round(value, 2) for name, value in marks.items()}


def _error_kind(outcome: Outcome) -> str | None:
    """What went wrong with a delivery, or None when it was acknowledged with 202."""
    if outcome.error is not None:
        return outcome.error
    return None if outcome.status == 202 else f"HTTP {outcome.status}"


@dataclass(frozen=True)
class Afterwards:
    """What the run left behind: stored and handled deliveries, the machine's load."""

    stored: int | None
    handled: int | None
    handled_after_s: float | None
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]


def summarize(outcomes: Sequence[Outcome], elapsed: float, load: Load, after: Afterwards) -> Report:
    """The run's figures; `after.stored` is how many deliveries were kept (None: unknown)."""
    stored = after.stored
    acked = [o for o in outcomes if o.status == 202]
    errors = Counter(kind for o in outcomes if (kind := _error_kind(o)) is not None)
    latency = quantiles([o.latency_ms for o in acked])
    lost = None if stored is None else max(0, len(acked) - stored)
    fast = latency.get("p99", float("inf")) < TARGET_P99_MS
    meets = fast and not errors and lost == 0 and len(acked) == len(outcomes)
    return Report(
        client=load.client,
        sent=len(outcomes),
        acknowledged=len(acked),
        errors=dict(errors),
        target_rate=load.rate,
        achieved_rate=round(len(acked) / elapsed, 1),
        duration_s=round(elapsed, 2),
        latency_ms=latency,
        sender_lag_ms=quantiles([o.lag_ms for o in outcomes]),
        stored=stored,
        lost=lost,
        handled=after.handled,
        handled_after_s=after.handled_after_s,
        load_before=after.load_before,
        load_after=after.load_after,
        meets_target=bool(meets),
    )


def render(report: Report) -> str:
    """The report as a short table."""
    lat, lag = report.latency_ms, report.sender_lag_ms
    rows = [
        ("client", report.client),
        ("sent", str(report.sent)),
        ("acknowledged (202)", str(report.acknowledged)),
        ("errors", ", ".join(f"{k}: {v}" for k, v in report.errors.items()) or "none"),
        ("rate (target / acked)", f"{report.target_rate:g} / {report.achieved_rate:g} per s"),
        ("ack latency ms p50/p90/p99/max", "/".join(f"{lat.get(k, 0):.1f}" for k in lat)),
        ("sender lag ms p50/p99/max", "/".join(f"{lag[k]:.1f}" for k in ("p50", "p99", "max"))),
        ("stored / lost", f"{report.stored} / {report.lost}"),
        ("handled by the worker", f"{report.handled} ({report.handled_after_s} s after)"),
        ("load average before / after", f"{report.load_before} / {report.load_after}"),
        (
            f"target (p99 < {TARGET_P99_MS:g} ms, none lost)",
            "met" if report.meets_target else "MISSED",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


# ---- entry point ----------------------------------------------------------------------------


def run_against(url: str, secret: bytes, load: Load, database: Path | None) -> Report:
    """Warm up, drive the load at `url`, count what was stored; the report."""
    wait_healthy(url)
    asyncio.run(warm_up(url, secret))
    before = received_counter(url)
    run_id = uuid.uuid4().hex[:12]
    requests = prepare(round(load.rate * load.duration), secret, run_id)
    # The prepared requests and the sender's own modules stay for the whole run: keep the
    # garbage collector from scanning them again (a full collection here takes tens of ms).
    gc.collect()
    gc.freeze()
    load_before = _loadavg()
    outcomes, elapsed = asyncio.run(drive(url, requests, load))
    load_after = _loadavg()
    if database is not None:
        stored, handled, waited = wait_handled(database, run_id)
        after = Afterwards(stored, handled, waited, load_before, load_after)
    else:
        after = Afterwards(received_counter(url) - before, None, None, load_before, load_after)
    return summarize(outcomes, elapsed, load, after)


def _loadavg() -> tuple[float, float, float]:
    """The machine's 1, 5 and 15 minute load averages."""
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def _check_loopback(url: str) -> None:
    """Refuse any target that is not on this machine's loopback interface."""
    host = urlsplit(url).hostname or ""
    if host not in _LOOPBACK:
        raise SystemExit(f"--url must point at loopback (127.0.0.1), not {host!r}")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="deliveries per second (200)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load (30)")
    parser.add_argument("--connections", type=int, default=32, help="connection pool size (32)")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request seconds (10)")
    parser.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="raw: pre-encoded requests on plain keep-alive sockets (default); httpx: one "
        "task per delivery through httpx's pool, as the first version of this bench did",
    )
    parser.add_argument("--url", help="a running service on loopback instead of starting one")
    parser.add_argument("--secret", help="its webhook secret (default: $KEVOLVE_WEBHOOK_SECRET)")
    parser.add_argument("--out", type=Path, help="also write the report as JSON here")
    parser.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        help="an extra `kevolve serve` argument, e.g. --serve-arg=--in-process (repeatable)",
    )
    args = parser.parse_args(argv)
    if not 0 < args.rate * args.duration <= 100_000:
        parser.error("--rate x --duration must be between 1 and 100000 deliveries")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when the target is met, 1 when not."""
    args = _parse(argv)
    load = Load(args.rate, args.duration, args.connections, args.timeout, args.client)
    if args.url:
        _check_loopback(args.url)
        secret = args.secret or os.environ.get("KEVOLVE_WEBHOOK_SECRET", "")
        report = run_against(args.url.rstrip("/"), secret.encode(), load, None)
    else:
        secret = uuid.uuid4().hex
        with (
            tempfile.TemporaryDirectory(prefix="kevolve-load-") as tmp,
            service(secret, Path(tmp), args.serve_arg) as url,
        ):
            report = run_against(url, secret.encode(), load, Path(tmp) / "kevolve.db")
    print(render(report))
    if args.out:
        args.out.write_text(json.dumps(asdict(report), indent=2) + "\n")
    return 0 if report.meets_target else 1


if __name__ == "__main__":
    sys.exit(main())
