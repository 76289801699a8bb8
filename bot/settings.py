"""Settings read from the environment: the one place kevolve looks at environment variables."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kevolve.bot.vault import exposed, secret
from kevolve.harness.search.llm import parse_prices

# Read once, then wiped from the bot's environment (`bot.hardening`): no child inherits them.
SECRET_VARIABLES = (
    "KEVOLVE_WEBHOOK_SECRET",
    "KEVOLVE_DATABASE_URL",
    "KEVOLVE_LLM_API_KEY",
    "OPENAI_API_KEY",
    "KEVOLVE_GITHUB_CLIENT_SECRET",
)
DASHBOARD_MODES = ("auto", "local", "github", "off")


class SettingsError(ValueError):
    """An environment variable kevolve cannot use, with the fix."""


@dataclass(frozen=True)
class CliSettings:
    """What the command line takes from the environment."""

    cache_dir: Path  # measured device ceilings and other per-machine facts
    llm_base_url: str | None  # KEVOLVE_LLM_BASE_URL
    llm_model: str | None  # KEVOLVE_LLM_MODEL: "name" or "name:weight,name:weight"
    llm_api_key: str  # KEVOLVE_LLM_API_KEY, else OPENAI_API_KEY
    llm_command: str | None = None  # KEVOLVE_LLM_COMMAND: run per prompt, stdin to stdout
    # KEVOLVE_LLM_COMMAND_ENV: names of variables the command gets (its key, say), comma-separated
    llm_command_env: tuple[tuple[str, str], ...] = ()
    llm_timeout_s: float = 600.0  # KEVOLVE_LLM_TIMEOUT: seconds a command may take per prompt
    progress_every_s: float = 30.0  # KEVOLVE_PROGRESS_EVERY_S: log lines off a terminal


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
        llm_command=env.get("KEVOLVE_LLM_COMMAND") or None,
        llm_command_env=_passed(env, env.get("KEVOLVE_LLM_COMMAND_ENV", "")),
        llm_timeout_s=_seconds(env.get("KEVOLVE_LLM_TIMEOUT"), 600.0, "KEVOLVE_LLM_TIMEOUT"),
        progress_every_s=_seconds(
            env.get("KEVOLVE_PROGRESS_EVERY_S"), 30.0, "KEVOLVE_PROGRESS_EVERY_S"
        ),
    )


def _prices(text: str) -> tuple[tuple[str, float, float], ...]:
    """Per-model prices from `KEVOLVE_LLM_PRICES`; SettingsError naming the fix."""
    try:
        return parse_prices([p.strip() for p in text.split(";") if p.strip()], "KEVOLVE_LLM_PRICES")
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _passed(env: Mapping[str, str], names: str) -> tuple[tuple[str, str], ...]:
    """The named variables that are set, as (name, value) pairs for a command's environment."""
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    return tuple((n, env[n]) for n in wanted if n in env)


def _seconds(text: str | None, default: float, name: str) -> float:
    """A positive number of seconds from a variable; SettingsError naming the fix."""
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise SettingsError(
            f"{name}={text!r} is not a positive number of seconds. Fix: e.g. {name}=600"
        )
    return value


# What a runner installs: a requirements file in the repo, every line pinned with its hashes
# (`pip install --require-hashes -r`), or kevolve's own wheel pinned by version and hash (with
# `--no-deps`: its dependencies come with the host). kevolve-search.yml checks the same forms.
RUNNER_REQUIREMENT = "-r .github/kevolve-requirements.txt"
_HASH = r"--hash=(sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})"
PINNED_KEVOLVE = re.compile(
    rf"kevolve(\[[a-z0-9_,-]{{1,60}}\])?==[0-9][0-9A-Za-z.+!]{{0,40}}( {_HASH})+"
)
REQUIREMENTS_FILE = re.compile(r"-r (?!.*\.\.)[A-Za-z0-9_.][A-Za-z0-9._/-]{0,199}\.txt")


def pinned_requirement(text: str | None) -> str:
    """The runner requirement, default when unset; ValueError with the fix when not pinned."""
    if not text:
        return RUNNER_REQUIREMENT
    if PINNED_KEVOLVE.fullmatch(text) or REQUIREMENTS_FILE.fullmatch(text):
        return text
    raise ValueError(
        f"KEVOLVE_RUNNER_REQUIREMENT={text[:200]!r} is not pinned: a runner would install "
        "whatever the package index serves under that name. Fix: set it to "
        "'kevolve==X.Y.Z --hash=sha256:<the wheel's sha256>' or to '-r <a requirements file in "
        "the repo whose every line is pinned with --hash>' (unset: "
        f"'{RUNNER_REQUIREMENT}')"
    )


@dataclass(frozen=True)
class BotSettings:
    """What `kevolve serve` takes from the environment."""

    webhook_secret: str  # KEVOLVE_WEBHOOK_SECRET[_FILE]: required; no start without
    database_url: str  # KEVOLVE_DATABASE_URL[_FILE]: SQLAlchemy URL, a SQLite file by default
    github_app_id: str | None  # KEVOLVE_GITHUB_APP_ID
    github_private_key_path: Path | None  # KEVOLVE_GITHUB_PRIVATE_KEY_PATH
    github_api_url: str  # KEVOLVE_GITHUB_API_URL
    hardware: tuple[str, ...] = ("local",)  # KEVOLVE_HARDWARE: labels, comma separated
    workdir: Path = Path(".kevolve-bot")  # KEVOLVE_WORKDIR: checkouts and search state
    cache_dir: Path = Path(".kevolve-bot/cache")  # KEVOLVE_CACHE_DIR: device ceilings
    device: str = "auto"  # KEVOLVE_DEVICE: where the local runner judges candidates
    budget: int = 200  # KEVOLVE_BUDGET: candidates per search unless a command says otherwise
    job_minutes: float | None = None  # KEVOLVE_JOB_MINUTES: per op and job
    max_open_prs: int = 5  # KEVOLVE_MAX_OPEN_PRS: open kevolve pull requests per repo
    max_prs_per_hour: int = 3  # KEVOLVE_MAX_PRS_PER_HOUR: opened per repo per hour
    publish_untimed: bool = False  # KEVOLVE_PUBLISH_UNTIMED=1: propose CPU dry-run results
    bot_login: str = "kevolve[bot]"  # KEVOLVE_BOT_LOGIN: the app's own account
    runner: str = "local"  # KEVOLVE_RUNNER: "local" (this host) or "actions" (self-hosted runners)
    bot_url: str | None = None  # KEVOLVE_BOT_URL: where runners post results (actions)
    workflow: str = "kevolve-search.yml"  # KEVOLVE_WORKFLOW: the search workflow's file name
    runner_attempts: int = 3  # KEVOLVE_RUNNER_ATTEMPTS: dispatches per op before a job fails
    runner_pickup_s: float = 900.0  # KEVOLVE_RUNNER_PICKUP_S: a run nobody picks up is lost
    runner_grace_s: float = 120.0  # KEVOLVE_RUNNER_GRACE_S: a finished run's time to post
    runner_requirement: str = RUNNER_REQUIREMENT  # KEVOLVE_RUNNER_REQUIREMENT: pinned, see below
    job_slots: int = 1  # KEVOLVE_JOB_SLOTS: jobs at once (default 1 local, 8 with actions)
    fleet_poll_s: float = 300.0  # KEVOLVE_FLEET_POLL_S: runner labels and schedules; 0: off
    keep_jobs: int = 200  # KEVOLVE_KEEP_JOBS: finished jobs whose search state is kept; 0: none
    keep_days: float = 30.0  # KEVOLVE_KEEP_DAYS: how long a finished job's state is kept
    commands_per_comment: int = 5  # KEVOLVE_COMMANDS_PER_COMMENT: the rest are ignored, and said
    queued_per_repo: int = 20  # KEVOLVE_QUEUED_PER_REPO: new, queued or running jobs per repo
    queued_per_user: int = 10  # KEVOLVE_QUEUED_PER_USER: the same, per person who asked
    max_budget: int = 1000  # KEVOLVE_MAX_BUDGET: evaluations one command may ask for
    refusal_every_s: float = 3600.0  # KEVOLVE_REFUSAL_EVERY_S: one refusal answer per person
    delivery_retry_s: tuple[float, ...] = (30.0, 120.0, 600.0)  # KEVOLVE_DELIVERY_RETRY_S
    webhook_max_bytes: int = 25 * 1024 * 1024  # KEVOLVE_WEBHOOK_MAX_BYTES: GitHub's own cap
    job_user: str = "kevolve-job"  # KEVOLVE_JOB_USER: the OS user local jobs run as
    job_as_bot_user: bool = False  # KEVOLVE_JOB_AS_BOT_USER=1: jobs as the bot's user (unsafe)
    llm_api_key: str = ""  # KEVOLVE_LLM_API_KEY[_FILE], else OPENAI_API_KEY: for the jobs' LLM
    llm_base_url: str | None = None  # KEVOLVE_LLM_BASE_URL: the jobs' OpenAI-compatible endpoint
    llm_model: str | None = None  # KEVOLVE_LLM_MODEL: "name" or "name:weight,name:weight"
    llm_max_usd: float | None = None  # KEVOLVE_LLM_MAX_USD: a job's LLM cost cap per op
    # KEVOLVE_LLM_PRICES: "model=IN,OUT;other=IN,OUT", USD per million input/output tokens
    llm_prices: tuple[tuple[str, float, float], ...] = ()
    exposed: tuple[str, ...] = ()  # the secret variables given as values, not as files
    github_url: str = "https://github.com"  # KEVOLVE_GITHUB_URL: GitHub's web pages (sign-in)
    dashboard: str = "auto"  # KEVOLVE_DASHBOARD: auto, local, github or off
    github_client_id: str | None = None  # KEVOLVE_GITHUB_CLIENT_ID: the App's OAuth client
    github_client_secret: str = ""  # KEVOLVE_GITHUB_CLIENT_SECRET[_FILE]: its secret


def bot_settings(env: Mapping[str, str] | None = None) -> BotSettings:
    """Settings for the GitHub App service from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    key_path = env.get("KEVOLVE_GITHUB_PRIVATE_KEY_PATH")
    workdir = Path(env.get("KEVOLVE_WORKDIR") or ".kevolve-bot")
    api_url = env.get("KEVOLVE_GITHUB_API_URL") or "https://api.github.com"
    return BotSettings(
        webhook_secret=secret(env, "KEVOLVE_WEBHOOK_SECRET"),
        database_url=secret(env, "KEVOLVE_DATABASE_URL") or "sqlite:///kevolve.db",
        github_app_id=env.get("KEVOLVE_GITHUB_APP_ID") or None,
        github_private_key_path=Path(key_path) if key_path else None,
        github_api_url=api_url,
        hardware=tuple(
            h.strip() for h in env.get("KEVOLVE_HARDWARE", "local").split(",") if h.strip()
        ),
        workdir=workdir,
        cache_dir=Path(env["KEVOLVE_CACHE_DIR"])
        if env.get("KEVOLVE_CACHE_DIR")
        else workdir / "cache",
        device=env.get("KEVOLVE_DEVICE") or "auto",
        budget=_count(env, "KEVOLVE_BUDGET", 200),
        job_minutes=_positive(env, "KEVOLVE_JOB_MINUTES"),
        max_open_prs=_count(env, "KEVOLVE_MAX_OPEN_PRS", 5),
        max_prs_per_hour=_count(env, "KEVOLVE_MAX_PRS_PER_HOUR", 3),
        publish_untimed=env.get("KEVOLVE_PUBLISH_UNTIMED", "") in ("1", "true", "yes"),
        bot_login=env.get("KEVOLVE_BOT_LOGIN") or "kevolve[bot]",
        **_runner_settings(env),
        fleet_poll_s=_seconds_or_off(env, "KEVOLVE_FLEET_POLL_S", 300.0),
        keep_jobs=_count_or_none(env, "KEVOLVE_KEEP_JOBS", 200),
        keep_days=_positive(env, "KEVOLVE_KEEP_DAYS") or 30.0,
        job_user=env.get("KEVOLVE_JOB_USER") or "kevolve-job",
        job_as_bot_user=env.get("KEVOLVE_JOB_AS_BOT_USER", "") in ("1", "true", "yes"),
        llm_api_key=secret(env, "KEVOLVE_LLM_API_KEY") or env.get("OPENAI_API_KEY", ""),
        llm_base_url=env.get("KEVOLVE_LLM_BASE_URL") or None,
        llm_model=env.get("KEVOLVE_LLM_MODEL") or None,
        llm_max_usd=_positive(env, "KEVOLVE_LLM_MAX_USD"),
        llm_prices=_prices(env.get("KEVOLVE_LLM_PRICES", "")),
        exposed=exposed(env, SECRET_VARIABLES),
        **_cap_settings(env),
        **_dashboard_settings(env, api_url),
    )


def _dashboard_settings(env: Mapping[str, str], api_url: str) -> dict[str, Any]:
    """Who may see the dashboard, and the App's OAuth client for signing people in."""
    client_id = env.get("KEVOLVE_GITHUB_CLIENT_ID") or None
    client_secret = secret(env, "KEVOLVE_GITHUB_CLIENT_SECRET")
    mode = (env.get("KEVOLVE_DASHBOARD") or "auto").strip().lower()
    if mode not in DASHBOARD_MODES:
        raise SettingsError(
            f"KEVOLVE_DASHBOARD={mode[:40]!r} is unknown. Fix: set it to "
            f"{', '.join(DASHBOARD_MODES)}"
        )
    return {
        "github_url": env.get("KEVOLVE_GITHUB_URL") or web_url(api_url),
        "dashboard": mode,
        "github_client_id": client_id,
        "github_client_secret": client_secret,
    }


def web_url(api_url: str) -> str:
    """GitHub's web address for its API address: github.com for api.github.com, the server
    itself for a GitHub Enterprise Server's `/api/v3`."""
    base = api_url.rstrip("/")
    if base.endswith("/api/v3"):
        return base.removesuffix("/api/v3")
    return base.replace("://api.", "://", 1)


def _cap_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The caps on what people and webhooks can ask of the bot."""
    return {
        "commands_per_comment": _count(env, "KEVOLVE_COMMANDS_PER_COMMENT", 5),
        "queued_per_repo": _count(env, "KEVOLVE_QUEUED_PER_REPO", 20),
        "queued_per_user": _count(env, "KEVOLVE_QUEUED_PER_USER", 10),
        "max_budget": _count(env, "KEVOLVE_MAX_BUDGET", 1000),
        "refusal_every_s": _positive(env, "KEVOLVE_REFUSAL_EVERY_S") or 3600.0,
        "delivery_retry_s": _delays(env, "KEVOLVE_DELIVERY_RETRY_S", (30.0, 120.0, 600.0)),
        "webhook_max_bytes": _count(env, "KEVOLVE_WEBHOOK_MAX_BYTES", 25 * 1024 * 1024),
    }


def _delays(env: Mapping[str, str], name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    """Comma-separated seconds (one retry each; empty: none), else `default` when unset."""
    text = env.get(name)
    if text is None:
        return default
    try:
        delays = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        delays = (-1.0,)
    if any(not delay >= 0 for delay in delays):
        raise ValueError(
            f"{name}={text!r} is not a list of seconds. Fix: set it to e.g. 30,120,600"
        )
    return delays


def _positive(env: Mapping[str, str], name: str) -> float | None:
    """A positive number from the environment, None when unset; ValueError naming the variable."""
    text = env.get(name)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ValueError(
            f"{name}={text!r} is not a positive number. Fix: set it to e.g. 3 or unset it"
        )
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    """A positive whole number from the environment, else `default`."""
    value = _positive(env, name)
    if value is not None and value != int(value):
        raise ValueError(f"{name}={env[name]!r} is not a whole number. Fix: set it to e.g. 3")
    return default if value is None else int(value)


def _count_or_none(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole number from the environment, 0 allowed (none), else `default` when unset."""
    if env.get(name, "").strip() == "0":
        return 0
    return _count(env, name, default)


def _runner_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Where jobs run; a ValueError naming the variable and the fix when that is unclear."""
    runner = env.get("KEVOLVE_RUNNER") or "local"
    if runner not in ("local", "actions"):
        raise ValueError(f"KEVOLVE_RUNNER={runner!r} is unknown. Fix: set it to local or actions")
    bot_url = env.get("KEVOLVE_BOT_URL") or None
    if runner == "actions" and not (bot_url and bot_url.startswith(("http://", "https://"))):
        raise ValueError(
            "KEVOLVE_RUNNER=actions needs KEVOLVE_BOT_URL: the bot's public http(s) URL, "
            "where the search workflow posts its results"
        )
    return {
        "runner": runner,
        "bot_url": bot_url,
        "workflow": env.get("KEVOLVE_WORKFLOW") or "kevolve-search.yml",
        "runner_attempts": _count(env, "KEVOLVE_RUNNER_ATTEMPTS", 3),
        "runner_pickup_s": _positive(env, "KEVOLVE_RUNNER_PICKUP_S") or 900.0,
        "runner_grace_s": _positive(env, "KEVOLVE_RUNNER_GRACE_S") or 120.0,
        "runner_requirement": pinned_requirement(env.get("KEVOLVE_RUNNER_REQUIREMENT")),
        # Local jobs share this host's GPU; an actions job mostly waits on a runner elsewhere.
        "job_slots": _count(env, "KEVOLVE_JOB_SLOTS", 1 if runner == "local" else 8),
    }


def _seconds_or_off(env: Mapping[str, str], name: str, default: float) -> float:
    """A positive number of seconds, 0 for off, else `default` when unset."""
    if env.get(name, "").strip() in ("0", "0.0"):
        return 0.0
    return _positive(env, name) or default
