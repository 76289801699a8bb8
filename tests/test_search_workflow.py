"""The reusable search workflow: its triggers, where it runs, that inputs reach shells only through
`env:` after an allow-list check, that the token is in no `env:` and is masked before anything
can print it, that kevolve is installed pinned, and that the compile cache is per repository."""

from __future__ import annotations

import json
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kevolve.bot.board import run_name
from kevolve.bot.settings import bot_settings, pinned_requirement

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "kevolve-search.yml"
INPUTS = {"job_id", "op", "hardware", "budget", "minutes", "sha", "bot_url", "kevolve", "attempt"}
INPUTS |= {"token", "tag"}
TOKEN = "kj2.12.softmax.1.1800000000." + "a" * 32 + "." + "b" * 64
HASH = "--hash=sha256:" + "0" * 64
GOOD = {
    "JOB_ID": "12",
    "OP": "softmax",
    "HARDWARE": "h100",
    "BUDGET": "40",
    "MINUTES": "",
    "ATTEMPT": "2",
    "SHA": "a" * 40,
    "BOT_URL": "https://bot.example.com/",
    "KEVOLVE_REQUIREMENT": f"kevolve[runner]==0.1.0 {HASH}",
}


def load() -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return data


def steps() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = load()["jobs"]["search"]["steps"]
    return found


def run_check(
    tmp_path: Path, token: str = TOKEN, **change: str
) -> subprocess.CompletedProcess[str]:
    """The first step under bash as the runner runs it: the event payload on disk, the inputs in
    `env:`, the token in neither the environment nor the command line."""
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"inputs": {"token": token}, "ref": "refs/heads/main"}))
    temp = tmp_path / "runner-temp"
    temp.mkdir(exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "GITHUB_EVENT_PATH": str(event), "RUNNER_TEMP": str(temp)}
    env |= {**GOOD, **change}
    script = steps()[0]["run"]
    return subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True)


def test_it_is_dispatchable_and_callable_with_the_token_as_a_secret_when_called() -> None:
    triggers = load()[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"workflow_dispatch", "workflow_call"}
    assert set(triggers["workflow_dispatch"]["inputs"]) == INPUTS
    assert set(triggers["workflow_call"]["inputs"]) == INPUTS - {"token"}
    assert set(triggers["workflow_call"]["secrets"]) == {"token"}


def test_it_runs_on_the_labelled_self_hosted_runner_with_read_only_permissions() -> None:
    data = load()
    assert data["permissions"] == {"contents": "read"}
    job = data["jobs"]["search"]
    assert job["runs-on"] == ["self-hosted", "${{ inputs.hardware }}"]
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"] == {"ref": "${{ inputs.sha }}", "persist-credentials": False}


def test_no_shell_line_expands_an_expression_and_every_input_is_checked_first() -> None:
    for step in steps():
        assert "${{" not in step.get("run", ""), f"step {step.get('name')} expands in shell"
    check = steps()[0]["run"]
    for var in ("JOB_ID", "OP", "HARDWARE", "BUDGET", "MINUTES", "SHA", "BOT_URL", "ATTEMPT"):
        assert re.search(rf'\[\[ "\${var}" =~ \^', check), f"{var} is not checked"
    assert '[[ "$KEVOLVE_REQUIREMENT" =~ $pinned ]]' in check


def test_the_token_is_in_no_env_and_the_first_step_reads_it_from_the_event_payload() -> None:
    """The runner prints a step's `env:` (and the job's) before the step runs, unmasked for an
    input: the dispatch's token may be in none. Only a caller's secret, which GitHub masks from
    the start, may be."""
    data = load()
    blocks = [data["jobs"]["search"].get("env") or {}]
    blocks += [step.get("env") or {} for step in steps()]
    for block in blocks:
        for name, value in block.items():
            assert "inputs.token" not in str(value), name
            assert "secrets.token" not in str(value) or name == "KEVOLVE_TOKEN_SECRET", name
    assert "secrets.token" in str(steps()[0]["env"])
    first = steps()[0]["run"]
    assert "GITHUB_EVENT_PATH" in first and "python3 -c" in first
    # Masked before any other line of the step can print: only `fail` with a fixed text precedes.
    before = first.split('echo "::add-mask::$token"')[0]
    assert "$token" not in before.replace('token="$(python3', "").replace('[[ -n "$token" ]]', "")
    search = next(s for s in steps() if s.get("name") == "Search and post the result")
    assert '--token-file "$RUNNER_TEMP/kevolve-job-token"' in search["run"]
    forget = next(s for s in steps() if s.get("name") == "Forget the token")
    assert forget["if"] == "always()" and "kevolve-job-token" in forget["run"]


def test_the_first_step_masks_the_token_before_printing_anything_and_keeps_it_private(
    tmp_path: Path,
) -> None:
    done = run_check(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == f"::add-mask::{TOKEN}"
    assert done.stdout.count(TOKEN) == 1 and TOKEN not in done.stderr
    kept = tmp_path / "runner-temp" / "kevolve-job-token"
    assert kept.read_text() == TOKEN
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_a_malformed_token_fails_the_step_masked_first(tmp_path: Path) -> None:
    bad = "kj2.12 $(id)"
    done = run_check(tmp_path, token=bad)
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == f"::add-mask::{bad}"
    assert "::error::token is malformed" in done.stdout
    assert not (tmp_path / "runner-temp" / "kevolve-job-token").exists()
    missing = run_check(tmp_path, token="")
    assert missing.returncode == 1 and "::error::no job token" in missing.stdout


def test_the_allow_list_refuses_shell_metacharacters(tmp_path: Path) -> None:
    """The step's patterns, run through bash's own regex engine on hostile values."""
    assert run_check(tmp_path).returncode == 0
    for name, value in [
        ("OP", "softmax; rm -rf /"),
        ("HARDWARE", "h100 $(id)"),
        ("SHA", "main"),
        ("BOT_URL", "https://x`id`"),
        ("KEVOLVE_REQUIREMENT", "kevolve && curl x"),
        ("JOB_ID", "1\n2"),
        ("ATTEMPT", "1;id"),
        ("MINUTES", "1e9"),
    ]:
        assert run_check(tmp_path, **{name: value}).returncode == 1, name


PINNED = [
    f"kevolve==0.1.0 {HASH}",
    f"kevolve[runner]==1.2.3 {HASH} --hash=sha512:{'f' * 128}",
    "-r .github/kevolve-requirements.txt",
    "-r requirements/kevolve.txt",
]
UNPINNED = [
    "kevolve[runner]",  # the old default: whatever the index serves under that name
    "kevolve",
    "kevolve==0.1.0",  # a version, no hash
    "kevolve>=0.1 " + HASH,
    "kevolve==0.* " + HASH,
    "kevolve==0.1.0 --hash=sha256:abc",
    "kevolve==0.1.0 --hash=md5:" + "0" * 32,
    "git+https://example.com/kevolve.git",
    "https://example.com/kevolve-0.1.0.whl",
    "-r ../outside.txt",
    "-r /etc/kevolve.txt",
    "-r requirements.in",
    "-e .",
]


@pytest.mark.parametrize("requirement", PINNED + UNPINNED)
def test_the_bot_and_the_workflow_take_only_a_pinned_kevolve_and_agree(
    requirement: str, tmp_path: Path
) -> None:
    pinned = requirement in PINNED
    workflow_takes = run_check(tmp_path, KEVOLVE_REQUIREMENT=requirement).returncode == 0
    assert workflow_takes == pinned
    if pinned:
        assert pinned_requirement(requirement) == requirement
        return
    env = {"KEVOLVE_WEBHOOK_SECRET": "s", "KEVOLVE_RUNNER_REQUIREMENT": requirement}
    with pytest.raises(ValueError, match=r"is not pinned.*Fix: set it to 'kevolve==X\.Y\.Z"):
        bot_settings(env)


def test_unset_the_runner_installs_the_repos_hashed_requirements_file() -> None:
    settings = bot_settings({"KEVOLVE_WEBHOOK_SECRET": "s"})
    assert settings.runner_requirement == "-r .github/kevolve-requirements.txt"
    assert load()[True]["workflow_dispatch"]["inputs"]["kevolve"]["default"] == (
        settings.runner_requirement
    )
    install = next(s for s in steps() if str(s.get("name", "")).startswith("Install"))
    assert install["run"].count("--require-hashes") == 1  # in the pip command both forms use
    assert "--no-deps" in install["run"]


def test_the_judges_compile_cache_is_per_repository() -> None:
    search = next(s for s in steps() if s.get("name") == "Search and post the result")
    cache = search["env"]["KEVOLVE_CACHE_DIR"]
    assert cache == "${{ runner.tool_cache }}/kevolve/${{ github.repository }}"


def test_the_run_carries_the_name_the_bot_knows_its_dispatch_by() -> None:
    values = {"job_id": "17", "op": "softmax", "attempt": "2", "tag": "0123456789abcdef0123"}

    def render(template: str) -> str:
        return re.sub(r"\$\{\{ inputs\.(\w+) \}\}", lambda m: values[m[1]], template)

    assert render(load()["run-name"]) == run_name(17, "softmax", 2, values["tag"])


def test_the_llm_key_comes_from_a_secret_never_a_dispatch_input() -> None:
    """Inputs show in the run's page and log; a secret is masked and never an input."""
    search = next(s for s in steps() if s.get("name") == "Search and post the result")
    env = search["env"]
    assert env["KEVOLVE_LLM_API_KEY"] == "${{ secrets.KEVOLVE_LLM_API_KEY }}"
    assert env["KEVOLVE_LLM_BASE_URL"] == "${{ vars.KEVOLVE_LLM_BASE_URL }}"
    assert env["KEVOLVE_LLM_MODEL"] == "${{ vars.KEVOLVE_LLM_MODEL }}"
    inputs = load()[True]["workflow_dispatch"]["inputs"]  # YAML reads the key `on` as True
    assert not [name for name in inputs if "llm" in name.lower() or "key" in name.lower()]
    other_steps = [s for s in steps() if s.get("name") != search["name"]]
    assert not [s for s in other_steps if "KEVOLVE_LLM" in str(s)]  # only the search sees it
