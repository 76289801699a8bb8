"""`Messages`: every text the bot posts on GitHub, rendered from `templates/github/`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bot.slash import Command
from harness.evaluation import Verdict

MAX_CHART_POINTS = 40  # a longer history is sampled evenly, its last point kept


class Messages:
    """Markdown for pull requests, commits, check runs and comments, one template each."""

    def __init__(self, template_dir: Path) -> None:
        self.env = Environment(
            loader=FileSystemLoader(template_dir),
            undefined=StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters.update(
            ms=ms, speedup=speedup, sci=sci, pct=pct, shape=shape, duration=duration
        )

    def render(self, name: str, **context: Any) -> str:
        """The template `name`.md.j2 rendered with `context`."""
        return self.env.get_template(f"{name}.md.j2").render(**context)

    def pr_body(
        self, result: dict[str, Any], repro_command: str, variants: Mapping[str, Any] | None = None
    ) -> str:
        """The pull request description; `variants`: the kernel per GPU kind it carries, if any."""
        view = published_view(result)
        return self.render("pr_body", **view, repro_command=repro_command, variants=variants)

    def pr_title(self, result: dict[str, Any]) -> str:
        """The pull request title."""
        return self.render("pr_title", **published_view(result)).strip()

    def commit_message(
        self, result: dict[str, Any], variants: Mapping[str, Any] | None = None
    ) -> str:
        """The commit message: a subject line, a blank line and a short body."""
        return self.render("commit_message", **published_view(result), variants=variants)

    def check_summary(self, result: dict[str, Any]) -> tuple[str, str]:
        """The check run's output title and summary for a finished job."""
        view = result_view(result)
        return self.render("check_title", **view).strip(), self.render("check_summary", **view)

    def command_ack(self, command: Command) -> str:
        """The first text of the one comment that answers a command."""
        if command.name == "help":
            return self.help_text()
        return self.render("command_ack", command=command)

    def help_text(self) -> str:
        """What each `/kevolve` command does and who may run it."""
        return self.render("help")

    def refusal(self, user: str, permission: str) -> str:
        """The answer to a command from someone without write permission."""
        return self.render("refusal", user=user, permission=permission)

    def status_comment(self, jobs: list[dict[str, Any]]) -> str:
        """A table of jobs; each has op, hardware, status, trigger, budget, and maybe evaluated."""
        return self.render("status", jobs=jobs)

    def superseded(self, new_pr_url: str) -> str:
        """The comment that closes an older pull request in favour of its successor."""
        return self.render("superseded", new_pr_url=new_pr_url)

    def human_commits(self, branch: str) -> str:
        """The comment posted instead of force-pushing over a person's commits on `branch`."""
        return self.render("human_commits", branch=branch)


def result_view(result: dict[str, Any]) -> dict[str, Any]:
    """The template variables for a `SearchResult.to_dict()`: the result plus derived figures."""
    best = result["best"]
    evaluation = best["evaluation"] if best else {"checks": [], "timings": []}
    timings = [t for t in evaluation["timings"] if t.get("speedup") is not None]
    hardware = result["hardware"] or {}
    return {
        "result": result,
        "op": result["problem"],
        "best": best,
        "gate": result["publish_gate"],
        "checks": evaluation["checks"],
        "timings": evaluation["timings"] if result["timed"] else [],
        "speedup": geometric_mean([t["speedup"] for t in timings]) if result["timed"] else None,
        "timed_cases": len(timings),
        "gpu": hardware.get("name") or result["device"],
        "hardware": hardware,
        "counts": ordered_counts(result["counts"]),
        "llm": result["llm"],
        "tokens": result["llm"].get("prompt_tokens", 0) + result["llm"].get("completion_tokens", 0),
        "chart": best_chart(result["history"]) if result["timed"] else None,
    }


def published_view(result: dict[str, Any]) -> dict[str, Any]:
    """`result_view` of a result that has a best candidate to publish; ValueError otherwise."""
    if result["best"] is None:
        raise ValueError(f"{result['problem']}: no correct candidate, nothing to publish")
    return result_view(result)


def geometric_mean(values: list[float]) -> float | None:
    """The geometric mean of positive values; None for none."""
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def ordered_counts(counts: dict[str, int]) -> list[tuple[str, int]]:
    """Counts by verdict in the harness's verdict order, unknown verdicts last by name."""
    order = [v.value for v in Verdict]
    known = [(v, counts[v]) for v in order if counts.get(v)]
    return known + sorted((k, n) for k, n in counts.items() if k not in order and n)


def best_chart(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Points of best score against evaluations, with a y range; None before any score."""
    points = [(h["evaluated"], h["best_score"]) for h in history if h["best_score"] is not None]
    if not points:
        return None
    if len(points) > MAX_CHART_POINTS:
        last = len(points) - 1
        step = last / (MAX_CHART_POINTS - 1)
        points = [points[round(i * step)] for i in range(MAX_CHART_POINTS)]
    scores = [s for _, s in points]
    low = math.floor(round(min(scores) * 10, 6)) / 10
    high = max(math.ceil(round(max(scores) * 10, 6)) / 10, low + 0.1)
    return {
        "x": [str(n) for n, _ in points],
        "y": [f"{s:.3f}" for s in scores],
        "low": f"{low:.1f}",
        "high": f"{high:.1f}",
    }


def ms(value: float | None) -> str:
    """Milliseconds to three significant figures, never in exponent form; '—' for none."""
    if value is None:
        return "—"
    if value == 0:
        return "0"
    decimals = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def speedup(value: float | None) -> str:
    """A speedup with two decimals, as `1.31x`; '—' for none."""
    return "—" if value is None else f"{value:.2f}x"


def sci(value: float) -> str:
    """An error figure in exponent form with three significant figures; exact zero as 0."""
    return "0" if value == 0 else f"{value:.2e}"


def pct(fraction: float | None) -> str:
    """A fraction as a whole percentage; '—' for none."""
    return "—" if fraction is None else f"{100 * fraction:.0f}%"


def shape(dims: list[int]) -> str:
    """A tensor shape as `4096x1024`."""
    return "x".join(map(str, dims)) or "(as given)"


def duration(seconds: float) -> str:
    """Seconds as `42.0 s`, `4m 05s` or `1h 02m`."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def repro_command(op: str, kernel: str, result: dict[str, Any]) -> str:
    """The command that re-checks the published kernel on the pull request's branch."""
    if result.get("timed"):
        return f"kevolve check . --op {op} --candidate {kernel} --device cuda"
    return f"kevolve check . --op {op} --candidate {kernel} --device cpu --no-time"
