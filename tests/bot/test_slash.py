"""`/kevolve` comment parsing: every command form, where commands count, and every error."""

from __future__ import annotations

from pathlib import Path

import pytest
from kevolve.bot.messages import Messages
from kevolve.bot.slash import Command, CommandError, parse_comment

MESSAGES = Messages(Path(__file__).resolve().parents[2] / "templates" / "github")
USAGE = (
    "Usage: `/kevolve optimize [OP...] [--hardware LABEL] [--budget N]`, `/kevolve status`, "
    "`/kevolve benchmark [OP]`, `/kevolve stop`, `/kevolve recreate [OP...]` or "
    "`/kevolve help`, each on a line of its own."
)


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("/kevolve optimize", Command("optimize")),
        ("/kevolve optimize softmax", Command("optimize", ("softmax",))),
        ("/kevolve optimize softmax rms_norm", Command("optimize", ("softmax", "rms_norm"))),
        ("/kevolve optimize softmax softmax", Command("optimize", ("softmax",))),
        ("/kevolve optimize --hardware h100", Command("optimize", hardware="h100")),
        ("/kevolve optimize --hardware=h100-sxm.80g", Command("optimize", hardware="h100-sxm.80g")),
        ("/kevolve optimize --budget 200", Command("optimize", budget=200)),
        ("/kevolve optimize --budget=1", Command("optimize", budget=1)),
        ("/kevolve optimize --budget 10000", Command("optimize", budget=10000)),
        (
            "/kevolve optimize layer-norm --budget 50 gelu --hardware H200",
            Command("optimize", ("layer-norm", "gelu"), "H200", 50),
        ),
        ("/kevolve status", Command("status")),
        ("/kevolve benchmark", Command("benchmark")),
        ("/kevolve benchmark softmax", Command("benchmark", ("softmax",))),
        ("/kevolve stop", Command("stop")),
        ("/kevolve recreate", Command("recreate")),
        ("/kevolve recreate softmax rmsnorm softmax", Command("recreate", ("softmax", "rmsnorm"))),
        ("/kevolve help", Command("help")),
        ("/kevolve HELP", Command("help")),
        ("   /kevolve \t status  ", Command("status")),
    ],
)
def test_each_command_form(line: str, command: Command) -> None:
    assert parse_comment(line) == [command]


def test_text_is_canonical_and_parses_back() -> None:
    command = parse_comment("/kevolve optimize a b --budget=7 --hardware=h100")
    assert command is not None
    assert command[0].text() == "/kevolve optimize a b --hardware h100 --budget 7"
    assert parse_comment(command[0].text()) == command


@pytest.mark.parametrize(
    "body",
    ["", "LGTM, thanks!", "please run kevolve optimize", "/kevolveoptimize", "see /kevolve help"],
)
def test_comment_without_commands_is_none(body: str) -> None:
    assert parse_comment(body) is None


def test_several_commands_in_order() -> None:
    body = (
        "Thanks for the kernel.\r\n\r\n"
        "/kevolve stop\r\n"
        "Then try again on the new cards:\r\n"
        "/kevolve optimize softmax --hardware h200\r\n"
        "  /kevolve status\r\n"
    )
    assert parse_comment(body) == [
        Command("stop"),
        Command("optimize", ("softmax",), "h200"),
        Command("status"),
    ]


def test_fenced_and_quoted_commands_are_ignored() -> None:
    body = "\n".join(
        [
            "> /kevolve stop",
            ">/kevolve recreate",
            "  > > /kevolve optimize",
            "```",
            "/kevolve optimize softmax",
            "```python",
            "/kevolve recreate",
            "```",
            "~~~~",
            "/kevolve stop",
            "~~~",
            "```",
            "/kevolve stop",
            "~~~~~",
            "/kevolve help",
        ]
    )
    assert parse_comment(body) == [Command("help")]


def test_only_fenced_or_quoted_commands_is_none() -> None:
    assert parse_comment("```\n/kevolve stop\n```\n> /kevolve recreate\n") is None


def test_an_unclosed_fence_hides_the_rest() -> None:
    assert parse_comment("```sh\n/kevolve stop\n") is None


def test_one_bad_line_fails_the_comment() -> None:
    with pytest.raises(CommandError) as caught:
        parse_comment("/kevolve status\n/kevolve optimise softmax\n")
    assert caught.value.line == "/kevolve optimise softmax"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("/kevolve", "no command was given."),
        ("/kevolve optimise softmax", "`optimise` is not a kevolve command."),
        ("/kevolve rebase", "`rebase` is not a kevolve command."),
        ("/kevolve status now", "`status` takes no arguments."),
        ("/kevolve stop all", "`stop` takes no arguments."),
        (
            "/kevolve recreate --force",
            "`--force` is not an op name (letters, digits, `_` and `-`).",
        ),
        ("/kevolve help me", "`help` takes no arguments."),
        ("/kevolve optimize --gpu h100", "`--gpu` is not an option of `optimize`."),
        ("/kevolve optimize -b 5", "`-b` is not an option of `optimize`."),
        ("/kevolve optimize --budget", "`--budget` needs a value."),
        ("/kevolve optimize --budget=", "`--budget` needs a value."),
        ("/kevolve optimize --hardware --budget 5", "`--hardware` needs a value."),
        ("/kevolve optimize --budget 5 --budget 6", "`--budget` was given more than once."),
        (
            "/kevolve optimize --budget lots",
            "`--budget` must be a whole number from 1 to 10000, not `lots`.",
        ),
        (
            "/kevolve optimize --budget 0",
            "`--budget` must be a whole number from 1 to 10000, not `0`.",
        ),
        (
            "/kevolve optimize --budget 10001",
            "`--budget` must be a whole number from 1 to 10000, not `10001`.",
        ),
        (
            "/kevolve optimize --budget 2.5",
            "`--budget` must be a whole number from 1 to 10000, not `2.5`.",
        ),
        (
            "/kevolve optimize --budget ²",
            "`--budget` must be a whole number from 1 to 10000, not `²`.",
        ),
        (
            "/kevolve optimize --hardware h100/sxm",
            "`h100/sxm` is not a hardware label (letters, digits, `.`, `_` and `-`).",
        ),
        (
            "/kevolve optimize soft.max",
            "`soft.max` is not an op name (letters, digits, `_` and `-`).",
        ),
        (
            "/kevolve benchmark ops/softmax",
            "`ops/softmax` is not an op name (letters, digits, `_` and `-`).",
        ),
        ("/kevolve benchmark softmax gelu", "`benchmark` takes at most one op."),
    ],
)
def test_errors_say_what_was_wrong_and_show_usage(line: str, problem: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_comment(f"Please:\n{line}\n")
    assert caught.value.problem == problem
    answer = MESSAGES.command_error(caught.value)
    assert answer == f"I could not run `{line}`: {problem} {USAGE}"
    assert "\n" not in answer


def test_the_answer_to_a_bad_command_is_pinned_word_for_word() -> None:
    error = CommandError("/kevolve optimise", "`optimise` is not a kevolve command.")
    assert MESSAGES.command_error(error) == (
        "I could not run `/kevolve optimise`: `optimise` is not a kevolve command. "
        "Usage: `/kevolve optimize [OP...] [--hardware LABEL] [--budget N]`, `/kevolve status`, "
        "`/kevolve benchmark [OP]`, `/kevolve stop`, `/kevolve recreate [OP...]` or "
        "`/kevolve help`, each on a line of its own."
    )
