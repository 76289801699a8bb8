"""One kernel module holding a variant per kind of GPU, chosen at run time from the device.

Each variant is a whole kernel module (the repo's original, and each hardware's winner). They are
merged into one file: every top-level name a variant binds gets that variant's suffix, so their
kernels, constants and helpers cannot collide, and a dispatcher under the op's entry name picks
the variant whose hardware label appears in the GPU's name, else the original. The result is a
single module again, so the harness judges it like any candidate; on a CPU the dispatcher runs the
original, so `default` builds the same module with another variant run there, for its check.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping

ORIGINAL = "original"
_LABEL = re.compile(r"[^a-z0-9]+")


class VariantError(ValueError):
    """A variant that cannot be merged: names which and why."""


def combine(entry: str, original: str, winners: Mapping[str, str], default: str = ORIGINAL) -> str:
    """The merged module: `winners` maps a hardware label (e.g. "h100") to its kernel module.

    `default` is the variant run on a CPU and on GPUs with none of their own: the original in
    what is published; a label to check that variant's code through Triton's interpreter.
    """
    if not winners:
        return original
    variants = {ORIGINAL: original, **{tag(label): src for label, src in winners.items()}}
    if len(variants) != len(winners) + 1:
        raise VariantError(f"hardware labels {sorted(winners)} collide once made identifiers")
    fallback = ORIGINAL if default == ORIGINAL else tag(default)
    if fallback not in variants:
        raise VariantError(f"default {default!r} is none of the variants {sorted(variants)}")
    imports: list[str] = []
    bodies: list[str] = []
    for suffix, source in variants.items():
        module_imports, body = _renamed(suffix, source, entry)
        imports += [i for i in module_imports if i not in imports]
        bodies.append(f"# --- variant: {suffix} ---\n{body}")
    if "import torch" not in imports:
        imports.append("import torch")
    header = '"""Kernels for this op, one variant per GPU kind, merged by kevolve."""\n\n'
    future = [i for i in imports if i.startswith("from __future__")]
    rest = [i for i in imports if i not in future]
    code = "\n".join(future + rest) + "\n\n\n" + "\n\n".join(bodies)
    return header + code + _dispatcher(entry, list(variants)[1:], fallback)


def _dispatcher(entry: str, tags: list[str], fallback: str) -> str:
    """The table of labels, `_pick` and the entry function that runs the variant picked."""
    # The longer label first, so that "h100_nvl" is tried before the "h100" it contains.
    ordered = sorted(tags, key=lambda t: (-len(t), t))
    table = ",\n".join(f"    ({t!r}, {entry}__{t})" for t in ordered)
    return f'''

# Hardware label -> variant; a label matches when it appears in the GPU's name, both written in
# lower case with `_` for spaces and dashes ("h100" matches "NVIDIA H100 80GB HBM3"); the first
# match wins.
_VARIANTS = (
{table},
)


def _pick(device):
    """The variant for a device: the first label found in a GPU's name, else the original."""
    if device is not None and device.type == "cuda":
        name = torch.cuda.get_device_name(device).lower().replace(" ", "_").replace("-", "_")
        for label, variant in _VARIANTS:
            if label in name:
                return variant
    return {entry}__{fallback}


def {entry}(*args, **kwargs):
    """Run the variant found for this GPU; the original kernel on any other device."""
    device = next((a.device for a in args if isinstance(a, torch.Tensor)), None)
    return _pick(device)(*args, **kwargs)
'''


def tag(label: str) -> str:
    """A label as an identifier suffix: lower case, runs of other characters as `_`."""
    made = _LABEL.sub("_", label.lower()).strip("_")
    if not made:
        raise VariantError(f"hardware label {label!r} has no letters or digits")
    return made


def matches(label: str, gpu: str) -> bool:
    """Whether a merged module's `_pick` finds `label` in a GPU of that name (as CUDA names it)."""
    return tag(label) in gpu.lower().replace(" ", "_").replace("-", "_")


def _renamed(suffix: str, source: str, entry: str) -> tuple[list[str], str]:
    """The variant's import lines and its other code with every top-level name suffixed."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise VariantError(f"variant {suffix}: not valid Python (line {exc.lineno})") from None
    imports = [ast.unparse(n) for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    body = [n for n in tree.body if not isinstance(n, ast.Import | ast.ImportFrom)]
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the module docstring; the merged module has its own
    names = _bound(body)
    if entry not in names:
        raise VariantError(f"variant {suffix}: defines no top-level `{entry}`")
    module = ast.Module(body=body, type_ignores=[])
    _Suffix(names, suffix).visit(module)
    return imports, ast.unparse(ast.fix_missing_locations(module))


def _bound(body: list[ast.stmt]) -> set[str]:
    """The names the module's top-level statements bind (functions, classes, assignments)."""
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


class _Suffix(ast.NodeTransformer):
    """Renames the module's own top-level names wherever they mean the module's binding.

    Inside a function a parameter or local of the same name shadows the module's (a kernel's
    `BLOCK: tl.constexpr` beside a module constant `BLOCK`), and stays as it is.
    """

    def __init__(self, names: set[str], suffix: str) -> None:
        self.names, self.tag = names, suffix
        self.shadowed: list[set[str]] = [set()]

    def _new(self, name: str) -> str:
        local = name in self.shadowed[-1]
        return f"{name}__{self.tag}" if name in self.names and not local else name

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self._new(node.id)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        if len(self.shadowed) == 1:
            node.name = self._new(node.name)
        for decorator in node.decorator_list:
            self.visit(decorator)
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        self.shadowed.append(self.shadowed[-1] | _locals(node))
        for stmt in node.body:
            self.visit(stmt)
        self.shadowed.pop()
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.ClassDef:
        if len(self.shadowed) == 1:
            node.name = self._new(node.name)
        self.generic_visit(node)
        return node

    def visit_Global(self, node: ast.Global) -> ast.Global:
        node.names = [f"{n}__{self.tag}" if n in self.names else n for n in node.names]
        return node


def _locals(fn: ast.FunctionDef) -> set[str]:
    """A function's parameters and the names its body binds, less those it declares global."""
    args = fn.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    names = {a.arg for a in every if a is not None}
    declared: set[str] = set()
    for node in ast.walk(ast.Module(body=fn.body, type_ignores=[])):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Global):
            declared.update(node.names)
    return names - declared
