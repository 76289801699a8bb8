"""`Knob`s of a kernel module's launch meta-parameters, found and rewritten without running it.

Knobs are found in host code through the syntax tree; values are spliced in at the literal's
place, so comments and layout survive. A block may shrink only when the kernel loops over it, or
tiles its grid with it and the grid follows the value; a block that covers a whole row only grows.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import cast

_POW2 = tuple(2**i for i in range(17))
_LEGAL = {
    "tile": tuple(p for p in _POW2 if 16 <= p <= 1024),  # one side of a 2D tile: BLOCK_M, ...
    "block": tuple(p for p in _POW2 if 64 <= p <= 65536),  # a 1D block: BLOCK, BLOCK_SIZE
    "group": (1, 2, 4, 8, 16),
    "rows": (1, 2, 4, 8, 16),
    "num_warps": (1, 2, 4, 8, 16, 32),
    "num_stages": (1, 2, 3, 4, 5, 6),
}
SIZES = ("tile", "block", "rows")  # families where larger means more work per program
_LAUNCH_KEYWORDS = ("num_warps", "num_stages")
_Edit = tuple[int, int, str]  # replace bytes [start, end) of the source with the text
_Writer = Callable[[int], list[_Edit]]


@dataclass(frozen=True)
class Knob:
    """One tunable found in a module."""

    kind: str  # "constexpr", "num_warps", "num_stages" or "autotune"
    name: str
    line: int
    value: int | None  # the current literal value; None when absent or computed
    choices: tuple[int, ...]  # legal values


@dataclass(frozen=True)
class Site:
    """A knob, its family (a key of _LEGAL, or "configs") and how to write a value for it."""

    knob: Knob
    family: str
    write: _Writer


class SourceText:
    """The source as bytes, with the byte span of syntax-tree nodes."""

    def __init__(self, source: str) -> None:
        self.data = source.encode()
        lengths = (len(line) for line in self.data.splitlines(keepends=True))
        self._starts = [0, *itertools.accumulate(lengths)]

    def span(self, node: ast.expr) -> tuple[int, int]:
        """Byte offsets where `node` begins and just past its end."""
        end = self._starts[(node.end_lineno or node.lineno) - 1] + (node.end_col_offset or 0)
        return self._starts[node.lineno - 1] + node.col_offset, end

    def splice(self, edits: list[_Edit]) -> str:
        """The source with `edits` applied; ValueError if two of them overlap."""
        data, last = self.data, len(self.data)
        for start, end, text in sorted(edits, reverse=True):
            if end > last:
                raise ValueError("settings touch overlapping text")
            data, last = data[:start] + text.encode() + data[end:], start
        return data.decode()


def find_knobs(source: str) -> list[Knob]:
    """The tunables of a kernel module's host code; SyntaxError for invalid Python."""
    return [site.knob for site in find_sites(source)]


def apply(source: str, settings: Mapping[str, int]) -> str | None:
    """The source with knobs set to `settings` (ValueError if one is not legal), None if same."""
    return render(SourceText(source), find_sites(source), settings)


def render(text: SourceText, sites: list[Site], settings: Mapping[str, int]) -> str | None:
    """The text with each named knob set; ValueError for an unknown knob or illegal value."""
    by_name = {site.knob.name: site for site in sites}
    edits: list[_Edit] = []
    for name, value in settings.items():
        site = by_name.get(name)
        if site is None or value not in site.knob.choices:
            raise ValueError(f"no knob {name!r} takes the value {value}")
        edits += site.write(value) if value != site.knob.value else []
    return text.splice(edits) if edits else None


def find_sites(source: str) -> list[Site]:
    """Every knob of the module with its writer, in source order, uniquely named."""
    tree, text = ast.parse(source), SourceText(source)
    defs = [fn for fn in tree.body if isinstance(fn, ast.FunctionDef)]
    kernels = {fn.name: fn for fn in defs if _decorator(fn, "jit") is not None}
    found, consts = list[Site](), _module_ints(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Subscript):
            kernel = kernels.get(_dotted(node.func.value))
            found += _launch_sites(node, kernel, consts, text) if kernel else []
    for fn in kernels.values():
        found += _autotune_sites(fn, text)
    best: dict[tuple[str, int], Site] = {}  # a constant passed twice: the most cautious use
    for s in sorted(found, key=lambda s: s.knob.line):
        key = (s.knob.name, s.knob.line)
        if key not in best or len(s.knob.choices) < len(best[key].knob.choices):
            best[key] = s
    names = [name for name, _ in best]
    return [
        dataclasses.replace(s, knob=dataclasses.replace(s.knob, name=f"{name}@{line}"))
        if names.count(name) > 1
        else s
        for (name, line), s in best.items()
        if s.knob.choices
    ]


def _launch_sites(
    call: ast.Call, fn: ast.FunctionDef, consts: dict[str, ast.Constant], text: SourceText
) -> Iterator[Site]:
    """Sites of one `kernel[grid](...)` launch, including the module constants it passes."""
    assert isinstance(call.func, ast.Subscript)
    linked = isinstance(call.func.slice, ast.Lambda)  # a grid of `meta` follows any new value
    tuned = _decorator(fn, "autotune") is not None  # launch num_warps would clash with it
    for kw in call.keywords:
        name, value, family = kw.arg or "", kw.value, _family(kw.arg or "")
        if family is None or (tuned and family in _LAUNCH_KEYWORDS):
            continue
        if isinstance(value, ast.Name) and value.id in consts:
            shrink = _shrinkable(fn, name, family, linked=True)
            yield _literal_site(value.id, consts[value.id], family, shrink, text)
        elif (literal := _literal(value)) is not None:
            yield _literal_site(name, literal, family, _shrinkable(fn, name, family, linked), text)
        elif family in SIZES and _shrinkable(fn, name, family, linked):
            start, end = text.span(value)
            template = f"min({text.data[start:end].decode()}, {{}})"
            knob = Knob("constexpr", name, value.lineno, None, _LEGAL[family])
            yield Site(knob, family, _writer(start, end, template))
    present = {kw.arg for kw in call.keywords}
    args = [*call.args, *(kw.value for kw in call.keywords)]
    if not tuned and None not in present and args:
        at = max(text.span(arg)[1] for arg in args)
        for name in (n for n in _LAUNCH_KEYWORDS if n not in present):
            knob = Knob(name, name, call.lineno, None, _LEGAL[name])
            yield Site(knob, name, _writer(at, at, f", {name}={{}}"))


def _autotune_sites(fn: ast.FunctionDef, text: SourceText) -> Iterator[Site]:
    """Literal values of each `triton.Config({...}, ...)`, and how many configs are kept."""
    configs = _autotune_list(fn)
    if configs is None:
        return
    for i, cfg in enumerate(configs.elts):
        if not (isinstance(cfg, ast.Call) and cfg.args and isinstance(cfg.args[0], ast.Dict)):
            continue
        meta = zip(cfg.args[0].keys, cfg.args[0].values, strict=True)
        pairs = [(k.value, v) for k, v in meta if isinstance(k, ast.Constant)]
        for key, value in [*pairs, *((kw.arg, kw.value) for kw in cfg.keywords)]:
            family, literal = _family(key) if isinstance(key, str) else None, _literal(value)
            if isinstance(key, str) and family is not None and literal is not None:
                shrink = _shrinkable(fn, key, family, linked=True)
                yield _literal_site(
                    f"configs[{i}].{key}", literal, family, shrink, text, "autotune"
                )
    n, ends = len(configs.elts), [text.span(cfg)[1] for cfg in configs.elts]
    knob = Knob("autotune", "configs", configs.lineno, n, tuple(range(1, n + 1)))
    yield Site(knob, "configs", lambda k: [(ends[k - 1], ends[-1], "")])


def _literal_site(
    name: str, node: ast.Constant, family: str, shrink: bool, text: SourceText, kind: str = ""
) -> Site:
    """A knob at the int literal `node`; only values not below it unless it may `shrink`."""
    value = cast(int, node.value)
    choices = tuple(c for c in _LEGAL[family] if shrink or c >= value)
    kind = kind or (family if family in _LAUNCH_KEYWORDS else "constexpr")
    return Site(Knob(kind, name, node.lineno, value, choices), family, _writer(*text.span(node)))


def _writer(start: int, end: int, template: str = "{}") -> _Writer:
    """A writer that puts `template`, filled with the value, over bytes [start, end)."""
    return lambda v: [(start, end, template.format(v))]


def _family(name: str) -> str | None:
    """Which legal range a launch keyword or config key takes, or None if it is no knob."""
    if name in _LAUNCH_KEYWORDS:
        return name
    if not name.isupper() or name.startswith(("NUM_", "N_")):  # counts, not sizes
        return None
    if name.startswith("GROUP"):
        return "group"
    if "ROWS" in name:
        return "rows"
    if "BLOCK" in name or "TILE" in name:
        return "tile" if name[-2:-1] == "_" and name[-1].isalpha() else "block"
    return None


def _shrinkable(fn: ast.FunctionDef, param: str, family: str, linked: bool) -> bool:
    """Whether a smaller value stays correct: the kernel loops over it, or the grid follows it."""
    if family not in SIZES:
        return True
    loops = [n.iter for n in ast.walk(fn) if isinstance(n, ast.For)]
    steps = [i.args[2] for i in loops if isinstance(i, ast.Call) and len(i.args) == 3]
    tiles = _tiles_grid(fn, param)
    return (linked or not tiles) and (tiles or any(param in _names(s) for s in steps))


def _tiles_grid(fn: ast.FunctionDef, param: str) -> bool:
    """Whether `param` multiplies something derived from `tl.program_id`."""
    pids: set[str] = set()
    for a in sorted((n for n in ast.walk(fn) if isinstance(n, ast.Assign)), key=lambda a: a.lineno):
        pids |= {x for t in a.targets for x in _names(t)} if _from_pid(a.value, pids) else set()
    products = [n for n in ast.walk(fn) if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult)]
    return any(
        param in _names(a) and _from_pid(b, pids)
        for n in products
        for a, b in ((n.left, n.right), (n.right, n.left))
    )


def _from_pid(node: ast.expr, pids: set[str]) -> bool:
    """Whether `node` calls `program_id` or uses a name derived from it."""
    calls = (n for n in ast.walk(node) if isinstance(n, ast.Call))
    return bool(_names(node) & pids) or any(_dotted(c.func).endswith("program_id") for c in calls)


def _names(node: ast.AST) -> set[str]:
    """The identifiers used in `node`."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _dotted(node: ast.expr) -> str:
    """The dotted name ("triton.jit") of a name or attribute chain, else ""."""
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def _literal(node: ast.expr) -> ast.Constant | None:
    """The positive int literal of `node`, or the cap of `min(expr, <int>)`."""
    if isinstance(node, ast.Call) and _dotted(node.func) == "min" and node.args:
        node = node.args[-1]
    ok = isinstance(node, ast.Constant) and type(node.value) is int and node.value > 0
    return node if ok and isinstance(node, ast.Constant) else None


def _module_ints(tree: ast.Module) -> dict[str, ast.Constant]:
    """Upper-case module constants bound to an int literal, by name (the last binding)."""
    found: dict[str, ast.Constant] = {}
    for stmt in tree.body:
        pairs = [(t, stmt.value) for t in stmt.targets] if isinstance(stmt, ast.Assign) else []
        if isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            pairs = [(stmt.target, stmt.value)]
        for target, value in pairs:
            literal = _literal(value)
            if isinstance(target, ast.Name) and target.id.isupper() and literal:
                found[target.id] = literal
    return found


def _decorator(fn: ast.FunctionDef, last: str) -> ast.expr | None:
    """The decorator of `fn` whose dotted name ends in `last` ("jit", "autotune"), if any."""
    for deco in fn.decorator_list:
        if _dotted(deco.func if isinstance(deco, ast.Call) else deco).split(".")[-1] == last:
            return deco
    return None


def _autotune_list(fn: ast.FunctionDef) -> ast.List | None:
    """The literal `configs=[...]` list of the kernel's `triton.autotune`, if it has one."""
    deco = _decorator(fn, "autotune")
    if not isinstance(deco, ast.Call):
        return None
    args = [*deco.args[:1], *(kw.value for kw in deco.keywords if kw.arg == "configs")]
    lists = [a for a in args if isinstance(a, ast.List) and a.elts]
    return lists[0] if lists else None
