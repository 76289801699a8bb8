"""The demo: the whole pipeline on one machine, no GitHub and no configuration.

It copies `examples/demo` into a fresh git repository, finds its ops, searches each (timed on a
local GPU; a correctness-only pass on CPU that says so), writes each winner on its
`kevolve/<op>/<hardware>` branch with one commit, exactly as the GitHub App would, and renders each
pull request's body to a markdown file. A timed winner that the publish gate refuses gets no
commit, as with the App; its file says why it would not be proposed.

On a GPU each op runs in its first declared dtype only and is timed at its first production shape,
so the four searches take minutes rather than half an hour; every check shape is still checked
(narrowing is `kevolve optimize --dtype --shape`'s, so the other dtypes are not). The narrowed
config is committed to the demo repository as `kevolve.toml` (it takes precedence over
pyproject.toml), so the search, and the commands the pull request bodies give to reproduce it, see
exactly what was timed.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import git
from kevolve.bot.messages import Messages
from kevolve.bot.publisher import Publication, Publisher, branch_name
from kevolve.bot.remote import GitRemote
from kevolve.bot.reproduce import Checkout
from kevolve.harness.assets import example_dir, template_dir
from kevolve.harness.search.campaign import LLM_SHARE
from kevolve.harness.search.llm import LLMConfig
from kevolve.harness.search.snapshot import snapshot
from kevolve.harness.search.status import StopKind
from kevolve.harness.spec.load import load_problems, narrow
from kevolve.harness.spec.problem import Problem, Shape
from kevolve.runners.intake import CheckedResult
from kevolve.runners.job import JobSpec, with_llm
from kevolve.runners.runner import Cancelled, Runner, RunnerError

EXAMPLE = example_dir("demo")
TEMPLATES = template_dir("github")
_AUTHOR = git.Actor("kevolve demo", "demo@kevolve.invalid")
# Candidates per op, the current kernel included. On a GPU one narrowed evaluation takes 10-20 s
# (most of it Triton compiling) and two run at once: the seed, then one generation of four, is
# 30-60 s an op, so the four ops with their start-up stay under about five minutes.
GPU_BUDGET, CPU_BUDGET = 5, 3


@dataclass(frozen=True)
class DemoOptions:
    """What `kevolve demo` decides up front."""

    out: Path  # created; holds repo/, state/ and pull-requests/
    device: str = "auto"
    budget: int | None = None  # per op; None: a short default for the device
    ops: tuple[str, ...] = ()  # empty: every op of the example
    cache_dir: Path = Path.home() / ".cache" / "kevolve"
    all_shapes: bool = False  # on a GPU, time every declared dtype and shape, not the first
    llm: LLMConfig | None = None  # with a reply queue, each op's prompts go to <queue>/<op>
    llm_share: float = LLM_SHARE
    resume: bool = False  # `out` holds a paused demo (a reply queue): go on from its state
    progress_every_s: float = 10.0  # between progress lines of the op being searched


@dataclass(frozen=True)
class OpOutcome:
    """One op's line of the demo's report."""

    op: str
    summary: str
    branch: str | None = None
    pr_body: Path | None = None
    paused: bool = False  # its search waits for replies: running the demo again goes on
    failed: bool = False  # its search failed


class DemoStopped(Exception):
    """The demo was told to stop (a signal); the search under way was killed with its children."""


def _never() -> bool:
    """Never cancelled."""
    return False


def default_out(cwd: Path) -> Path:
    """`./kevolve-demo`, or the first `./kevolve-demo-N` that does not exist yet."""
    candidate, n = cwd / "kevolve-demo", 1
    while candidate.exists():
        n += 1
        candidate = cwd / f"kevolve-demo-{n}"
    return candidate


def run_demo(
    options: DemoOptions,
    runner: Runner,
    say: Callable[[str], None] = print,
    cancelled: Cancelled = _never,
) -> list[OpOutcome]:
    """Run the demo; each op's outcome, in the example's order. `DemoStopped` once `cancelled`
    says so: the runner kills the search under way, and no other op starts."""
    repo_dir = options.out / "repo"
    if not options.resume:
        _fresh_repo(repo_dir)
    declared = [p for p in load_problems(repo_dir) if not options.ops or p.name in options.ops]
    say(f"kevolve demo: {len(declared)} ops in {repo_dir}: {', '.join(p.name for p in declared)}")
    on_gpu = options.device.startswith("cuda")
    problems = timed_cases(declared, on_gpu and not options.all_shapes)
    if problems != declared and not options.resume:
        _commit_config(repo_dir, problems)
        for line in narrowing_note(declared, problems):
            say(line)
    messages = Messages(TEMPLATES)
    publisher = Publisher(options.out / "publish", author_name="kevolve[bot]")
    outcomes = []
    for number, problem in enumerate(problems, 1):
        if cancelled():
            raise DemoStopped(f"stopped before {problem.name}")
        budget = options.budget or (GPU_BUDGET if on_gpu else CPU_BUDGET)
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
        spec = with_llm(spec, _per_op(options.llm, problem.name), options.llm_share)
        watch = Watch(Path(spec.state), budget, say, options.progress_every_s)

        def watched(watch: Watch = watch) -> bool:
            watch()  # the runner asks often: a good moment to say how the search goes
            return cancelled()

        try:
            result = runner.run(spec, watched)
        except RunnerError as exc:
            if cancelled():
                raise DemoStopped(f"stopped while searching {problem.name}") from exc
            outcomes.append(OpOutcome(problem.name, f"search failed: {exc}", failed=True))
            say(f"    {outcomes[-1].summary}")
            continue
        if result.stop is StopKind.PAUSED:
            outcomes.append(OpOutcome(problem.name, f"paused: {result.stop_reason}", paused=True))
            say(f"    {outcomes[-1].summary} in {spec.llm_queue}/replies")
            continue
        outcomes.append(
            _publish(
                options.out, repo_dir, publisher, messages, problem.name, problem.kernel, result
            )
        )
        say(f"    {outcomes[-1].summary}")
        if outcomes[-1].pr_body and outcomes[-1].branch:
            say(f"    branch {outcomes[-1].branch}; pull request body: {outcomes[-1].pr_body}")
        elif outcomes[-1].pr_body:
            say(f"    no branch; what the pull request would have said: {outcomes[-1].pr_body}")
    return outcomes


def timed_cases(problems: Sequence[Problem], narrowed: bool) -> list[Problem]:
    """Each problem, or when `narrowed` only its first dtype, timed at its first shape.

    Narrowing is `kevolve optimize --dtype --shape`'s: every check shape is still checked.
    """
    if not narrowed:
        return list(problems)
    return [
        narrow(p, p.dtypes[:1], [_dims(p.shapes[0])], p.source or p.root)
        if p.shapes[0]  # a KernelBench op has one shape, the one its inputs give
        else p
        for p in problems
    ]


def narrowing_note(declared: Sequence[Problem], timed: Sequence[Problem]) -> list[str]:
    """What the demo narrowed, a line per op, and how to widen it."""
    lines = [
        "kevolve demo: on a GPU each op runs in one dtype and is timed at one shape, so the demo "
        "takes minutes; every check shape is still checked (--all-shapes runs every declared "
        "dtype and shape):"
    ]
    for before, after in zip(declared, timed, strict=True):
        if before == after:
            continue
        cases = len(before.dtypes) * len(before.shapes)
        lines.append(
            f"    {after.name}: {after.dtypes[0]}, timed at {_dims(after.shapes[0])} "
            f"(of {cases} declared cases: {', '.join(before.dtypes)} at "
            f"{', '.join(_dims(s) for s in before.shapes)})"
        )
    return lines


def kevolve_toml(problems: Sequence[Problem]) -> str:
    """The problems as a kevolve.toml, one `[ops.<name>]` table each."""
    lines = [
        "# Written by `kevolve demo` on a GPU: one dtype and one timed shape per op, so the demo",
        "# takes minutes. kevolve reads this file before pyproject.toml, which declares them all.",
    ]
    for p in problems:
        lines += ["", f"[ops.{p.name}]"]
        fields: dict[str, object] = {
            "kernel": p.kernel,
            "entry": p.entry,
            "reference": p.reference,
            "inputs": p.inputs,
            "dtypes": list(p.dtypes),
            "shapes": [list(s) for s in p.shapes],
            "check_shapes": [list(s) for s in p.check_shapes],
        }
        if p.flops:
            fields["flops"] = p.flops
        if p.allowed_imports:
            fields["allowed_imports"] = list(p.allowed_imports)
        if p.dims:
            fields["dims"] = list(p.dims)
        # Strings, integers and lists of them are written alike in JSON and TOML.
        lines += [f"{key} = {json.dumps(value)}" for key, value in fields.items()]
        lines += [
            f"tolerance.{dtype} = {{ rtol = {t.rtol!r}, atol = {t.atol!r}, norm = {t.norm!r} }}"
            for dtype, t in p.tolerances.items()
        ]
    return "\n".join(lines) + "\n"


def _dims(shape: Shape) -> str:
    """A shape as `8192x8192`."""
    return "x".join(str(n) for n in shape)


def _commit_config(repo_dir: Path, problems: Sequence[Problem]) -> None:
    """Commit the narrowed ops as kevolve.toml, which the search reads before pyproject.toml."""
    (repo_dir / "kevolve.toml").write_text(kevolve_toml(problems))
    repo = git.Repo(repo_dir)
    repo.index.add(["kevolve.toml"])
    message = "Time one dtype and shape per op, so the demo takes minutes on a GPU"
    repo.index.commit(message, author=_AUTHOR, committer=_AUTHOR)


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
    kernel: str | None,
    result: CheckedResult,
) -> OpOutcome:
    """Write an op's winner on its branch (over `kernel`, the config's path: never the posted
    one) and its pull request body to a file."""
    best = result.best
    if not best or not kernel:
        return OpOutcome(
            op, "no correct candidate other than the current kernel; nothing to propose"
        )
    if best.proposer == "seed":
        return OpOutcome(op, "the current kernel stayed the best; nothing to propose")
    hardware = _hardware_label(result)
    branch = branch_name(op, hardware)
    body = out / "pull-requests" / f"{op}.md"
    body.parent.mkdir(parents=True, exist_ok=True)
    title = messages.pr_title(result)
    original = (repo_dir / kernel).read_text(encoding="utf-8")  # the demo's own file, at main
    text = messages.pr_body(result, Checkout(kernel, branch, "main"), original=original)
    # The gate the body shows, as the bot computes it; an untimed result has none.
    gate = result.gate() if result.timed else None
    if gate is not None and not gate.passed:
        # As the bot does: a timed result the gate refuses is neither committed nor pushed.
        reasons = "; ".join(gate.reasons)
        preface = NOT_PASSED_PREFACE.format(reasons=reasons)
        body.write_text(
            f"# Not proposed: the publish gate was not passed ({op})\n\n{preface}{text}"
        )
        return OpOutcome(op, f"{title} (not publishable: {reasons}); not committed", None, body)
    publication = Publication(
        branch, {kernel: best.source}, messages.commit_message(result), "main"
    )
    outcome = publisher.publish(GitRemote(str(repo_dir)), publication)
    if not result.timed:
        title, text = f"Not proposed: nothing was timed ({op})", UNTIMED_PREFACE + text
    body.write_text(f"# {title}\n\n{text}")
    if gate is not None:
        summary = f"{title} (publish gate passed)"
    else:
        summary = f"{op}: not proposed: nothing was timed (CPU), correctness only"
    return OpOutcome(op, f"{summary}; {outcome.status}", branch, body)


# What an untimed demo file says before the body a pull request would carry.
UNTIMED_PREFACE = (
    "> **Not proposed: nothing was timed.** This machine has no GPU, so the candidate below was "
    "only checked for correctness (through Triton's interpreter). On a GPU, `kevolve demo` times "
    "it against the current kernel, eager PyTorch and torch.compile in the same rounds, and a pull "
    "request is proposed only when the low end of its 95% speedup interval reaches the repo's "
    "`min_speedup` (1.05 unless configured). The text below is what that pull request's body "
    "would hold, minus the timings.\n\n"
)


# What the file of a timed result that the publish gate refused says before the body.
NOT_PASSED_PREFACE = (
    "> **Not proposed: the publish gate was not passed** ({reasons}). The bot opens no pull "
    "request for such a result and commits nothing; the text below is what that pull request's "
    "body would have held.\n\n"
)


class Watch:
    """Says how a running op's search goes, from its state file, at most every `every_s`."""

    def __init__(
        self,
        state: Path,
        budget: int,
        say: Callable[[str], None],
        every_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state, self.budget, self.say, self.every_s = state, budget, say, every_s
        self._clock = clock
        self._started = self._last = clock()  # the op's first line was just said
        self._shown: tuple[int, float | None] | None = None

    def __call__(self) -> None:
        now = self._clock()
        if now - self._last < self.every_s or not self.state.exists():
            return
        self._last = now
        try:
            seen = snapshot(self.state)
        except (sqlite3.Error, KeyError, ValueError):
            return  # created, not yet written: nothing to say
        if (seen.stored, seen.best_score) == self._shown:
            return
        self._shown = (seen.stored, seen.best_score)
        counts = ", ".join(f"{k} {v}" for k, v in sorted(seen.counts.items()))
        best = f"{seen.best_score:.3f}x" if seen.best_score is not None else "-"
        timed = not seen.hardware.endswith("cpu")  # untimed: nothing is better than another
        left = max(self.budget - seen.stored, 0)
        eta = (now - self._started) / seen.stored * left if seen.stored and left else None
        self.say(
            f"    {seen.stored}/{self.budget} judged"
            + (f" ({counts} folded)" if counts else "")
            + (f", best so far {best}" if timed else "")
            + (f", about {eta:.0f} s to go" if eta is not None else "")
            + (f", LLM {seen.tokens:,} tokens ${seen.cost_usd:.2f}" if seen.tokens else "")
        )


def _per_op(llm: LLMConfig | None, op: str) -> LLMConfig | None:
    """The LLM for one op: a reply queue gets a folder per op, so their prompts stay apart."""
    if llm is None or llm.queue is None:
        return llm
    return replace(llm, queue=llm.queue / op)


def _hardware_label(result: CheckedResult) -> str:
    """A branch label for where the search ran: the GPU's name, or `cpu`."""
    name = result.machine.name
    if not result.timed or not name:
        return "cpu"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
