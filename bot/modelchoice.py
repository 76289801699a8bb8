"""`ModelChoice`: what a repo asks of the bot's LLM, from `[tool.kevolve.llm]` (or `[llm]`).

The operator owns the endpoint and the key (bot settings); a repo may only choose among what that
endpoint serves and spend less: its models and their weights, a per-job cost cap (the lower of
the bot's and the repo's applies), the share of proposals the LLM makes, and whether its lessons
join the pool of every opted-in repo of its installation. Keys and endpoints in a repo's config
are refused by name: a repo's files are readable by anyone who can read the repo.

    [tool.kevolve.llm]
    models = { "gpt-5" = 0.7, "qwen3-coder" = 0.3 }   # or models = ["gpt-5"]
    max_usd = 2.0
    share = 0.5
    lessons = "installation"                        # or "repo" (the default)
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from kevolve.harness.spec.checks import SpecError, describe, did_you_mean, toml_path

LESSONS = ("repo", "installation")
_KEYS = ("models", "max_usd", "share", "lessons")
_SECRET_KEYS = ("api_key", "key", "token", "base_url", "endpoint", "url", "command", "queue")
_EXAMPLES = {
    "models": 'models = { "gpt-5" = 0.7, "qwen3-coder" = 0.3 } (or models = ["gpt-5"])',
    "max_usd": "max_usd = 2.0 (US dollars per job, above 0)",
    "share": "share = 0.5 (the fraction of proposals the LLM makes, 0 to 1)",
    "lessons": 'lessons = "installation" (or "repo", the default)',
}


@dataclass(frozen=True)
class ModelChoice:
    """A repo's LLM choices; None and empty mean the bot's own."""

    models: tuple[tuple[str, float], ...] = ()
    max_usd: float | None = None
    share: float | None = None
    lessons: str = "repo"  # one of LESSONS

    def cap(self, bot_max_usd: float | None) -> float | None:
        """The cost cap a job of this repo runs under: the lower of the bot's and the repo's."""
        caps = [c for c in (bot_max_usd, self.max_usd) if c is not None]
        return min(caps) if caps else None

    def model_text(self, bot_models: str | None) -> str | None:
        """The `name:weight,...` list a job gets: the repo's choice, else the bot's."""
        if not self.models:
            return bot_models
        return ",".join(f"{name}:{weight:g}" for name, weight in self.models)


def load_model_choice(repo: Path) -> ModelChoice:
    """The `llm` table of a checked-out repo's kevolve config; defaults where there is none.
    A SpecError names the file, the key and the fix for anything wrong."""
    config = next(
        (repo / n for n in ("kevolve.toml", "pyproject.toml") if (repo / n).is_file()), None
    )
    if config is None:
        return ModelChoice()
    prefix = "tool.kevolve.llm" if config.name == "pyproject.toml" else "llm"
    table = _llm_table(config, prefix)
    for key in table:
        if key in _SECRET_KEYS:
            raise SpecError(
                config,
                toml_path(prefix, key),
                "endpoints, commands and keys are the bot operator's, never a repository's",
                "remove it; the operator sets KEVOLVE_LLM_BASE_URL and KEVOLVE_LLM_API_KEY on "
                "the bot (or the repository secret its workflow names)",
            )
        if key not in _KEYS:
            hint = did_you_mean(key, _KEYS)
            fix = f"{hint}known keys are: {', '.join(_KEYS)}"
            raise SpecError(config, toml_path(prefix, key), "unknown key", fix)
    read = _Reader(config, prefix)
    return ModelChoice(
        models=read.models(table["models"]) if "models" in table else (),
        max_usd=read.max_usd(table["max_usd"]) if "max_usd" in table else None,
        share=read.share(table["share"]) if "share" in table else None,
        lessons=read.lessons(table.get("lessons", "repo")),
    )


def _llm_table(config: Path, prefix: str) -> dict[str, object]:
    """The file's llm table, empty when it has none."""
    try:
        with config.open("rb") as f:
            node: object = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        fix = "correct the syntax at that line (see https://toml.io)"
        raise SpecError(config, None, f"is not valid TOML: {e}", fix) from e
    for part in prefix.split("."):
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return {}
    if not isinstance(node, dict):
        raise SpecError(config, prefix, f"expected a table, found {describe(node)}", f"[{prefix}]")
    return node


@dataclass(frozen=True)
class _Reader:
    """Checks of one config file's llm values."""

    path: Path
    prefix: str

    def error(self, key: str, problem: str) -> SpecError:
        return SpecError(self.path, toml_path(self.prefix, key), problem, f"write {_EXAMPLES[key]}")

    def models(self, value: object) -> tuple[tuple[str, float], ...]:
        if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
            return tuple((name, 1.0) for name in value)
        if isinstance(value, dict) and value:
            pairs = []
            for name, weight in value.items():
                if isinstance(weight, bool) or not isinstance(weight, int | float):
                    raise self.error("models", f"the weight of {name!r} is {describe(weight)}")
                if not (math.isfinite(weight) and weight > 0):
                    raise self.error("models", f"the weight of {name!r} must be above 0")
                pairs.append((name, float(weight)))
            return tuple(pairs)
        raise self.error(
            "models", f"expected model names or names with weights, found {describe(value)}"
        )

    def max_usd(self, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error("max_usd", f"expected a number, found {describe(value)}")
        if not (math.isfinite(value) and value > 0):
            raise self.error("max_usd", f"must be above 0, not {value}")
        return float(value)

    def share(self, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error("share", f"expected a number, found {describe(value)}")
        if not 0 <= value <= 1:
            raise self.error("share", f"must be between 0 and 1, not {value}")
        return float(value)

    def lessons(self, value: object) -> str:
        if value not in LESSONS:
            raise self.error(
                "lessons", f"expected one of {', '.join(LESSONS)}, found {describe(value)}"
            )
        return str(value)
