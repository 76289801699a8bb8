"""`PromptBuilder`: the chat messages that ask an LLM for a faster kernel (Jinja2 templates)."""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from kevolve.harness.evaluation import Diagnostic, Evaluation, Verdict, with_seed_compile
from kevolve.harness.profile import KernelProfile, Profile
from kevolve.harness.search.candidate import Elite
from kevolve.harness.search.proposal import Attempt, ProposalContext, Repair
from kevolve.harness.spec.problem import Problem, ProblemKind

MAX_ELITES = 3
MAX_FAILURES = 3
ELITE_LINES = 80  # an elite's source is cut after this many lines
MESSAGE_CHARS = 1200  # a failure's diagnostic is cut after this many characters
COMPILE_ERROR_CHARS = 160  # why a torch.compile mode failed: one line, cut after this many
PROFILED_KERNELS = 3  # a profile shows this many launches, the longest
_ROW_WORDS = re.compile(r"softmax|norm|logsumexp")
_MATMUL_CODE = re.compile(r"matmul|\bmm\(|bmm|addmm|linear|Linear|einsum|\s@\s")
_ROW_CODE = re.compile(r"softmax|layer_norm|rms_norm|LayerNorm|RMSNorm|rsqrt|logsumexp")


@dataclass(frozen=True)
class Basis:
    """What a proposal builds on: the source a reply edits, its elite, and the elites shown."""

    source: str
    current: Elite | None
    elites: tuple[Elite, ...]

    @property
    def parent_ids(self) -> tuple[str, ...]:
        """Ids of every elite the prompt shows, the edited one first."""
        shown = ((self.current,) if self.current else ()) + self.elites
        return tuple(e.candidate.id for e in shown)


def basis(ctx: ProposalContext) -> Basis:
    """The island's best parent (else the best, else the baseline) and up to 3 diverse others."""
    current = ctx.parents[0] if ctx.parents else ctx.best
    if current is None:
        return Basis(ctx.baseline_source, None, ())
    return Basis(current.candidate.source, current, _diverse(current, ctx.parents))


def op_family(problem: Problem, reference: str) -> str:
    """The op family (matmul, row_reduction, elementwise): by name, else by reference code."""
    words = [w for w in re.split(r"[^a-z0-9]+", problem.name.lower()) if w]
    if any("matmul" in w or "gemm" in w or "linear" in w or w.endswith("mm") for w in words):
        return "matmul"
    if _ROW_WORDS.search(problem.name.lower()):
        return "row_reduction"
    if _MATMUL_CODE.search(reference):
        return "matmul"
    return "row_reduction" if _ROW_CODE.search(reference) else "elementwise"


def knowledge_files(ctx: ProposalContext, reference: str) -> list[str]:
    """Knowledge file names for this context: op family, Hopper when 9.x, pitfalls on failures."""
    names = [f"{op_family(ctx.problem, reference)}.md"]
    if str((ctx.hardware or {}).get("capability", "")).startswith("9."):
        names.append("hopper.md")
    recent = ctx.failures[:MAX_FAILURES]
    if any(a.evaluation.verdict is Verdict.COMPILE_ERROR for a in recent):
        names.append("triton_pitfalls.md")
    return names


class PromptBuilder:
    """Renders `system.j2` and `propose.j2` from a template directory, with knowledge files."""

    def __init__(self, template_dir: Path) -> None:
        self.template_dir = template_dir
        self._env = Environment(
            loader=FileSystemLoader(template_dir),
            undefined=StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def messages(self, ctx: ProposalContext) -> list[dict[str, str]]:
        """The system and user messages for one proposal."""
        view = self.view(ctx)
        return [
            {"role": "system", "content": self._env.get_template("system.j2").render(view)},
            {"role": "user", "content": self._env.get_template("propose.j2").render(view)},
        ]

    def view(self, ctx: ProposalContext) -> dict[str, Any]:
        """The template variables: the problem, sources, elites, failures, hardware, knowledge
        and a repeated request's direction."""
        problem = ctx.problem
        reference = reference_source(problem)
        chosen = basis(ctx)
        repair = _repair(ctx.repair) if ctx.repair else None
        return {
            "op": problem.name,
            "entry": problem.entry,
            "kernelbench": problem.kind is ProblemKind.KERNELBENCH,
            "signature": _signature(ctx.baseline_source, problem.entry),
            "dtypes": problem.dtypes,
            "shapes": [s for s in problem.shapes if s],
            "check_shapes": problem.check_shapes,
            "reference": reference.rstrip("\n"),
            "source": (ctx.repair.source if ctx.repair else chosen.source).rstrip("\n"),
            "current": chosen.current,
            "cases": _cases(chosen.current, ctx.seed),
            "profile": ctx.profile if chosen.current and not ctx.repair else None,
            "profile_kernels": _profiled(ctx.profile),
            "repair": repair,
            "lessons": list(ctx.lessons),
            "best": _other_best(ctx.best, chosen.current),
            "elites": [_elite(e) for e in chosen.elites],
            "failures": [_failure(a) for a in ctx.failures[:MAX_FAILURES]],
            "hardware": ctx.hardware or {},
            "imports": ", ".join(
                ("torch", "triton", "triton.language", "math", *problem.allowed_imports)
            ),
            "knowledge": [self._knowledge(n) for n in knowledge_files(ctx, reference)],
            "direction": None if ctx.repair else ctx.direction,
        }

    def _knowledge(self, name: str) -> str:
        """The text of one knowledge file."""
        return (self.template_dir / "knowledge" / name).read_text(encoding="utf-8").strip()


def reference_source(problem: Problem) -> str:
    """The reference (and input maker) definitions; a KernelBench file whole."""
    path = problem.path(problem.reference)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return f"# reference {problem.reference} could not be read: {exc.strerror}\n"
    if problem.kind is ProblemKind.KERNELBENCH:
        return text
    parts = [_definition(text, problem.reference.rpartition(":")[2])]
    if problem.path(problem.inputs) == path:
        parts.append(_definition(text, problem.inputs.rpartition(":")[2]))
    found = [p for p in parts if p]
    return "\n\n\n".join(found) + "\n" if found else text


def _definition(text: str, name: str) -> str | None:
    """The top-level def/class `name` of a module, after the module constants it uses."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    node = next((n for n in defs if n.name == name), None)
    if node is None:
        return None
    used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    consts = [
        n
        for n in tree.body
        if isinstance(n, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id in used for t in n.targets)
    ]
    segments = [ast.get_source_segment(text, n) or "" for n in (*consts, node)]
    return "\n".join(segments[:-1]) + ("\n\n" if consts else "") + segments[-1]


def _signature(source: str, entry: str) -> str:
    """The entry's `def` line from the baseline, or for KernelBench `Model.forward`'s."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return entry
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == entry:
            return _def_line(node)
        if isinstance(node, ast.ClassDef) and node.name in (entry, "Model"):
            methods = [m for m in node.body if isinstance(m, ast.FunctionDef)]
            lines = [f"class {entry}(nn.Module):"]
            lines += [f"    {_def_line(m)}" for m in methods if m.name in ("__init__", "forward")]
            return "\n".join(lines)
    return entry


def _def_line(node: ast.FunctionDef) -> str:
    """`def name(args) -> returns` for a function node."""
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return f"def {node.name}({ast.unparse(node.args)}){returns}"


def _diverse(current: Elite, parents: tuple[Elite, ...]) -> tuple[Elite, ...]:
    """Up to `MAX_ELITES` parents other than `current`, each the least like those already shown."""
    pool: dict[str, Elite] = {}
    for e in parents:
        if e.candidate.id != current.candidate.id:
            pool.setdefault(e.candidate.id, e)
    shown = [current]
    while pool and len(shown) <= MAX_ELITES:
        pick = min(pool.values(), key=lambda e: max(_similarity(e, s) for s in shown))
        shown.append(pool.pop(pick.candidate.id))
    return tuple(shown[1:])


def _similarity(a: Elite, b: Elite) -> float:
    """How alike two elites' sources are, line by line, in [0, 1]."""
    lines_a, lines_b = a.candidate.source.splitlines(), b.candidate.source.splitlines()
    return difflib.SequenceMatcher(None, lines_a, lines_b).ratio()


def _other_best(best: Elite | None, current: Elite | None) -> Elite | None:
    """The best elite so far when it was timed and is not the one shown for editing."""
    if best is None or current is None or best.candidate.id == current.candidate.id:
        return None
    return best if best.evaluation.timed else None


def _elite(elite: Elite) -> dict[str, Any]:
    """An elite and its source, cut after `ELITE_LINES` lines."""
    lines = elite.candidate.source.rstrip("\n").splitlines()
    source = "\n".join(lines[:ELITE_LINES])
    if len(lines) > ELITE_LINES:
        source += f"\n# ... ({len(lines) - ELITE_LINES} more lines)"
    return {"elite": elite, "source": source}


def _cases(current: Elite | None, seed: Evaluation | None) -> list[dict[str, Any]]:
    """The current program's timed cases, each with the torch.compile modes timed on it (the
    seed's where its own evaluation timed none), why a mode failed, and the fastest mode's
    median / the program's (`CaseTiming.speedup_vs_compile`)."""
    if current is None:
        return []
    cases = []
    for t in with_seed_compile(current.evaluation.timings, seed):
        arms = [a for a in t.compiled if a.timing is not None or a.error]
        fastest = t.fastest_compiled()
        compiled = [
            {
                "mode": a.mode,
                "ms": a.timing.median_ms if a.timing else None,
                "error": (a.error or "").strip().partition("\n")[0][:COMPILE_ERROR_CHARS],
            }
            for a in arms
        ]
        cases.append(
            {
                "timing": t,
                "compiled": compiled,
                "fastest": fastest.mode if fastest else None,
                "versus": t.speedup_vs_compile(),
                "from_seed": any(a.from_seed for a in arms),
            }
        )
    return cases


def _failure(attempt: Attempt) -> dict[str, str | None]:
    """A failed attempt's verdict, reason and first located diagnostic with its source line."""
    ev = attempt.evaluation
    diag = _first_diagnostic(ev.diagnostics)
    where = ""
    if diag is not None and diag.line is not None:
        lines = attempt.source.splitlines()
        code = lines[diag.line - 1].strip() if 0 < diag.line <= len(lines) else ""
        where = f"line {diag.line}" + (f": `{code}`" if code else "")
    message = diag.message if diag else next((c.failure for c in ev.checks if c.failure), None)
    if message and len(message) > MESSAGE_CHARS:
        message = message[:MESSAGE_CHARS] + " [...]"
    return {
        "verdict": ev.verdict.value,
        "reason": ev.reason,
        "where": where or None,
        "kind": diag.kind if diag else None,
        "message": message,
    }


def _repair(repair: Repair) -> dict[str, Any]:
    """A failed candidate to fix: its failure as for the failures list, the turn, and every
    case that went wrong with its figures and first mismatching indices."""
    cases = [
        {
            "shape": "x".join(str(d) for d in c.shape) or "scalar",
            "dtype": c.dtype,
            "max_abs": c.max_abs,
            "max_rel": c.max_rel,
            "mismatches": c.mismatches,
            "elements": c.elements,
            "at": ", ".join(str(tuple(i)) for i in c.first_indices[:3]),
            "failure": (c.failure or "")[:MESSAGE_CHARS],
        }
        for c in repair.evaluation.checks
        if not c.passed
    ]
    return {
        "id": repair.candidate_id,
        "turn": repair.turn,
        "cases": cases[:MAX_FAILURES],
        **_failure(Attempt(repair.source, repair.evaluation)),
    }


def _profiled(profile: Profile | None) -> list[KernelProfile]:
    """The profiled launches that took longest, longest first."""
    if profile is None:
        return []
    return sorted(profile.kernels, key=lambda k: -k.duration_us)[:PROFILED_KERNELS]


def _first_diagnostic(diagnostics: list[Diagnostic]) -> Diagnostic | None:
    """The first diagnostic that names a line, else the first one."""
    located = [d for d in diagnostics if d.line is not None]
    return located[0] if located else diagnostics[0] if diagnostics else None
