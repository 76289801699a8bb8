"""A repo's kevolve settings beside its ops: hardware labels, schedule, staleness and executor.

Read, without running any code, from the file `harness.spec.load` reads the ops from: the top level
of kevolve.toml, else `[tool.kevolve]` of pyproject.toml. Keys this reader does not know are left to
whoever owns them, except a near-miss of a known one ("hardwares"): a typo would otherwise
silently mean the default.

Hardware labels name self-hosted runners. A *GPU label* is any runner label except the ones
GitHub gives every self-hosted runner: `self-hosted`, the OS (`linux`, `windows`, `macos`) and
the architecture (`x64`, `x86`, `arm`, `arm64`), compared without case (GitHub shows `Linux`,
`X64`). `hardware = "auto"` means every GPU label the repo's runners carry.

`require_beats` names what a pull request's kernel must be faster than: `"kernel"` (the default:
the repo's current kernel, by the publish gate) or `"compile"` (that too, and torch.compile of the
op's reference on every timed case, in its faster mode): a kernel that loses to what a user gets
from one line of PyTorch is not proposed.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kevolve.bot.cron import Cron, CronError, parse_cron
from kevolve.harness.search.result import MIN_SPEEDUP
from kevolve.harness.spec.checks import SpecError, describe, did_you_mean, toml_path
from kevolve.harness.spec.load import load_problems
from kevolve.harness.spec.problem import Problem

__all__ = ["AUTO", "RepoConfig", "RepoSettings", "is_gpu_label", "load_config", "load_settings"]

AUTO: Literal["auto"] = "auto"
EXECUTORS = ("local", "ray")
RUNNER_DEFAULT_LABELS = frozenset(
    {"self-hosted", "linux", "windows", "macos", "x64", "x86", "arm", "arm64"}
)
REQUIRE_BEATS = ("kernel", "compile")
_KEYS = ("ops", "hardware", "schedule", "stale_days", "executor", "min_speedup", "require_beats")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_EXAMPLES = {
    "hardware": 'hardware = ["nvidia-h100", "nvidia-a10g"] (or hardware = "auto")',
    "schedule": 'schedule = "0 3 * * 1" (03:00 UTC every Monday)',
    "stale_days": "stale_days = 7",
    "executor": 'executor = "local" (or "ray")',
    "min_speedup": "min_speedup = 1.05 (at least 1.0)",
    "require_beats": 'require_beats = "compile" (or "kernel", the default)',
}

Hardware = tuple[str, ...] | Literal["auto"] | None


def is_gpu_label(label: str) -> bool:
    """Whether a runner label names hardware, i.e. is not one GitHub gives every runner."""
    return label.casefold() not in RUNNER_DEFAULT_LABELS


@dataclass(frozen=True)
class RepoSettings:
    """The repo-wide keys of a kevolve config, defaults filled in."""

    hardware: Hardware = None  # None: the bot's own labels (KEVOLVE_HARDWARE)
    schedule: Cron | None = None  # when to look for stale or outdated results
    stale_days: float = 7.0  # a result older than this is re-searched at a schedule tick
    executor: str = "local"
    min_speedup: float = MIN_SPEEDUP  # the gain a pull request must show, at its low end
    require_beats: str = "kernel"  # one of REQUIRE_BEATS: what a proposed kernel must beat

    def labels(self, default: Sequence[str], listed: Iterable[str]) -> tuple[str, ...]:
        """The labels jobs run on: the declared ones, the default, or the GPU labels `listed`."""
        if self.hardware == AUTO:
            return tuple(sorted({label for label in listed if is_gpu_label(label)}))
        return tuple(default if self.hardware is None else self.hardware)

    def wants(self, label: str, default: Sequence[str]) -> bool:
        """Whether jobs run on `label`: it is declared (or default), or "auto" and a GPU label."""
        if self.hardware == AUTO:
            return is_gpu_label(label)
        return label in (default if self.hardware is None else self.hardware)


@dataclass(frozen=True)
class RepoConfig:
    """Everything a repo's kevolve config declares: its ops and the settings beside them."""

    ops: tuple[Problem, ...]
    settings: RepoSettings


def load_config(repo: Path) -> RepoConfig:
    """The ops and settings of a checked-out repo; a SpecError names what is wrong."""
    settings = load_settings(repo)
    return RepoConfig(tuple(load_problems(repo)), settings)


def load_settings(repo: Path) -> RepoSettings:
    """The settings of a checked-out repo's config; defaults where it has none."""
    config = next(
        (repo / n for n in ("kevolve.toml", "pyproject.toml") if (repo / n).is_file()), None
    )
    if config is None:
        return RepoSettings()
    prefix = "tool.kevolve" if config.name == "pyproject.toml" else ""
    table = _table(config, prefix)
    _near_misses(config, prefix, table)
    field = _Field(config, prefix)
    return RepoSettings(
        hardware=field.hardware(table["hardware"]) if "hardware" in table else None,
        schedule=field.schedule(table["schedule"]) if "schedule" in table else None,
        stale_days=field.stale_days(table.get("stale_days", RepoSettings.stale_days)),
        executor=field.executor(table.get("executor", RepoSettings.executor)),
        min_speedup=field.min_speedup(table.get("min_speedup", RepoSettings.min_speedup)),
        require_beats=field.require_beats(table.get("require_beats", RepoSettings.require_beats)),
    )


def _table(config: Path, prefix: str) -> dict[str, object]:
    """The kevolve table of the file (empty when there is none)."""
    try:
        with config.open("rb") as f:
            data: dict[str, object] = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        fix = "correct the syntax at that line (see https://toml.io)"
        raise SpecError(config, None, f"is not valid TOML: {e}", fix) from e
    if not prefix:
        return data
    tool = data.get("tool")
    table = tool.get("kevolve") if isinstance(tool, dict) else None
    if table is not None and not isinstance(table, dict):
        raise SpecError(
            config, prefix, f"expected a table, found {describe(table)}", "[tool.kevolve]"
        )
    return table or {}


def _near_misses(config: Path, prefix: str, table: dict[str, object]) -> None:
    """A SpecError for an unknown key that looks like a misspelt known one."""
    for key in table:
        hint = did_you_mean(key, _KEYS) if key not in _KEYS else ""
        if hint:
            fix = f"{hint}known keys are: {', '.join(_KEYS)}"
            raise SpecError(config, toml_path(prefix, key), "unknown key", fix)


@dataclass(frozen=True)
class _Field:
    """Checks of the values of one config file's keys."""

    path: Path
    prefix: str

    def error(self, key: str, problem: str, fix: str = "") -> SpecError:
        """A SpecError about `key`; the fix defaults to an example of it."""
        return SpecError(
            self.path, toml_path(self.prefix, key), problem, fix or f"write {_EXAMPLES[key]}"
        )

    def hardware(self, value: object) -> tuple[str, ...] | Literal["auto"]:
        """ "auto", or a non-empty list of runner labels that name hardware."""
        if value == AUTO:
            return AUTO
        if not isinstance(value, list) or not value:
            found = "an empty list" if value == [] else describe(value)
            if isinstance(value, str):
                found = f"the string {value!r}"
            raise self.error(
                "hardware", f'expected "auto" or a list of runner labels, found {found}'
            )
        for label in value:
            self._label(label)
        return tuple(dict.fromkeys(value))

    def _label(self, label: object) -> None:
        """One runner label that names hardware."""
        if label == AUTO:
            raise self.error("hardware", '"auto" inside a list', 'write hardware = "auto" alone')
        if not isinstance(label, str) or not _LABEL.fullmatch(label):
            shown = repr(label) if isinstance(label, str) else describe(label)
            problem = f"{shown} is not a runner label (letters, digits, '.', '_', '-')"
            raise self.error("hardware", problem)
        if not is_gpu_label(label):
            problem = f"'{label}' is a label GitHub gives every self-hosted runner, not hardware"
            raise self.error(
                "hardware", problem, "name the label your GPU runners carry, e.g. nvidia-h100"
            )

    def schedule(self, value: object) -> Cron:
        """A five-field cron expression."""
        if not isinstance(value, str):
            raise self.error(
                "schedule", f"expected a cron expression string, found {describe(value)}"
            )
        try:
            return parse_cron(value)
        except CronError as e:
            raise self.error("schedule", f"'{value}' is not a cron expression: {e}") from None

    def min_speedup(self, value: object) -> float:
        """A speedup of at least 1.0 (and below 100: a typo otherwise)."""
        number = not isinstance(value, bool) and isinstance(value, int | float)
        if not (number and isinstance(value, int | float) and 1.0 <= value < 100.0):
            shown = repr(value) if number else describe(value)
            raise self.error(
                "min_speedup", f"expected a speedup of at least 1.0 (e.g. 1.05), found {shown}"
            )
        return float(value)

    def require_beats(self, value: object) -> str:
        """One of REQUIRE_BEATS."""
        if value not in REQUIRE_BEATS:
            shown = repr(value) if isinstance(value, str) else describe(value)
            hint = did_you_mean(value, REQUIRE_BEATS) if isinstance(value, str) else ""
            fix = f'{hint}write require_beats = "compile" (or "kernel", the default)'
            raise self.error("require_beats", f"unknown requirement {shown}", fix)
        return str(value)

    def stale_days(self, value: object) -> float:
        """A positive number of days."""
        number = not isinstance(value, bool) and isinstance(value, int | float)
        if not (number and isinstance(value, int | float) and 0 < value < math.inf):
            shown = repr(value) if number else describe(value)
            raise self.error("stale_days", f"expected a positive number of days, found {shown}")
        return float(value)

    def executor(self, value: object) -> str:
        """One of EXECUTORS."""
        if value not in EXECUTORS:
            shown = repr(value) if isinstance(value, str) else describe(value)
            hint = did_you_mean(value, EXECUTORS) if isinstance(value, str) else ""
            raise self.error(
                "executor", f"unknown executor {shown}", f"{hint}use one of: {', '.join(EXECUTORS)}"
            )
        return str(value)
