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
    llm_base_url: str | None  # KEVOLVE_LLM_BASE_URL
    llm_model: str | None  # KEVOLVE_LLM_MODEL: "name" or "name:weight,name:weight"
    llm_api_key: str  # KEVOLVE_LLM_API_KEY, else OPENAI_API_KEY


def cli_settings(env: Mapping[str, str] | None = None) -> CliSettings:
    """Settings for the `kevolve` command from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    if env.get("KEVOLVE_CACHE_DIR"):
        cache = Path(env["KEVOLVE_CACHE_DIR"])
    elif env.get("XDG_CACHE_HOME"):
        cache = Path(env["XDG_CACHE_HOME"]) / "kevolve"
    else:
        cache = Path(env.get("HOME", "/tmp")) / ".cache" / "kevolve"
    return CliSettings(
        cache_dir=cache,
        llm_base_url=env.get("KEVOLVE_LLM_BASE_URL") or None,
        llm_model=env.get("KEVOLVE_LLM_MODEL") or None,
        llm_api_key=env.get("KEVOLVE_LLM_API_KEY") or env.get("OPENAI_API_KEY") or "",
    )


@dataclass(frozen=True)
class BotSettings:
    """What `kevolve serve` takes from the environment."""

    webhook_secret: str  # KEVOLVE_WEBHOOK_SECRET: required; the service refuses to start without
    database_url: str  # KEVOLVE_DATABASE_URL: SQLAlchemy URL, a SQLite file by default
    github_app_id: str | None  # KEVOLVE_GITHUB_APP_ID
    github_private_key_path: Path | None  # KEVOLVE_GITHUB_PRIVATE_KEY_PATH
    github_api_url: str  # KEVOLVE_GITHUB_API_URL


def bot_settings(env: Mapping[str, str] | None = None) -> BotSettings:
    """Settings for the GitHub App service from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    key_path = env.get("KEVOLVE_GITHUB_PRIVATE_KEY_PATH")
    return BotSettings(
        webhook_secret=env.get("KEVOLVE_WEBHOOK_SECRET", ""),
        database_url=env.get("KEVOLVE_DATABASE_URL") or "sqlite:///kevolve.db",
        github_app_id=env.get("KEVOLVE_GITHUB_APP_ID") or None,
        github_private_key_path=Path(key_path) if key_path else None,
        github_api_url=env.get("KEVOLVE_GITHUB_API_URL") or "https://api.github.com",
    )
