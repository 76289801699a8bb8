"""A repo's `[tool.kevolve.llm]`: models and weights, a cost cap that can only lower the bot's, the
LLM's share, and where its lessons go; keys and endpoints refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from kevolve.bot.modelchoice import ModelChoice, load_model_choice
from kevolve.harness.spec.checks import SpecError


def repo(tmp_path: Path, llm: str, name: str = "pyproject.toml") -> Path:
    header = "[tool.kevolve.llm]" if name == "pyproject.toml" else "[llm]"
    (tmp_path / name).write_text(f"{header}\n{llm}")
    return tmp_path


def test_models_with_weights_a_cap_a_share_and_pooled_lessons_are_read(tmp_path: Path) -> None:
    choice = load_model_choice(
        repo(
            tmp_path,
            'models = { "gpt-5" = 0.7, "qwen3-coder:32b" = 0.3 }\n'
            'max_usd = 2.5\nshare = 0.5\nlessons = "installation"\n',
        )
    )
    assert choice == ModelChoice(
        (("gpt-5", 0.7), ("qwen3-coder:32b", 0.3)), 2.5, 0.5, "installation"
    )
    assert choice.model_text("bot-model") == "gpt-5:0.7,qwen3-coder:32b:0.3"


def test_a_list_of_models_weighs_them_alike_in_kevolve_toml(tmp_path: Path) -> None:
    choice = load_model_choice(repo(tmp_path, 'models = ["a", "b"]\n', "kevolve.toml"))
    assert choice.models == (("a", 1.0), ("b", 1.0))
    assert choice.lessons == "repo"


def test_without_a_table_the_bot_decides(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.kevolve]\nexecutor = 'local'\n")
    choice = load_model_choice(tmp_path)
    assert choice == ModelChoice()
    assert choice.model_text("bot-model") == "bot-model" and choice.cap(3.0) == 3.0


@pytest.mark.parametrize(
    ("bot", "repo_cap", "applied"),
    [(3.0, 1.0, 1.0), (1.0, 3.0, 1.0), (None, 2.0, 2.0), (None, None, None)],
)
def test_the_lower_cap_applies(
    bot: float | None, repo_cap: float | None, applied: float | None
) -> None:
    assert ModelChoice(max_usd=repo_cap).cap(bot) == applied


@pytest.mark.parametrize("key", ["api_key", "base_url", "command", "token"])
def test_a_key_or_endpoint_in_a_repo_is_refused_by_name(tmp_path: Path, key: str) -> None:
    with pytest.raises(SpecError) as raised:
        load_model_choice(repo(tmp_path, f'{key} = "sk-abc"\n'))
    message = str(raised.value)
    assert f"[tool.kevolve.llm] field '{key}'" in message
    assert "operator" in message and "sk-abc" not in message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("modles = ['a']\n", "did you mean 'models'"),
        ("models = { a = 0 }\n", "the weight of 'a' must be above 0"),
        ("models = { a = 'x' }\n", "the weight of 'a' is"),
        ("models = []\n", "expected model names"),
        ("max_usd = -1\n", "must be above 0"),
        ("share = 1.5\n", "between 0 and 1"),
        ("lessons = 'everyone'\n", "expected one of repo, installation"),
    ],
)
def test_a_bad_value_names_the_field_and_an_example(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(SpecError, match="Fix:") as raised:
        load_model_choice(repo(tmp_path, text))
    assert words in str(raised.value), str(raised.value)
