"""The environment variables `kevolve serve` reads: each with its default and meaning, for
`serve --help` (a test holds this list to what `bot.settings` reads)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class Variable:
    """One setting: its name, its default in words, and what it means."""

    name: str
    default: str
    meaning: str


SECRETS = (
    Variable(
        "KEVOLVE_WEBHOOK_SECRET_FILE",
        "required",
        "file holding the App's webhook secret (mode 600; KEVOLVE_WEBHOOK_SECRET, the value "
        "itself, works with a warning)",
    ),
    Variable(
        "KEVOLVE_DATABASE_URL_FILE",
        "sqlite:///kevolve.db",
        "file holding the SQLAlchemy URL of the database (SQLite or PostgreSQL); "
        "KEVOLVE_DATABASE_URL for the value",
    ),
    Variable(
        "KEVOLVE_GITHUB_PRIVATE_KEY_PATH",
        "none: no GitHub calls",
        "the App's private key file (mode 600)",
    ),
    Variable(
        "KEVOLVE_LLM_API_KEY_FILE",
        "none",
        "file holding the jobs' LLM key (KEVOLVE_LLM_API_KEY or OPENAI_API_KEY for the "
        "value); a local job gets it on its stdin, never in its environment",
    ),
    Variable(
        "KEVOLVE_GITHUB_CLIENT_SECRET_FILE",
        "none",
        "file holding the App's OAuth client secret, for dashboard sign-in "
        "(KEVOLVE_GITHUB_CLIENT_SECRET for the value)",
    ),
)

GITHUB = (
    Variable("KEVOLVE_GITHUB_APP_ID", "none", "the App's id (kevolve app create writes it)"),
    Variable("KEVOLVE_GITHUB_API_URL", "https://api.github.com", "GitHub's (or GHES') API"),
    Variable("KEVOLVE_BOT_LOGIN", "kevolve[bot]", "the App's own account (its comments)"),
    Variable(
        "KEVOLVE_GITHUB_URL",
        "from the API URL (https://github.com)",
        "GitHub's web address: its sign-in pages and links to runs and pulls",
    ),
)

DASHBOARD = (
    Variable(
        "KEVOLVE_DASHBOARD",
        "auto",
        "who sees /dashboard: local (requests from this host to a loopback address, not "
        "through a proxy), github (sign in with GitHub; each person sees the repos they can "
        "read), off; auto is github when the client id and secret are set, else local",
    ),
    Variable(
        "KEVOLVE_GITHUB_CLIENT_ID",
        "none",
        "the App's OAuth client id, for dashboard sign-in (its callback URL: "
        "<KEVOLVE_BOT_URL>/dashboard/signin/callback)",
    ),
)

JOBS = (
    Variable("KEVOLVE_HARDWARE", "local", "hardware labels jobs run on, comma separated"),
    Variable("KEVOLVE_WORKDIR", ".kevolve-bot", "checkouts, search state and lessons"),
    Variable("KEVOLVE_CACHE_DIR", "<workdir>/cache", "measured device ceilings and caches"),
    Variable("KEVOLVE_DEVICE", "auto", "where the local runner judges: cpu, cuda, cuda:N, auto"),
    Variable("KEVOLVE_BUDGET", "200", "candidates a search judges unless a command says"),
    Variable("KEVOLVE_JOB_MINUTES", "none", "minutes per op and job"),
    Variable("KEVOLVE_JOB_SLOTS", "1 (8 with actions)", "jobs at once"),
    Variable("KEVOLVE_JOB_USER", "kevolve-job", "the OS user local jobs run as"),
    Variable(
        "KEVOLVE_JOB_AS_BOT_USER",
        "off",
        "1: jobs run as the bot's own user (unsafe: repo code beside the bot's secrets)",
    ),
    Variable("KEVOLVE_PUBLISH_UNTIMED", "off", "1: propose correctness-only (CPU) results"),
    Variable("KEVOLVE_MAX_OPEN_PRS", "5", "open kevolve pull requests per repo"),
    Variable("KEVOLVE_MAX_PRS_PER_HOUR", "3", "pull requests opened per repo per hour"),
    Variable(
        "KEVOLVE_KEEP_JOBS",
        "200",
        "finished jobs whose search state (every candidate, prompt and reply) is kept for the "
        "dashboard, under <workdir>/jobs/finished, the oldest removed first; 0: none",
    ),
    Variable("KEVOLVE_KEEP_DAYS", "30", "days a finished job's search state is kept"),
)

LLM = (
    Variable(
        "KEVOLVE_LLM_BASE_URL",
        "none: the tuner alone",
        "the jobs' OpenAI-compatible endpoint (with KEVOLVE_LLM_MODEL)",
    ),
    Variable("KEVOLVE_LLM_MODEL", "none", "'name', or 'a:0.7,b:0.3' for a weighted ensemble"),
    Variable("KEVOLVE_LLM_MAX_USD", "none", "a job's LLM cost cap per op, in USD"),
    Variable(
        "KEVOLVE_LLM_PRICES",
        "none: cost 0",
        "'model=IN,OUT;other=IN,OUT': USD per million input and output tokens",
    ),
)

RUNNERS = (
    Variable("KEVOLVE_RUNNER", "local", "local (this host) or actions (self-hosted runners)"),
    Variable("KEVOLVE_BOT_URL", "none", "the bot's public URL, where actions runners post"),
    Variable("KEVOLVE_WORKFLOW", "kevolve-search.yml", "the search workflow's file name"),
    Variable("KEVOLVE_RUNNER_ATTEMPTS", "3", "dispatches per op before a job fails"),
    Variable("KEVOLVE_RUNNER_PICKUP_S", "900", "seconds until a run nobody picked up is lost"),
    Variable("KEVOLVE_RUNNER_GRACE_S", "120", "seconds a finished run has to post its result"),
    Variable(
        "KEVOLVE_RUNNER_REQUIREMENT",
        "-r .github/kevolve-requirements.txt",
        "what a runner installs, pinned with hashes",
    ),
    Variable("KEVOLVE_FLEET_POLL_S", "300", "seconds between runner-label polls; 0: off"),
)

LIMITS = (
    Variable("KEVOLVE_COMMANDS_PER_COMMENT", "5", "/kevolve commands read per comment"),
    Variable("KEVOLVE_QUEUED_PER_REPO", "20", "new, queued or running jobs per repo"),
    Variable("KEVOLVE_QUEUED_PER_USER", "10", "the same, per person who asked"),
    Variable("KEVOLVE_MAX_BUDGET", "1000", "evaluations one command may ask for"),
    Variable("KEVOLVE_REFUSAL_EVERY_S", "3600", "seconds between refusal answers per person"),
    Variable("KEVOLVE_DELIVERY_RETRY_S", "30,120,600", "retry delays of a failed delivery"),
    Variable("KEVOLVE_WEBHOOK_MAX_BYTES", "26214400", "largest webhook body accepted"),
)

GROUPS = (
    ("Secrets (files only the bot's user reads)", SECRETS),
    ("GitHub", GITHUB),
    ("Dashboard", DASHBOARD),
    ("Jobs", JOBS),
    ("The jobs' LLM", LLM),
    ("Self-hosted runners (KEVOLVE_RUNNER=actions)", RUNNERS),
    ("Limits", LIMITS),
)


def variables_help(width: int = 100) -> str:
    """Every variable by group, with its default and meaning, wrapped for a terminal."""
    lines = ["environment (default in brackets):"]
    for title, group in GROUPS:
        lines.append(f"\n  {title}:")
        for v in group:
            text = f"{v.name} [{v.default}]: {v.meaning}"
            lines += textwrap.wrap(text, width, initial_indent="    ", subsequent_indent="      ")
    return "\n".join(lines)
