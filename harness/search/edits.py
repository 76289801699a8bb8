"""Turn an LLM reply into a whole kernel module: SEARCH/REPLACE edits or a fenced full module."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

_SEARCH = re.compile(r"^\s*<{5,9}\s*SEARCH\s*$")
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_REPLACE = re.compile(r"^\s*>{5,9}\s*REPLACE\s*$")
_FENCE = re.compile(r"^\s*```\s*([\w+-]*)\s*$")
_PYTHON_TAGS = frozenset({"", "python", "py", "python3"})


@dataclass(frozen=True)
class Edit:
    """One SEARCH/REPLACE block: the text to find and what replaces it."""

    search: str
    replace: str


def apply_reply(reply: str, parent_source: str) -> str | None:
    """The new module a reply describes, or None when it holds no usable, parseable module."""
    reply = reply.replace("\r\n", "\n")
    edits = parse_edits(reply)
    if edits:
        edited = apply_edits(parent_source, edits)
        if edited is not None and _parses(edited):
            return edited
    return full_module(reply)


def parse_edits(reply: str) -> list[Edit]:
    """The complete SEARCH/REPLACE blocks of a reply, in order; unfinished blocks are dropped."""
    edits: list[Edit] = []
    search: list[str] = []
    replace: list[str] = []
    state = "text"
    for line in reply.split("\n"):
        if state == "text" and _SEARCH.match(line):
            state, search, replace = "search", [], []
        elif state == "search" and _DIVIDER.match(line):
            state = "replace"
        elif state == "replace" and _REPLACE.match(line):
            edits.append(Edit("\n".join(search), "\n".join(replace)))
            state = "text"
        elif state == "search":
            search.append(line)
        elif state == "replace":
            replace.append(line)
    return edits


def apply_edits(source: str, edits: list[Edit]) -> str | None:
    """The source with every edit applied in order, or None if any edit's SEARCH is not found."""
    for edit in edits:
        edited = _apply_exact(source, edit)
        if edited is None:
            edited = _apply_loose(source, edit)
        if edited is None:
            return None
        source = edited
    return source


def full_module(reply: str) -> str | None:
    """The longest python fence of the reply that parses and defines a function or class."""
    modules = [code for code in _python_fences(reply) if _defines_code(code)]
    return max(modules, key=len) if modules else None


def _apply_exact(source: str, edit: Edit) -> str | None:
    """The source with the first exact occurrence of the SEARCH text replaced."""
    if not edit.search.strip() or edit.search not in source:
        return None
    return source.replace(edit.search, edit.replace, 1)


def _apply_loose(source: str, edit: Edit) -> str | None:
    """The source with a run of lines equal to SEARCH up to whitespace replaced, re-indented."""
    wanted = _trim_blank(edit.search.split("\n"))
    if not wanted:
        return None
    lines = source.split("\n")
    keys = [_key(line) for line in wanted]
    for start in range(len(lines) - len(wanted) + 1):
        window = lines[start : start + len(wanted)]
        if [_key(line) for line in window] == keys:
            replacement = _reindent(edit.replace.split("\n"), wanted, window)
            return "\n".join(lines[:start] + replacement + lines[start + len(wanted) :])
    return None


def _reindent(replacement: list[str], wanted: list[str], found: list[str]) -> list[str]:
    """The replacement lines shifted by the indentation the source has and SEARCH lacked."""
    have, want = _indent(found), _indent(wanted)
    if have.startswith(want):
        extra = have[len(want) :]
        return [extra + line if line.strip() else line for line in replacement]
    if want.startswith(have):
        excess = want[len(have) :]
        return [line.removeprefix(excess) for line in replacement]
    return replacement


def _indent(lines: list[str]) -> str:
    """The leading whitespace of the first non-blank line."""
    first = next((line for line in lines if line.strip()), "")
    return first[: len(first) - len(first.lstrip())]


def _trim_blank(lines: list[str]) -> list[str]:
    """The lines without leading and trailing blank lines."""
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def _key(line: str) -> str:
    """The line with all whitespace removed, for a whitespace-insensitive comparison."""
    return "".join(line.split())


def _python_fences(reply: str) -> list[str]:
    """The contents of closed ``` fences tagged python (or untagged), in order."""
    fences: list[str] = []
    body: list[str] | None = None
    tag = ""
    for line in reply.split("\n"):
        match = _FENCE.match(line)
        if body is None and match:
            body, tag = [], match.group(1).lower()
        elif body is not None and line.strip() == "```":
            if tag in _PYTHON_TAGS:
                fences.append("\n".join(body) + "\n")
            body = None
        elif body is not None:
            body.append(line)
    return fences


def _defines_code(code: str) -> bool:
    """True when the code parses and defines a function or class at top level."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return any(isinstance(node, ast.FunctionDef | ast.ClassDef) for node in tree.body)


def _parses(source: str) -> bool:
    """True when the source is valid Python."""
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return True
