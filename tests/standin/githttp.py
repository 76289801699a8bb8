"""Git's smart HTTP protocol, served by running `git http-backend` as a CGI program."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# Request headers that reach the CGI program as HTTP_* variables.
_PASSED_HEADERS = ("Content-Encoding", "Git-Protocol", "Accept")


@dataclass(frozen=True)
class CgiReply:
    """A parsed CGI answer."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def is_git_path(path: str) -> bool:
    """Return whether a URL path (no query) addresses a repo as `/{owner}/{repo}.git/...`."""
    parts = path.split("/")
    return len(parts) >= 4 and parts[0] == "" and parts[2].endswith(".git")


def is_push(path: str, query: str) -> bool:
    """Return whether a git request is part of a push (the receive-pack service)."""
    return path.endswith("/git-receive-pack") or "service=git-receive-pack" in query


def repo_key(path: str) -> str:
    """Return `owner/repo` for a git URL path."""
    _, owner, repo_git, *_ = path.split("/")
    return f"{owner}/{repo_git.removesuffix('.git')}"


def serve(
    root: Path,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    user: str,
) -> CgiReply:
    """Run `git http-backend` for one request against repos under `root`."""
    env = _cgi_env(root, method, path, query, headers, len(body), user)
    done = subprocess.run(
        ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
    )
    if done.returncode != 0 and not done.stdout:
        return CgiReply(500, [("Content-Type", "text/plain")], done.stderr)
    return parse_cgi(done.stdout)


def _cgi_env(
    root: Path,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    length: int,
    user: str,
) -> dict[str, str]:
    """Return the CGI environment for git http-backend."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": str(root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(root),
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "REQUEST_METHOD": method,
        "CONTENT_TYPE": headers.get("Content-Type", ""),
        "CONTENT_LENGTH": str(length),
        "REMOTE_USER": user,
        "REMOTE_ADDR": "127.0.0.1",
    }
    for name in _PASSED_HEADERS:
        if name in headers:
            env["HTTP_" + name.upper().replace("-", "_")] = headers[name]
    return env


def parse_cgi(output: bytes) -> CgiReply:
    """Split CGI output into status, headers and body."""
    head, sep, body = output.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = output.partition(b"\n\n")
    status = 200
    headers: list[tuple[str, str]] = []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.split()[0])
        else:
            headers.append((name.strip(), value.strip()))
    return CgiReply(status, headers, body)
