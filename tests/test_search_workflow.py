"""The reusable search workflow: its triggers, where it runs, and that inputs reach shells only
through `env:` after an allow-list check."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from bot.board import run_name

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "kevolve-search.yml"
INPUTS = {"job_id", "op", "hardware", "budget", "sha", "bot_url", "token", "kevolve", "attempt"}


def load() -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return data


def test_it_is_dispatchable_and_callable_with_the_same_inputs() -> None:
    triggers = load()[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"workflow_dispatch", "workflow_call"}
    assert set(triggers["workflow_dispatch"]["inputs"]) == INPUTS
    assert set(triggers["workflow_call"]["inputs"]) == INPUTS


def test_it_runs_on_the_labelled_self_hosted_runner_with_read_only_permissions() -> None:
    data = load()
    assert data["permissions"] == {"contents": "read"}
    job = data["jobs"]["search"]
    assert job["runs-on"] == ["self-hosted", "${{ inputs.hardware }}"]
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"] == {"ref": "${{ inputs.sha }}", "persist-credentials": False}


def test_no_shell_line_expands_an_expression_and_every_input_is_checked_first() -> None:
    steps = load()["jobs"]["search"]["steps"]
    for step in steps:
        assert "${{" not in step.get("run", ""), (
            f"step {step.get('name')} expands an input in shell"
        )
    check = steps[0]["run"]
    assert '[[ "$KEVOLVE_REQUIREMENT" =~ $requirement ]]' in check
    for var in ("JOB_ID", "OP", "HARDWARE", "BUDGET", "SHA", "BOT_URL", "ATTEMPT"):
        assert re.search(rf'\[\[ "\${var}" =~ \^', check), f"{var} is not checked"
    assert "::add-mask::$KEVOLVE_JOB_TOKEN" in check


def test_the_allow_list_refuses_shell_metacharacters() -> None:
    """The step's patterns, run through bash's own regex engine on hostile values."""
    check = load()["jobs"]["search"]["steps"][0]["run"]
    good = {
        "JOB_ID": "12",
        "OP": "softmax",
        "HARDWARE": "h100",
        "BUDGET": "40",
        "ATTEMPT": "2",
        "SHA": "a" * 40,
        "BOT_URL": "https://bot.example.com/",
        "KEVOLVE_REQUIREMENT": "kevolve[runner]==0.1",
        "KEVOLVE_JOB_TOKEN": "kj1.12.1800000000.abcdef",
    }

    def run(**change: str) -> int:
        env = {"PATH": "/usr/bin:/bin", **good, **change}
        return subprocess.run(["bash", "-c", check], env=env, capture_output=True).returncode

    assert run() == 0
    for name, value in [
        ("OP", "softmax; rm -rf /"),
        ("HARDWARE", "h100 $(id)"),
        ("SHA", "main"),
        ("BOT_URL", "https://x`id`"),
        ("KEVOLVE_REQUIREMENT", "kevolve && curl x"),
        ("JOB_ID", "1\n2"),
        ("ATTEMPT", "1;id"),
        ("KEVOLVE_JOB_TOKEN", "a b"),
    ]:
        assert run(**{name: value}) == 1, name


def test_the_run_and_its_job_carry_the_name_the_bot_finds_its_dispatches_by() -> None:
    data = load()
    values = {"job_id": "17", "op": "softmax", "attempt": "2"}

    def render(template: str) -> str:
        return re.sub(r"\$\{\{ inputs\.(\w+)(?: \|\| '1')? \}\}", lambda m: values[m[1]], template)

    assert render(data["run-name"]) == run_name(17, "softmax", 2)
    assert render(data["jobs"]["search"]["name"]) == run_name(17, "softmax", 2)
