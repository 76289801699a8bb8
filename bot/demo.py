"""The demo: the whole pipeline on one machine, no GitHub and no configuration.

It copies `examples/demo` into a fresh git repository, finds its ops, searches each (timed on a
local GPU; a correctness-only pass on CPU that says so), writes each winner on its
`kevolve/<op>/<hardware>` branch with one commit, exactly as the GitHub App would, and renders each
pull request's body to a markdown file.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git

from bot.messages import Messages, repro_command
from bot.publisher import Publication, Publisher, branch_name
from harness.spec import load_problems
from runners.job import JobSpec
from runners.runner import Runner, RunnerError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "demo"
TEMPLATES = ROOT / "templates" / "github"
_AUTHOR = git.Actor("kevolve demo", "demo@kevolve.invalid")


@dataclass(frozen=True)
class DemoOptions:
    """What `kevolve demo` decides up front."""

    out: Path  # created; holds repo/, state/ and pull-requests/
    device: str = "auto"
    budget: int | None = None  # per op; None: a short default for the device
    ops: tuple[str, ...] = ()  # empty: every op of the example
    cache_dir: Path = Path.home() / ".cache" / "kevolve"


@dataclass(frozen=True)
class OpOutcome:
    """One op's line of the demo's report."""

    op: str
    summary: str
    branch: str | None = None
    pr_body: Path | None = None


def default_out(cwd: Path) -> Path:
    """`./kevolve-demo`, or the first `./kevolve-demo-N` that does not exist yet."""
    candidate, n = cwd / "kevolve-demo", 1
    while candidate.exists():
        n += 1
        candidate = cwd / f"kevolve-demo-{n}"
    return candidate


def run_demo(
    options: DemoOptions, runner: Runner, say: Callable[[str], None] = print
) -> list[OpOutcome]:
    """Run the demo; each op's outcome, in the example's order."""
    repo_dir = options.out / "repo"
    _fresh_repo(repo_dir)
    problems = [p for p in load_problems(repo_dir) if not options.ops or p.name in options.ops]
    say(f"kevolve demo: {len(problems)} ops in {repo_dir}: {', '.join(p.name for p in problems)}")
    messages = Messages(TEMPLATES)
    publisher = Publisher(options.out / "publish", author_name="kevolve[bot]")
    outcomes = []
    for number, problem in enumerate(problems, 1):
        budget = options.budget or (16 if options.device.startswith("cuda") else 3)
        say(f"[{number}/{len(problems)}] {problem.name}: searching ({budget} candidates)...")
        spec = JobSpec(
            job_id=number,
            checkout=str(repo_dir),
            op=problem.name,
            hardware="local",
            budget=budget,
            state=str(options.out / "state" / f"{problem.name}.sqlite"),
            cache_dir=str(options.cache_dir),
            device=options.device,
        )
        try:
            result = runner.run(spec, lambda: False)
        except RunnerError as exc:
            outcomes.append(OpOutcome(problem.name, f"search failed: {exc}"))
            say(f"    {outcomes[-1].summary}")
            continue
        outcomes.append(_publish(options.out, repo_dir, publisher, messages, problem.name, result))
        say(f"    {outcomes[-1].summary}")
        if outcomes[-1].pr_body:
            say(f"    branch {outcomes[-1].branch}; pull request body: {outcomes[-1].pr_body}")
    return outcomes


def _fresh_repo(repo_dir: Path) -> None:
    """The example as a new git repository with one commit on `main`."""
    shutil.copytree(EXAMPLE, repo_dir, ignore=shutil.ignore_patterns("__pycache__", ".kevolve"))
    repo = git.Repo.init(repo_dir, initial_branch="main")
    repo.git.add("-A")
    repo.index.commit(
        "The demo kernels, as their authors wrote them", author=_AUTHOR, committer=_AUTHOR
    )


def _publish(
    out: Path,
    repo_dir: Path,
    publisher: Publisher,
    messages: Messages,
    op: str,
    result: dict[str, Any],
) -> OpOutcome:
    """Write an op's winner on its branch and its pull request body to a file."""
    best = result.get("best")
    kernel = (result.get("job") or {}).get("kernel")
    if not best or not kernel:
        return OpOutcome(
            op, "no correct candidate other than the current kernel; nothing to propose"
        )
    if best["proposer"] == "seed":
        return OpOutcome(op, "the current kernel stayed the best; nothing to propose")
    hardware = _hardware_label(result)
    branch = branch_name(op, hardware)
    publication = Publication(
        branch, {kernel: best["source"]}, messages.commit_message(result), "main"
    )
    outcome = publisher.publish(str(repo_dir), publication)
    body = out / "pull-requests" / f"{op}.md"
    body.parent.mkdir(parents=True, exist_ok=True)
    title = messages.pr_title(result)
    body.write_text(f"# {title}\n\n{messages.pr_body(result, repro_command(op, kernel, result))}")
    gate = result["publish_gate"]
    if result.get("timed"):
        verdict = (
            "publish gate passed"
            if gate["passed"]
            else "not publishable: " + "; ".join(gate["reasons"])
        )
        summary = f"{title} ({verdict})"
    else:
        summary = f"{title}: nothing was timed (CPU), correctness only"
    return OpOutcome(op, f"{summary}; {outcome.status}", branch, body)


def _hardware_label(result: dict[str, Any]) -> str:
    """A branch label for where the search ran: the GPU's name, or `cpu`."""
    hardware = result.get("hardware") or {}
    if not result.get("timed") or not hardware.get("name"):
        return "cpu"
    return re.sub(r"[^a-z0-9]+", "-", str(hardware["name"]).lower()).strip("-")
