"""Static screen: the constructs a legitimate Triton kernel module never needs (pure `ast`)."""

from __future__ import annotations

import ast
import builtins
from collections.abc import Sequence
from dataclasses import dataclass

from kevolve.harness.screen_rules import (
    ALLOWED_DUNDERS,
    ALLOWED_MODULES,
    ASYNC_WORDS,
    ATTR_BUILTINS,
    ESCAPE_BUILTINS,
    FAMILY_TEXT,
    FORBIDDEN_NAMES,
    FRAME_ATTRS,
    IMPORT_FAMILIES,
    JIT_DECORATORS,
    JIT_NAMES,
    TENSOR_COMPUTE_METHODS,
    TORCH_DTYPES,
    TORCH_HOST_API,
    TORCH_STREAM_API,
)

_BUILTIN_NAMES = frozenset(dir(builtins))
_NEW_SCOPES = (
    ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef,
    ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
)  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """One construct that cannot be part of a legitimate kernel module."""

    line: int  # 1-based line in the candidate
    construct: str  # short name, e.g. "torch.softmax", "try/except", "import os", "x.sum()"
    family: str  # a key of FAMILY_TEXT
    message: str  # what is wrong and what to do instead, in one sentence


def screen(source: str, allowed_imports: Sequence[str] = ()) -> list[Finding]:
    """Every construct in `source` that cannot be in a legitimate kernel module, in line order."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []  # the loader reports the compile error with its line
    visitor = _Screen(_aliases(tree), _bindings(tree), tuple(allowed_imports))
    visitor.visit(tree)
    unique: dict[tuple[int, str], Finding] = {}
    for finding in sorted(visitor.findings, key=lambda f: f.line):
        unique.setdefault((finding.line, finding.construct), finding)
    return list(unique.values())


def _message(construct: str, family: str) -> str:
    """The one-sentence message for a non-import finding."""
    what, fix = FAMILY_TEXT[family]
    return f"{construct} {what}; {fix}."


def _torch_family(path: str) -> str | None:
    """The family of using torch API `path` on the host, or None when a launcher may use it."""
    rel = path.removeprefix("torch.").removesuffix(".__init__").removesuffix(".__name__")
    head, _, tail = rel.partition(".")
    layer = head == "nn" and tail[:1].isupper() and "." not in tail
    if rel in TORCH_HOST_API or head in TORCH_DTYPES or layer:
        return None  # dtype metadata; nn.<Layer> holds weights, and calling one fails at run time
    if any(rel == api or rel.startswith(f"{api}.") for api in TORCH_STREAM_API):
        return "concurrency"
    return "torch-compute"


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Each name an import binds, mapped to the dotted path of what it refers to."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                root = a.name.partition(".")[0]
                aliases[a.asname or root] = a.name if a.asname else root
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


@dataclass(frozen=True)
class _Binding:
    """One statement outside any function that binds a name."""

    line: int
    how: str  # "import", "def", "class", "assignment" or "star import"
    path: str | None  # for an import, the dotted path of what it binds


def _bindings(tree: ast.Module) -> dict[str, list[_Binding]]:
    """Each name bound outside functions (class bodies included), star imports under "*"."""
    found: dict[str, list[_Binding]] = {}
    pending: list[ast.AST] = [*tree.body]
    while pending:
        node = pending.pop()
        for name, binding in _bound_by(node):
            found.setdefault(name, []).append(binding)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            pending.extend(ast.iter_child_nodes(node))
    return {name: sorted(sites, key=lambda b: b.line) for name, sites in found.items()}


def _bound_by(node: ast.AST) -> list[tuple[str, _Binding]]:
    """The names `node` itself binds, each with how."""
    line = getattr(node, "lineno", 0)
    if isinstance(node, ast.Import):
        return [
            (a.asname or a.name.partition(".")[0],
             _Binding(line, "import", a.name if a.asname else a.name.partition(".")[0]))
            for a in node.names
        ]  # fmt: skip
    if isinstance(node, ast.ImportFrom):
        module = "." * node.level + (node.module or "")
        prefix = f"{module}." if node.module else module  # `from . import x` refers to .x
        return [
            ("*", _Binding(line, "star import", module)) if a.name == "*"
            else (a.asname or a.name, _Binding(line, "import", f"{prefix}{a.name}"))
            for a in node.names
        ]  # fmt: skip
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        how = "class" if isinstance(node, ast.ClassDef) else "def"
        return [(node.name, _Binding(line, how, None))]
    if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
        return [(node.id, _Binding(line, "assignment", None))]
    name = getattr(node, "name", None)  # except ... as name, match captures
    if isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and name:
        return [(name, _Binding(line, "assignment", None))]
    return []


def _local_names(fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> frozenset[str]:
    """Names bound in `fn`'s own scope; there they never resolve to a builtin."""
    args = fn.args
    params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    names = {a.arg for a in params if a is not None}
    declared: set[str] = set()
    body = fn.body if isinstance(fn.body, list) else [fn.body]
    pending: list[ast.AST] = [*body]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).partition(".")[0] for a in node.names)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            declared.update(node.names)
        if not isinstance(node, _NEW_SCOPES):
            pending.extend(ast.iter_child_nodes(node))
    return frozenset(names - declared)


def _chain(node: ast.Attribute) -> tuple[ast.Name, list[str]] | None:
    """The root name and attribute names of `a.b.c`, or None if it is not rooted at a name."""
    parts: list[str] = []
    current: ast.expr = node
    while isinstance(current, ast.Attribute):
        parts.append(current.attr)
        current = current.value
    return (current, parts[::-1]) if isinstance(current, ast.Name) else None


def _root(node: ast.expr) -> ast.Name | None:
    """The name under a chain of attributes and subscripts, if there is one."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node if isinstance(node, ast.Name) else None


def _text(node: ast.AST) -> str:
    """Source text of `node`, cut short enough to name it in a message."""
    text = ast.unparse(node)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _introspective(attr: str) -> bool:
    """True for dunder and frame/code attributes, the doors into interpreter internals."""
    dunder = attr.startswith("__") and attr.endswith("__") and attr not in ALLOWED_DUNDERS
    return dunder or attr in FRAME_ATTRS


class _Screen(ast.NodeVisitor):
    """Collects findings; rules on torch API, tensor methods and `@` apply to host code only."""

    def __init__(
        self, aliases: dict[str, str], bindings: dict[str, list[_Binding]],
        allowed_imports: tuple[str, ...],
    ) -> None:  # fmt: skip
        self.aliases = aliases
        self.bindings = bindings
        self.allowed_imports = allowed_imports
        self.findings: list[Finding] = []
        self._scopes: list[frozenset[str]] = []
        self._device = False  # inside a @triton.jit (or autotune/heuristics) function

    def _add(self, line: int, construct: str, family: str) -> None:
        self.findings.append(Finding(line, construct, family, _message(construct, family)))

    def _shadowed(self, name: str) -> bool:
        """True when an enclosing function binds `name`, so it is not the builtin there."""
        return any(name in scope for scope in self._scopes)

    def _module_allowed(self, module: str) -> bool:
        """True for the allow-listed modules and the caller's extras with their submodules."""
        extra = any(module == m or module.startswith(f"{m}.") for m in self.allowed_imports)
        return module in ALLOWED_MODULES or extra

    def _check_module(self, module: str, line: int) -> bool:
        """Report `module` unless it may be imported; True when it may."""
        if self._module_allowed(module):
            return True
        family = IMPORT_FAMILIES.get(module.partition(".")[0], "import")
        message = (
            f"imports {module}, which {FAMILY_TEXT[family][0]}; "
            "only torch, triton and the standard math/typing helpers are allowed."
        )
        self.findings.append(Finding(line, f"import {module}", family, message))
        return False

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_module(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level:  # a relative import reaches files outside the candidate
            self._check_module("." * node.level + module, node.lineno)
        elif self._check_module(module, node.lineno):
            for alias in node.names:
                self._check_imported_name(module, alias.name, node.lineno)

    def _check_imported_name(self, module: str, name: str, line: int) -> None:
        """Apply the private-name and torch rules to `from module import name`."""
        path = f"{module}.{name}"
        torch = module.partition(".")[0] == "torch"
        if name == "*" and torch:
            self._add(line, f"from {module} import *", "torch-compute")
        elif name.startswith("_"):
            self._add(line, path, "introspection")
        elif torch and not self._module_allowed(path) and (family := _torch_family(path)):
            self._add(line, path, family)

    def visit_Name(self, node: ast.Name) -> None:
        path = self.aliases.get(node.id)
        if path is None:
            self._check_name(node)
        elif path.partition(".")[0] == "torch" and not self._device:
            family = _torch_family(path)  # a bare `torch` or `F` alias dodges the chain rules
            if family:
                self._add(node.lineno, path, family)

    def _check_name(self, node: ast.Name) -> None:
        """Report forbidden dunder names and unshadowed escape builtins."""
        if node.id in FORBIDDEN_NAMES:
            self._add(node.lineno, node.id, "introspection")
        elif node.id in ESCAPE_BUILTINS and not self._shadowed(node.id):
            self._add(node.lineno, f"{node.id}()", ESCAPE_BUILTINS[node.id])

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain = _chain(node)
        if chain is None:
            if _introspective(node.attr):
                self._add(node.lineno, _text(node), "introspection")
            else:
                self._check_store(node)
            self.generic_visit(node)
            return
        root, parts = chain
        self._check_chain(node, root, parts)
        if root.id not in self.aliases:
            self._check_name(root)

    def _check_chain(self, node: ast.Attribute, root: ast.Name, parts: list[str]) -> None:
        """At most one finding for `root.a.b`: internals, patching, private names, then torch."""
        names = [root.id, *parts]
        for i, part in enumerate(parts):
            if _introspective(part):
                self._add(node.lineno, ".".join(names[: i + 2]), "introspection")
                return
        if self._check_store(node) or root.id not in self.aliases:
            return
        path = ".".join([self.aliases[root.id], *parts])
        if any(p.startswith("_") and p not in ALLOWED_DUNDERS for p in parts):
            self._add(node.lineno, path, "introspection")
        elif path.startswith("torch.") and not self._device and (family := _torch_family(path)):
            self._add(node.lineno, path, family)

    def _check_store(self, node: ast.Attribute | ast.Subscript) -> bool:
        """Report assigning or deleting into a module or builtin; True when reported."""
        root = _root(node)
        if isinstance(node.ctx, ast.Load) or root is None:
            return False
        builtin = root.id in _BUILTIN_NAMES and not self._shadowed(root.id)
        if root.id not in self.aliases and not builtin:
            return False
        self._add(node.lineno, _text(node), "monkeypatch")
        return True

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self._check_store(node)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in ATTR_BUILTINS and not self._shadowed(func.id):
            self._visit_attr_builtin(node, func.id)
            return
        if isinstance(func, ast.Attribute) and self._host_compute_method(func):
            self._add(node.lineno, f"{_text(func.value)}.{func.attr}()", "torch-compute")
        self.generic_visit(node)

    def _host_compute_method(self, func: ast.Attribute) -> bool:
        """True for `<tensor>.sum(...)`-like calls in host code (not `math.prod`, `torch.x`)."""
        root = _root(func.value)
        on_module = root is not None and root.id in self.aliases
        return not self._device and func.attr in TENSOR_COMPUTE_METHODS and not on_module

    def _visit_attr_builtin(self, node: ast.Call, name: str) -> None:
        """Check `getattr(obj, "x")` as `obj.x`; a computed attribute name is introspection."""
        args = node.args
        rest: list[ast.AST] = [*args, *node.keywords]
        if len(args) >= 2 and isinstance(args[1], ast.Constant) and isinstance(args[1].value, str):
            access = ast.Attribute(value=args[0], attr=args[1].value, ctx=ATTR_BUILTINS[name]())
            self.visit(ast.copy_location(access, node))
            rest = [*args[2:], *node.keywords]
        else:
            self._add(node.lineno, f"{name}()", "introspection")
        for child in rest:
            self.visit(child)

    def visit_BinOp(self, node: ast.BinOp | ast.AugAssign) -> None:
        if isinstance(node.op, ast.MatMult) and not self._device:
            self._add(node.lineno, _text(node), "torch-compute")
        self.generic_visit(node)

    visit_AugAssign = visit_BinOp

    def visit_Try(self, node: ast.Try | ast.TryStar) -> None:
        self._add(node.lineno, "try/except", "fallback")
        self.generic_visit(node)

    visit_TryStar = visit_Try

    def visit_Global(self, node: ast.Global | ast.Nonlocal) -> None:
        self._add(node.lineno, ast.unparse(node), "monkeypatch")

    visit_Nonlocal = visit_Global

    def visit_Await(self, node: ast.Await | ast.AsyncFor | ast.AsyncWith) -> None:
        self._add(node.lineno, ASYNC_WORDS[type(node)], "concurrency")
        self.generic_visit(node)

    visit_AsyncFor = visit_AsyncWith = visit_Await

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._add(node.lineno, f"async def {node.name}", "concurrency")
        self.visit_FunctionDef(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:  # decorators run on the host
            self.visit(decorator)
        triton = [self._is_triton_decorator(d) for d in node.decorator_list]
        device = self._device or any(triton)
        returns = [node.returns] if node.returns else []
        self._visit_scope(node, [node.args, *returns, *node.body], device)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._visit_scope(node, [node.args, node.body], self._device)

    def _visit_scope(
        self, fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda,
        children: list[ast.AST], device: bool,
    ) -> None:  # fmt: skip
        """Visit a function's parts with its local names in scope and device mode set."""
        saved = self._device
        self._scopes.append(_local_names(fn))
        self._device = device
        for child in children:
            self.visit(child)
        self._device = saved
        self._scopes.pop()

    def _is_triton_decorator(self, decorator: ast.expr) -> bool:
        """True for Triton's jit/autotune/heuristics; a decoy of one of them is reported."""
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        chain = _chain(target) if isinstance(target, ast.Attribute) else None
        root, parts = chain or ((target, []) if isinstance(target, ast.Name) else (None, []))
        if root is None:
            return False
        path, why = self._resolve(root.id)
        full = ".".join([path, *parts]) if path else None
        if full in JIT_DECORATORS:
            return True
        if (parts[-1] if parts else root.id) in JIT_NAMES:
            what = ast.unparse(target)
            if why is None:  # resolved, to something else
                why = f"`{root.id}` refers to {path}"
            message = (
                f"@{_text(target)} is not Triton's decorator: {why}, so the function would pass "
                "as a kernel; import it with `import triton` or `from triton import "
                f"{what.rpartition('.')[2]}` and bind no other name `{root.id}`."
            )
            self.findings.append(Finding(decorator.lineno, f"@{_text(target)}", "decoy", message))
        return False

    def _resolve(self, name: str) -> tuple[str | None, str | None]:
        """What module-level `name` refers to (its import path), or None with why not."""
        if self._shadowed(name):
            return None, f"`{name}` is bound inside the enclosing function"
        sites = self.bindings.get(name, [])
        other = [b for b in sites if b.how != "import"]
        if other:
            return None, f"`{name}` is rebound by {other[0].how} at line {other[0].line}"
        paths = list(dict.fromkeys(b.path for b in sites))
        if len(paths) > 1:
            return None, f"`{name}` is imported twice, again at line {sites[-1].line}"
        if paths:
            return paths[0], None
        if star := self.bindings.get("*"):
            where = f"`from {star[0].path} import *` (line {star[0].line})"
            return None, f"`{name}` may come from {where}"
        return None, f"`{name}` is never imported"
