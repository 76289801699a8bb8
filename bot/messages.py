"""`Messages`: every text the bot posts on GitHub, rendered from `templates/github/`."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from kevolve.bot.changes import compare
from kevolve.bot.joboutcome import ProposalRecord
from kevolve.bot.reproduce import Checkout, reproduce_lines
from kevolve.bot.slash import Command, CommandError
from kevolve.bot.speedtable import compile_failures, merged_timings, rows, standing
from kevolve.harness.evaluation import CaseCheck, Verdict, shape_cell, shape_heading
from kevolve.harness.search.result import GateResult
from kevolve.harness.spec.load import SpecError
from kevolve.runners.fieldread import IntakeError
from kevolve.runners.intake import CheckedResult, LineageStep, Machine, read_result

MAX_CHART_POINTS = 40  # a longer history is sampled evenly, its last point kept
MAX_SHOWN = 300  # characters of one piece of free text in a message
RATIONALE_SHOWN = 600  # characters of the model's own account of its change
LINEAGE_SHOWN = 8  # steps of the best's lineage a pull request lists

# Result data: a posted dict (read through `runners.intake` first) or one already read.
ResultData = Mapping[str, Any] | CheckedResult
# What could make Markdown or HTML of text: links, images, tags, entities, code, tables, headings;
# and what GitHub links by itself: URLs (`scheme://`, `www.`).
_MARKUP = re.compile(r"([\\`*\[\]|#<>&])")
_AUTOLINK = re.compile(r"(?<=www)\.|:(?=//)", re.IGNORECASE)


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
        self,
        result: ResultData,
        checkout: Checkout,
        variants: Mapping[str, Any] | None = None,
        gate: GateResult | None = None,
        original: str | None = None,
    ) -> str:
        """The pull request description; `checkout`: where its kernel and baseline are, for the
        reproduce commands; `variants`: the kernel per GPU kind it carries, if any; `gate`: the
        publish gate as the bot computed it; `original`: the repo's kernel at the job's commit,
        which the winner's diff is against (None: no diff is shown)."""
        data = checked(result)
        view = published_view(data, gate, original=original)
        best = data.best.evaluation if data.best else None  # published_view refused none
        repro = reproduce_lines(data.problem, checkout, best, data.timed) if best else []
        shown = None if variants is None else variants_view(variants)
        return self.render("pr_body", **view, reproduce=repro, variants=shown)

    def pr_title(self, result: ResultData, hardware: str | None = None) -> str:
        """The pull request title: the op, the speedup and the job's hardware label (nothing
        else from the result, whose text could claim anything)."""
        return self.render("pr_title", **published_view(result, label=hardware)).strip()

    def commit_message(
        self,
        result: ResultData,
        variants: Mapping[str, Any] | None = None,
        hardware: str | None = None,
    ) -> str:
        """The commit message: a subject line, a blank line and a short body."""
        view = published_view(result, label=hardware)
        shown = None if variants is None else variants_view(variants)
        return self.render("commit_message", **view, variants=shown)

    def check_summary(self, result: ResultData) -> tuple[str, str]:
        """The check run's output title and summary for a finished job."""
        try:
            view = result_view(result)
        except IntakeError as exc:
            op = result.get("problem") if isinstance(result, Mapping) else None
            name = op if isinstance(op, str) and len(op) <= 100 else "result"
            title = self.render("result_refused_title", op=shown(name)).strip()
            return title, self.render("result_refused", reason=shown(str(exc))).rstrip("\n")
        return self.render("check_title", **view).strip(), self.render("check_summary", **view)

    def command_ack(self, command: Command) -> str:
        """The first text of the one comment that answers a command."""
        if command.name == "help":
            return self.help_text()
        return self.render("command_ack", command=command)

    def command_error(self, error: CommandError) -> str:
        """The answer to a command that could not be understood: its line, what was wrong and
        the usage."""
        return self.render("command_error", line=error.line, problem=error.problem).rstrip("\n")

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

    def job_queued(
        self, job_id: int, op: str, hardware: str, sha: str, reason: str | None = None
    ) -> tuple[str, str]:
        """The check-run title and summary of a queued job; `reason`: why it was queued, if
        not for a push or a command."""
        where = {"job_id": job_id, "op": op, "hardware": hardware}
        title = self.render("job_title", **where, state="queued").strip()
        return title, self.render("job_queued", **where, sha=sha, reason=reason).rstrip("\n")

    def job_running(
        self, job_id: int, op: str, hardware: str, sha: str, evaluated: int, budget: int
    ) -> tuple[str, str]:
        """The check-run title and summary of a running job: how far its search is."""
        where = {"job_id": job_id, "op": op, "hardware": hardware}
        title = self.render("job_title", **where, state="running").strip()
        summary = self.render("job_running", **where, sha=sha, evaluated=evaluated, budget=budget)
        return title, summary.rstrip("\n")

    def job_failed(self, reason: str, bug: str | None = None) -> str:
        """The check-run summary of a failed job: the reason; `bug`: the exception's type when
        the bot itself, not the run, broke."""
        return self.render("job_failed", reason=reason, bug=bug).rstrip("\n")

    def job_cancelled(self) -> str:
        """The check-run summary of a job stopped by `/kevolve stop`."""
        return self.render("job_cancelled").rstrip("\n")

    def job_ended_title(self, op: str, hardware: str, status: str) -> str:
        """The title of a job's check run once it ended: its op, hardware and status."""
        return self.render("job_ended_title", op=op, hardware=hardware, status=status).strip()

    def job_done(self, results: Sequence[ResultData], proposals: Sequence[ProposalRecord]) -> str:
        """The check-run summary of a finished job: each op's result under its title, then a
        line per op of what proposing it did."""
        sections = [self.check_summary(result) for result in results]
        return self.render("job_done", sections=sections, proposals=list(proposals))

    def queue_full_title(self, count: int) -> str:
        """The check-run title for jobs a push asked for that the caps refused."""
        return self.render("queue_full_title", count=count).strip()

    def config_broken(self, error: SpecError, waiting: Sequence[str] = ()) -> tuple[str, str]:
        """The check-run title and summary of a config that cannot be read: the file, the field,
        what is wrong and the fix; `waiting`: new runner labels that wait on it."""
        title = self.render("config_broken_title").strip()
        return title, self.render("config_broken", error=error, waiting=list(waiting))

    def human_commits(self, branch: str) -> str:
        """The comment posted instead of force-pushing over a person's commits on `branch`."""
        return self.render("human_commits", branch=branch)


def checked(result: ResultData) -> CheckedResult:
    """The result as the bot reads it; IntakeError when it does not fit."""
    return result if isinstance(result, CheckedResult) else read_result(result)


def result_view(
    result: ResultData,
    gate: GateResult | None = None,
    label: str | None = None,
    original: str | None = None,
) -> dict[str, Any]:
    """The template variables of a result: only figures the bot read, its text escaped and
    capped. `gate` defaults to the harness's gate over the result's evaluations; `original`,
    the repo's kernel, gives the best's change against it."""
    data = checked(result)
    gate = data.gate() if gate is None else gate
    best = data.best
    evaluation = best.evaluation if best else None
    dims = evaluation.dims if evaluation else []
    timings = merged_timings(evaluation, data.baseline) if evaluation and data.timed else []
    speedup = data.speedup()
    gpu = shown(data.machine.name or data.device)
    return {
        "result": {
            "evaluated": data.evaluated,
            "timed": data.timed,
            "device": shown(data.device),
            "wall_s": data.wall_s,
            "gpu_s": data.gpu_s,
            "stop_reason": shown(data.stop_reason),
        },
        "op": data.problem,
        "best": None
        if best is None
        else {"id": best.id, "generation": best.generation, "proposer": shown(best.proposer)},
        "gate": {"passed": gate.passed, "reasons": [shown(r) for r in gate.reasons]},
        "shape_heading": shape_heading(dims),
        "checks": [_check_view(c, dims) for c in evaluation.checks] if evaluation else [],
        "timings": rows(timings, dims, shown),
        "compile": standing(timings, dims),
        "compile_failures": compile_failures(timings, dims, shown),
        "speedup": speedup,
        "timed_cases": len([t for t in timings if t.speedup is not None]),
        "gpu": gpu,
        "label": shown(label) if label else gpu,
        "hardware": _machine_view(data.machine),
        "counts": ordered_counts(dict(data.counts)),
        "llm": {**vars(data.llm), "models": [shown(m) for m in data.llm.models]},
        "rationale": shown(data.rationale, RATIONALE_SHOWN) if data.rationale else None,
        "changes": None
        if original is None or best is None
        else compare(original, best.source).view(),
        "lineage": [_step_view(step) for step in data.lineage[:LINEAGE_SHOWN]],
        "lineage_left": max(0, len(data.lineage) - LINEAGE_SHOWN),
        "tokens": data.llm.prompt_tokens + data.llm.completion_tokens,
        "chart": best_chart(
            [{"evaluated": p.evaluated, "best_score": p.best_score} for p in data.history]
        )
        if data.timed
        else None,
    }


def _check_view(check: CaseCheck, dims: list[str]) -> dict[str, Any]:
    """One checked case as the templates read it: its shape named, its tolerance."""
    return {**vars(check), "shape": shape_cell(check.shape, dims)}


def _step_view(step: LineageStep) -> dict[str, Any]:
    """One lineage step as the pull request lists it; the proposer's name escaped."""
    return {
        "id": step.id,
        "generation": step.generation,
        "proposer": shown(step.proposer),
        "repair": step.repair,
        "seed": step.proposer == "seed",
    }


def _machine_view(machine: Machine) -> dict[str, Any]:
    """The machine's facts with its text escaped; `ceilings` only when measured."""
    view: dict[str, Any] = {
        k: shown(v) if isinstance(v, str) else v for k, v in vars(machine).items()
    }
    if machine.copy_gbps is not None and machine.matmul_tflops is not None:
        view["ceilings"] = {"copy_gbps": machine.copy_gbps, "matmul_tflops": machine.matmul_tflops}
    return {k: v for k, v in view.items() if v is not None}


def variants_view(variants: Mapping[str, Any]) -> dict[str, Any]:
    """The kernel-per-GPU view with the GPU names escaped (`bot.winners` escapes its notes)."""
    rows = [
        {**row, "label": shown(row["label"]), "gpu": shown(row["gpu"]) if row.get("gpu") else None}
        for row in variants.get("variants", [])
    ]
    return {**variants, "variants": rows}


def published_view(
    result: ResultData,
    gate: GateResult | None = None,
    label: str | None = None,
    original: str | None = None,
) -> dict[str, Any]:
    """`result_view` of a result that has a best candidate to publish; ValueError otherwise."""
    view = result_view(result, gate, label, original)
    if view["best"] is None:
        raise ValueError(f"{view['op']}: no correct candidate, nothing to publish")
    return view


def shown(text: str, cap: int = MAX_SHOWN) -> str:
    """Text from outside as a message shows it: one line, at most `cap` characters, with what
    Markdown or HTML would read as links, tags, tables or mentions escaped."""
    line = " ".join(text.split())
    if len(line) > cap:
        line = line[: cap - 1].rstrip() + "…"
    escaped = _AUTOLINK.sub(lambda m: "\\" + m.group(0), _MARKUP.sub(r"\\\1", line))
    return escaped.replace("@", "@\u200b")  # a zero-width space: no one is mentioned


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
