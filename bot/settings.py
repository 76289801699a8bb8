"""Settings read from the environment: the one place kevolve looks at environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CliSettings:
    """What the command line takes from the environment."""

    cache_dir: Path  # measured device ceilings and other per-machine facts


def cli_settings(env: Mapping[str, str] | None = None) -> CliSettings:
    """Settings for the `kevolve` command from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    base = env.get("KEVOLVE_CACHE_DIR") or env.get("XDG_CACHE_HOME")
    cache = Path(base) / "kevolve" if base and "KEVOLVE_CACHE_DIR" not in env else None
    if "KEVOLVE_CACHE_DIR" in env:
        cache = Path(env["KEVOLVE_CACHE_DIR"])
    if cache is None:
        cache = Path(env.get("HOME", "/tmp")) / ".cache" / "kevolve"
    return CliSettings(cache_dir=cache)
