"""`/kevolve` comment commands: what a person asked for, parsed and validated."""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "/kevolve"
NAMES = ("optimize", "status", "benchmark", "stop", "recreate", "help")
MAX_BUDGET = 10_000
_OP = re.compile(r"[A-Za-z0-9_-]+")
_LABEL = re.compile(r"[A-Za-z0-9._-]+")
_DIGITS = re.compile(r"[0-9]{1,6}")
_FENCE = re.compile(r"(`{3,}|~{3,})")
_FLAGS = ("--hardware", "--budget")


@dataclass(frozen=True)
class Command:
    """One `/kevolve` command: its name and, for `optimize` and `benchmark`, its arguments."""

    name: str
    ops: tuple[str, ...] = ()
    hardware: str | None = None
    budget: int | None = None

    def text(self) -> str:
        """The command as a person would type it, in a canonical form."""
        parts = [PREFIX, self.name, *self.ops]
        if self.hardware is not None:
            parts += ["--hardware", self.hardware]
        if self.budget is not None:
            parts += ["--budget", str(self.budget)]
        return " ".join(parts)


class CommandError(ValueError):
    """A command that could not be understood: its line and what was wrong with it (the answer
    a person reads is `Messages.command_error`)."""

    def __init__(self, line: str, problem: str) -> None:
        self.line = line
        self.problem = problem
        super().__init__(f"{line}: {problem}")


def parse_comment(body: str) -> list[Command] | None:
    """Every command in a comment, in order; None when it holds no `/kevolve` line."""
    lines = command_lines(body)
    return [parse_line(line) for line in lines] if lines else None


def command_lines(body: str) -> list[str]:
    """The comment's lines that start with `/kevolve`, outside code fences and quotes."""
    found, fence = [], ""
    for raw in body.splitlines():
        line = raw.strip()
        opening = _FENCE.match(line)
        if fence:
            if opening and line.startswith(fence) and not line.strip(fence[0]):
                fence = ""
        elif opening:
            fence = opening.group(1)
        elif _is_command(line):
            found.append(line)
    return found


def parse_line(line: str) -> Command:
    """One `/kevolve` line as a `Command`; `CommandError` says what was wrong with it."""
    words = line.split()[1:]
    if not words:
        raise CommandError(line, "no command was given.")
    name, args = words[0].lower(), words[1:]
    if name not in NAMES:
        raise CommandError(line, f"`{words[0]}` is not a kevolve command.")
    if name == "optimize":
        return _optimize(line, args)
    if name == "benchmark":
        return _benchmark(line, args)
    if name == "recreate":
        return Command("recreate", tuple(dict.fromkeys(_op(line, a) for a in args)))
    if args:
        raise CommandError(line, f"`{name}` takes no arguments.")
    return Command(name)


def _is_command(line: str) -> bool:
    """True when a stripped line is a `/kevolve` command rather than a quote or other text."""
    return line == PREFIX or line.startswith(PREFIX + " ") or line.startswith(PREFIX + "\t")


def _optimize(line: str, args: list[str]) -> Command:
    """`optimize [OP...] [--hardware LABEL] [--budget N]`."""
    ops: list[str] = []
    flags: dict[str, str] = {}
    rest = list(args)
    while rest:
        word = rest.pop(0)
        if not word.startswith("-"):
            ops.append(_op(line, word))
            continue
        flag, equals, value = word.partition("=")
        if flag not in _FLAGS:
            raise CommandError(line, f"`{flag}` is not an option of `optimize`.")
        if flag in flags:
            raise CommandError(line, f"`{flag}` was given more than once.")
        if not equals and rest and not rest[0].startswith("--"):
            value = rest.pop(0)
        if not value:
            raise CommandError(line, f"`{flag}` needs a value.")
        flags[flag] = value
    hardware = flags.get("--hardware")
    if hardware is not None and not _LABEL.fullmatch(hardware):
        raise CommandError(
            line, f"`{hardware}` is not a hardware label (letters, digits, `.`, `_` and `-`)."
        )
    budget = flags.get("--budget")
    return Command("optimize", tuple(dict.fromkeys(ops)), hardware, _budget(line, budget))


def _benchmark(line: str, args: list[str]) -> Command:
    """`benchmark [OP]`."""
    if len(args) > 1:
        raise CommandError(line, "`benchmark` takes at most one op.")
    return Command("benchmark", tuple(_op(line, a) for a in args))


def _op(line: str, word: str) -> str:
    """An op name, checked."""
    if word.startswith("-") or not _OP.fullmatch(word):
        raise CommandError(line, f"`{word}` is not an op name (letters, digits, `_` and `-`).")
    return word


def _budget(line: str, text: str | None) -> int | None:
    """The `--budget` value: a whole number of evaluations from 1 to `MAX_BUDGET`."""
    if text is None:
        return None
    if not _DIGITS.fullmatch(text) or not 1 <= int(text) <= MAX_BUDGET:
        raise CommandError(
            line, f"`--budget` must be a whole number from 1 to {MAX_BUDGET}, not `{text}`."
        )
    return int(text)
