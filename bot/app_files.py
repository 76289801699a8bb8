"""The files `kevolve app create` writes where `kevolve serve` reads them: the App's private key,
its webhook secret and an environment file naming both, each readable by its owner alone."""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kevolve.bot.conversion import NewApp

KEY_NAME, SECRET_NAME, ENV_NAME = "github-app.pem", "webhook-secret", "kevolve.env"
_PLAIN = re.compile(r"[A-Za-z0-9_./:@+,=-]*")  # an env file value that needs no quotes


class AppFilesError(Exception):
    """A file could not be written; the message names it and the fix."""


@dataclass(frozen=True)
class AppFiles:
    """Where the App's credentials go (absolute paths, as systemd's EnvironmentFile= wants)."""

    key: Path  # KEVOLVE_GITHUB_PRIVATE_KEY_PATH
    secret: Path  # KEVOLVE_WEBHOOK_SECRET_FILE
    env: Path  # sourced by a shell, or systemd's EnvironmentFile=

    @staticmethod
    def under(directory: Path) -> AppFiles:
        """The three files in `directory`."""
        base = directory.absolute()
        return AppFiles(base / KEY_NAME, base / SECRET_NAME, base / ENV_NAME)

    def paths(self) -> list[Path]:
        """The three files."""
        return [self.key, self.secret, self.env]

    def existing(self) -> list[Path]:
        """Those of the files that exist already."""
        return [path for path in self.paths() if path.exists()]

    def write(self, app: NewApp, api_url: str, force: bool) -> None:
        """Write the key, the secret (when GitHub made one) and the env file, mode 600; an
        existing file is replaced only with `force`, else AppFilesError before any is written."""
        clash = self.existing()
        if clash and not force:
            raise AppFilesError(clash_message(clash))
        try:
            self.key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise AppFilesError(f"cannot create {self.key.parent}: {exc.strerror}") from None
        _write_private(self.key, app.pem if app.pem.endswith("\n") else app.pem + "\n", force)
        if app.webhook_secret is not None:
            _write_private(self.secret, app.webhook_secret + "\n", force)
        _write_private(self.env, self.env_text(app, api_url), force)

    def env_text(self, app: NewApp, api_url: str) -> str:
        """The environment file: the App's id and login, its API and where its secrets lie."""
        made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines = [
            f"# The GitHub App {app.name!r} ({app.html_url}), registered {made} by",
            "# `kevolve app create`. For systemd: EnvironmentFile=" + str(self.env),
            f"# For a shell: set -a; . {self.env}; set +a",
            f"KEVOLVE_GITHUB_APP_ID={app.id}",
            f"KEVOLVE_GITHUB_PRIVATE_KEY_PATH={_value(str(self.key))}",
            f"KEVOLVE_GITHUB_API_URL={_value(api_url)}",
            f"KEVOLVE_BOT_LOGIN={_value(app.slug + '[bot]')}",
        ]
        if app.webhook_secret is not None:
            lines.append(f"KEVOLVE_WEBHOOK_SECRET_FILE={_value(str(self.secret))}")
        else:
            lines.append("# GitHub made no webhook secret: set one in the App's settings, write")
            lines.append(f"# it to {self.secret} (chmod 600) and uncomment this line.")
            lines.append(f"# KEVOLVE_WEBHOOK_SECRET_FILE={_value(str(self.secret))}")
        return "\n".join(lines) + "\n"


def clash_message(clash: list[Path]) -> str:
    """What to say when files would be overwritten."""
    names = ", ".join(str(path) for path in clash)
    return (
        f"{names} already exist{'s' if len(clash) == 1 else ''}: kevolve does not overwrite an "
        "App's credentials. Fix: pass --dir with another directory, move them away, or pass "
        "--force to replace them"
    )


def _value(text: str) -> str:
    """`text` as a value both a shell and systemd read back unchanged."""
    if _PLAIN.fullmatch(text):
        return text
    escaped = re.sub(r'(["\\$`])', r"\\\1", text)
    return f'"{escaped}"'


def _write_private(path: Path, text: str, force: bool) -> None:
    """Write `text` to `path` created with mode 600 (never readable by others, even for a
    moment); with `force` through a new file renamed over the old one."""
    target = path.with_name(f".{path.name}.{os.getpid()}.new") if force else path
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise AppFilesError(clash_message([path])) from None
    except OSError as exc:
        raise AppFilesError(f"cannot write {path}: {exc.strerror}. Fix: pass --dir") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if force:
            os.replace(target, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            target.unlink()
        raise AppFilesError(f"cannot write {path}: {exc.strerror}") from None
