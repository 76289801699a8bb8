"""Tests for the mutation command's configuration: every guard and test file exists, and the
workspace aims mutmut at one module and its tests."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mutation.__main__ import main
from mutation.guards import GuardsError, load_guards, select_guards
from mutation.workspace import build_workspace

ROOT = Path(__file__).resolve().parents[2]


def test_every_guard_module_and_test_file_exists() -> None:
    guards = load_guards()
    assert {g.path for g in guards} >= {
        "harness/search/result.py", "harness/judge/compare.py", "harness/judge/tally.py",
        "harness/judge/chunked.py", "harness/judge/pieces.py", "harness/judge/bitwise.py",
        "harness/screen.py",
        "harness/judge/instrument.py", "harness/search/store.py", "bot/webhook.py", "bot/tokens.py",
        "bot/results.py", "runners/intake.py", "runners/fieldread.py",
        "bot/treepath.py", "bot/vault.py", "bot/hardening.py", "harness/sandbox/confine.py",
    }  # fmt: skip
    missing = [p for g in guards for p in (g.path, *g.tests) if not (ROOT / p).is_file()]
    assert missing == []


def test_the_before_lists_name_each_guard_module_and_only_its_older_tests() -> None:
    before = load_guards(ROOT / "mutation" / "before.toml")
    assert {g.path for g in before} == {g.path for g in load_guards()}
    assert [t for g in before for t in g.tests if t.endswith("_guard.py")] == []
    missing = [t for g in before for t in g.tests if not (ROOT / t).is_file()]
    assert missing == []
    assert [g.path for g in before if g.explained] == []


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


def test_a_mutant_listed_twice_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "guards.toml"
    bad.write_text(
        '[modules."harness/search/result.py"]\ntests = ["t.py"]\n'
        '[modules."harness/search/result.py".equivalent]\nm = "why"\n'
        '[modules."harness/search/result.py".gpu_only]\nm = "where"\n'
    )
    with pytest.raises(GuardsError, match=r"guards.toml: m listed as equivalent and GPU-only"):
        load_guards(bad)


def test_the_workspace_aims_mutmut_at_one_module_and_its_tests(tmp_path: Path) -> None:
    """The module sits under kevolve/ as installed, so mutmut's name for a mutant is the name the
    tests import; the checkout's folders come along unmutated for tests that read files."""
    guard = select_guards(load_guards(), ["harness/search/result.py"])[0]
    workspace = build_workspace(ROOT, guard, tmp_path / "ws")
    source = (ROOT / "harness" / "search" / "result.py").read_text()
    assert (workspace / "kevolve" / "harness" / "search" / "result.py").read_text() == source
    assert (workspace / "harness" / "search" / "result.py").read_text() == source
    config = tomllib.loads((workspace / "pyproject.toml").read_text())
    mutmut = config["tool"]["mutmut"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    assert mutmut == {
        **project,
        "source_paths": ["kevolve"],
        "also_copy": [*project["also_copy"], "bot", "harness", "runners"],
        "only_mutate": ["kevolve/harness/search/result.py"],
        "pytest_add_cli_args_test_selection": list(guard.tests),
    }
    assert config["project"] == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_in_the_workspace_kevolve_is_the_workspaces_copy_not_the_editable_install(
    tmp_path: Path,
) -> None:
    """mutmut puts its copy first on sys.path: `kevolve` must resolve there, or every mutant
    would run the checkout's own code and survive."""
    guard = select_guards(load_guards(), ["bot/tokens.py"])[0]
    workspace = build_workspace(ROOT, guard, tmp_path / "ws")
    found = subprocess.run(
        [sys.executable, "-c", "import kevolve.bot.tokens as m; print(m.__file__)"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(workspace)},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert Path(found.stdout.strip()) == workspace / "kevolve" / "bot" / "tokens.py"


def test_options_may_come_before_or_after_the_modules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--jobs", "1", "bot/tokens.py", "bot/webhook.py"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in listed] == ["bot/tokens.py", "bot/webhook.py"]
    assert main(["list", "bot/tokens.py", "--jobs", "1"]) == 0
    assert capsys.readouterr().out.startswith("bot/tokens.py: tests/bot/test_tokens.py")
