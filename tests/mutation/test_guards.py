"""Tests for the mutation command's configuration: every guard and test file exists, and the
workspace aims mutmut at one module and its tests."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mutation.guards import GuardsError, load_guards, select_guards
from mutation.workspace import build_workspace

ROOT = Path(__file__).resolve().parents[2]


def test_every_guard_module_and_test_file_exists() -> None:
    guards = load_guards()
    assert {g.path for g in guards} >= {
        "harness/search/result.py", "harness/judge/compare.py", "harness/screen.py",
        "harness/judge/instrument.py", "harness/search/store.py", "bot/webhook.py", "bot/tokens.py",
        "bot/results.py",
    }  # fmt: skip
    missing = [p for g in guards for p in (g.path, *g.tests) if not (ROOT / p).is_file()]
    assert missing == []


def test_guards_are_chosen_by_path_or_dotted_name() -> None:
    guards = load_guards()
    assert [
        g.path for g in select_guards(guards, ["harness.search.result", "harness/judge/compare.py"])
    ] == [
        "harness/search/result.py",
        "harness/judge/compare.py",
    ]
    assert select_guards(guards, []) == guards
    with pytest.raises(GuardsError, match=r"not a guard module: harness/nope\.py; choose from"):
        select_guards(guards, ["harness/nope.py"])


def test_a_guard_without_tests_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "guards.toml"
    bad.write_text('[modules."harness/search/result.py"]\ntests = []\n')
    with pytest.raises(GuardsError, match=r"modules.'harness/search/result.py' needs tests = \["):
        load_guards(bad)


def test_the_workspace_aims_mutmut_at_one_module_and_its_tests(tmp_path: Path) -> None:
    guard = select_guards(load_guards(), ["harness/search/result.py"])[0]
    workspace = build_workspace(ROOT, guard, tmp_path / "ws")
    assert (workspace / "harness" / "search" / "result.py").read_text() == (
        ROOT / "harness" / "search" / "result.py"
    ).read_text()
    config = tomllib.loads((workspace / "pyproject.toml").read_text())
    mutmut = config["tool"]["mutmut"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    assert mutmut == {
        **project,
        "only_mutate": ["harness/search/result.py"],
        "pytest_add_cli_args_test_selection": list(guard.tests),
    }
    assert config["project"] == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
