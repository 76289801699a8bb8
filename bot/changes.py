"""`KernelChange`: what a candidate changed in the repo's kernel, as a pull request shows it.

Either only named values changed (launch parameters, constexpr blocks, autotune config values:
`num_warps: 4 → 8`), found by comparing the two modules' tokens with every number masked, or the
code itself changed, counted in lines. Both texts are untrusted (the repo's kernel and a
candidate): they are only tokenized and diffed here, never parsed for meaning or run, and the
diff is made safe to put inside a Markdown code fence.
"""

from __future__ import annotations

import difflib
import io
import keyword
import re
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

RETUNED_SHOWN = 12  # changed values a pull request names
DIFF_CHARS = 40_000  # of the diff a pull request body shows (GitHub takes 65,536 in all)
DEFAULT = "default"  # the value of a launch keyword the kernel did not name
FENCE = "```"
FENCE_SHOWN = "'''"  # what a fence-closing run of backticks in the diff becomes

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_QUOTED = re.compile(r"""(['"])([A-Za-z_][A-Za-z0-9_]{0,63})\1""")
_NUMBER = re.compile(r"[0-9.][0-9A-Za-z_.+-]{0,31}")
_BOUNDARY = frozenset({"(", "[", "{", ",", ";"})  # where a binding in host code may start
_CLOSING = frozenset({")", "]", "}"})
_LAYOUT = frozenset({tokenize.NUMBER, tokenize.INDENT, tokenize.NEWLINE})  # text not compared
_SKIPPED = frozenset({tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER})

Kind = Literal["same", "retuned", "layout", "rewritten"]


@dataclass(frozen=True)
class Retuned:
    """One named value the candidate sets differently: `name: before → after`."""

    name: str
    before: str  # as written in the repo's kernel; DEFAULT where a launch named none
    after: str


@dataclass(frozen=True)
class KernelChange:
    """How the candidate differs from the repo's kernel, and the unified diff."""

    kind: Kind  # same text; named values only; comments or layout only; code rewritten
    added: int  # lines
    removed: int
    retuned: tuple[Retuned, ...]  # with kind "retuned": each value, in source order
    diff: str  # the unified diff without its last newline, fence-safe, cut to DIFF_CHARS
    cut: int  # lines of the diff left out by the cut

    def view(self) -> dict[str, Any]:
        """The change as the pull request template reads it: at most RETUNED_SHOWN values, and
        how many more there are."""
        return {
            **vars(self),
            "retuned": [vars(r) for r in self.retuned[:RETUNED_SHOWN]],
            "retuned_left": max(0, len(self.retuned) - RETUNED_SHOWN),
        }


def compare(original: str, proposed: str) -> KernelChange:
    """What `proposed` changes in `original`."""
    if original == proposed:
        return KernelChange("same", 0, 0, (), "", 0)
    lines = list(
        difflib.unified_diff(
            original.splitlines(), proposed.splitlines(), "current", "proposed", lineterm=""
        )
    )
    body = lines[2:]  # past the two file headers
    added = sum(1 for line in body if line.startswith("+"))
    removed = sum(1 for line in body if line.startswith("-"))
    diff, cut = _shown(lines)
    retuned = _retuned(original, proposed)
    if retuned is None:
        return KernelChange("rewritten", added, removed, (), diff, cut)
    kind: Kind = "retuned" if retuned else "layout"
    return KernelChange(kind, added, removed, retuned, diff, cut)


def _shown(lines: list[str]) -> tuple[str, int]:
    """The diff's lines as a code fence may hold them, up to DIFF_CHARS; and how many were cut.

    A line of the candidate's could otherwise close the fence (three backticks, indented by at
    most three spaces, as a context line's leading space allows) and write Markdown of its own.
    """
    kept: list[str] = []
    size = 0
    for line in lines:
        safe = line.replace(FENCE, FENCE_SHOWN)
        size += len(safe) + 1
        if size > DIFF_CHARS:
            break
        kept.append(safe)
    return "\n".join(kept), len(lines) - len(kept)


def _retuned(original: str, proposed: str) -> tuple[Retuned, ...] | None:
    """The named values `proposed` sets differently, when nothing else in the code changed (an
    empty tuple: only comments or layout did); None when the code changed otherwise."""
    before, after = _tokens(original), _tokens(proposed)
    if before is None or after is None:
        return None
    masked_before, masked_after = [_masked(t) for t in before], [_masked(t) for t in after]
    start = _common(masked_before, masked_after)
    end = _common(masked_before[start:][::-1], masked_after[start:][::-1])
    inserted = after[start : len(after) - end]
    deleted = before[start : len(before) - end]
    if inserted and deleted:
        return None
    pairs = [(i, i) for i in range(start)]
    pairs += [(len(before) - k, len(after) - k) for k in range(end, 0, -1)]
    found: list[Retuned] = []
    for i, j in pairs:
        if before[i].type == tokenize.NUMBER and before[i].string != after[j].string:
            name = _bound_name(before, i)
            if name is None or not _NUMBER.fullmatch(after[j].string):
                return None
            found.append(Retuned(name, before[i].string, after[j].string))
    added = _keywords(inserted)
    dropped = _keywords(deleted)
    if added is None or dropped is None:
        return None
    found += [Retuned(name, DEFAULT, value) for name, value in added]
    found += [Retuned(name, value, DEFAULT) for name, value in dropped]
    return tuple(dict.fromkeys(found))  # one launch written twice: its change once


def _tokens(source: str) -> list[tokenize.TokenInfo] | None:
    """The tokens that make up the code (no comments, no blank lines); None if it does not lex."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):  # IndentationError is a SyntaxError
        return None
    return [t for t in tokens if t.type not in _SKIPPED]


def _masked(token: tokenize.TokenInfo) -> tuple[int, str]:
    """A token as the code comparison sees it: numbers and indentation by kind alone."""
    return (token.type, "" if token.type in _LAYOUT else token.string)


def _common(a: Sequence[tuple[int, str]], b: Sequence[tuple[int, str]]) -> int:
    """The length of the common prefix of `a` and `b`."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _bound_name(tokens: list[tokenize.TokenInfo], at: int) -> str | None:
    """The name the number at `at` is bound to: `NAME = n` (annotated or not, a keyword argument
    too) or `"NAME": n` in a dict; None for any other use of a number."""
    if at < 2 or tokens[at - 1].string not in ("=", ":"):
        return None
    start = at - 2
    while start >= 0 and not _starts_binding(tokens[start]):
        if tokens[start].string in _CLOSING:
            return None  # `x[0] = n`, `f(a) = n`: not a name
        start -= 1
    target = start + 1
    if target > at - 2:
        return None
    annotated = tokens[target + 1].string == ":" and tokens[at - 1].string == "="
    if target != at - 2 and not annotated:
        return None
    return _name_of(tokens[target])


def _starts_binding(token: tokenize.TokenInfo) -> bool:
    """Whether a binding may begin right after `token`."""
    kinds = (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
    return token.type in kinds or (token.type == tokenize.OP and token.string in _BOUNDARY)


def _name_of(token: tokenize.TokenInfo) -> str | None:
    """An identifier, or a quoted one (a dict key), as the name of a value; None otherwise."""
    if token.type == tokenize.NAME and _IDENTIFIER.fullmatch(token.string):
        return None if keyword.iskeyword(token.string) else token.string
    quoted = _QUOTED.fullmatch(token.string) if token.type == tokenize.STRING else None
    return quoted.group(2) if quoted else None


def _keywords(tokens: list[tokenize.TokenInfo]) -> list[tuple[str, str]] | None:
    """`, name=n` keyword arguments, as a launch gains or loses them; None for other tokens."""
    if len(tokens) % 4:
        return None
    if tokens and tokens[0].string != ",":  # `name=n,` where the launch ends on a comma
        tokens = tokens[-1:] + tokens[:-1]
    found = []
    for k in range(0, len(tokens), 4):
        comma, name, equals, number = tokens[k : k + 4]
        named = _name_of(name) if name.type == tokenize.NAME else None
        if comma.string != "," or equals.string != "=" or named is None:
            return None
        if number.type != tokenize.NUMBER or not _NUMBER.fullmatch(number.string):
            return None
        found.append((named, number.string))
    return found
