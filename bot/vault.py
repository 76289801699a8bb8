"""The bot's secrets: read from files only its user may read, handed to its worker on a pipe.

A secret in the environment is inherited by every child and shown in /proc to the bot's user;
a file of mode 600 and a pipe are neither.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

SECRETS_VERSION = 1
_OPEN_BITS = 0o077  # any access for group or others


@dataclass(frozen=True)
class BotSecrets:
    """What `kevolve serve` hands its worker on the worker's stdin, as JSON (version 1):
    `{"version": 1, "webhook_secret": str, "database_url": str, "llm_api_key": str}`."""

    webhook_secret: str
    database_url: str
    llm_api_key: str

    def to_bytes(self) -> bytes:
        return json.dumps({"version": SECRETS_VERSION, **asdict(self)}).encode()

    @staticmethod
    def from_bytes(data: bytes) -> BotSecrets:
        """The secrets a server wrote; ValueError when they are not what it writes."""
        try:
            fields = json.loads(data)
            if fields.pop("version") != SECRETS_VERSION:
                raise ValueError
            secrets = BotSecrets(**fields)
        except (ValueError, TypeError, KeyError, AttributeError):
            raise ValueError(
                "--secrets-on-stdin: stdin does not hold the secrets `kevolve serve` writes. "
                "Fix: start the worker with `kevolve serve`, or without --secrets-on-stdin"
            ) from None
        if not all(isinstance(value, str) for value in asdict(secrets).values()):
            raise ValueError("--secrets-on-stdin: every secret must be a string")
        return secrets


def require_private(path: Path, variable: str) -> None:
    """Return when `path` is a file no group or other user may read or write; else ValueError
    naming the variable, the path, its mode and the fix."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ValueError(
            f"cannot read {variable}={path}: {exc.strerror}. Fix: point it at the file"
        ) from None
    if not stat.S_ISREG(mode):
        raise ValueError(f"{variable}={path} is not a regular file. Fix: point it at the file")
    if mode & _OPEN_BITS:
        raise ValueError(
            f"{variable}={path} has mode {stat.S_IMODE(mode):03o}: group or others may read or "
            f"write it. Fix: chmod 600 {path} (readable by the bot's user alone)"
        )


def private_text(path: Path, variable: str) -> str:
    """The text of a private file, without its trailing newline; ValueError when it is open to
    others or unreadable."""
    require_private(path, variable)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"cannot read {variable}={path}: {exc}. Fix: point it at the file"
        ) from None
    return text.rstrip("\r\n")


def secret(env: Mapping[str, str], name: str) -> str:
    """The secret `name` from the file `<name>_FILE` names, else from `name` itself, else ""."""
    path = env.get(f"{name}_FILE")
    if path:
        return private_text(Path(path), f"{name}_FILE")
    return env.get(name, "")


def exposed(env: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, ...]:
    """Which of the secret variables `names` hold a secret in the environment itself (a
    database URL only when it carries a password)."""
    found = []
    for name in names:
        value = env.get(name, "")
        if not value or env.get(f"{name}_FILE"):
            continue
        if name.endswith("DATABASE_URL") and not urlsplit(value).password:
            continue
        found.append(name)
    return tuple(found)


def exposure_warning(name: str) -> str:
    """What to tell an operator who put the secret `name` in the environment."""
    return (
        f"{name} is set in the environment: processes started beside the bot inherit it. "
        f"kevolve removes it from its own environment, but put it in a file only the bot's "
        f"user can read (chmod 600) and set {name}_FILE instead"
    )
