"""Repo-wide kevolve settings: defaults, every key checked, errors that name file, field and fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from kevolve.bot.repoconfig import AUTO, RepoSettings, is_gpu_label, load_config, load_settings
from kevolve.harness.spec.load import SpecError, load_problems

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
OPS = ["softmax", "rmsnorm", "bias_gelu", "matmul_bias_relu"]


def demo_with(tmp_path: Path, settings: str) -> Path:
    """A copy of the demo repo whose pyproject.toml has `settings` in its [tool.kevolve] table."""
    repo = tmp_path / "demo"
    shutil.copytree(DEMO, repo)
    config = repo / "pyproject.toml"
    config.write_text(config.read_text() + f"\n[tool.kevolve]\n{settings}\n")
    return repo


def error_of(repo: Path) -> SpecError:
    """The SpecError the repo's settings raise."""
    with pytest.raises(SpecError) as caught:
        load_settings(repo)
    return caught.value


def test_a_config_without_settings_gets_the_defaults() -> None:
    assert load_settings(DEMO) == RepoSettings(None, None, 7.0, "local")


def test_every_setting_is_read_and_the_ops_still_load(tmp_path: Path) -> None:
    repo = demo_with(
        tmp_path,
        'hardware = ["nvidia-h100", "nvidia-a10g", "nvidia-h100"]\n'
        'schedule = "0 3 * * 1"\nstale_days = 3.5\nexecutor = "ray"\nmin_speedup = 1.2',
    )
    config = load_config(repo)
    assert [op.name for op in config.ops] == OPS
    assert [p.name for p in load_problems(repo)] == OPS  # the op loader ignores the new keys
    settings = config.settings
    assert settings.hardware == ("nvidia-h100", "nvidia-a10g")
    assert settings.schedule is not None and settings.schedule.text == "0 3 * * 1"
    assert (settings.stale_days, settings.executor) == (3.5, "ray")
    assert settings.min_speedup == 1.2
    assert load_config(demo_with(tmp_path / "plain", "")).settings.min_speedup == 1.05


def test_kevolve_toml_settings_sit_at_the_top_level(tmp_path: Path) -> None:
    (tmp_path / "kevolve.toml").write_text('hardware = "auto"\nschedule = "@weekly"\n')
    settings = load_settings(tmp_path)
    assert settings.hardware == AUTO
    assert settings.schedule is not None and settings.schedule.text == "@weekly"


def test_auto_means_the_gpu_labels_listed_and_a_list_means_itself() -> None:
    listed = ["self-hosted", "Linux", "X64", "ARM64", "macOS", "nvidia-l4", "h100"]
    assert RepoSettings(hardware=AUTO).labels(("local",), listed) == ("h100", "nvidia-l4")
    assert RepoSettings(hardware=("a100",)).labels(("local",), listed) == ("a100",)
    assert RepoSettings().labels(("local",), listed) == ("local",)
    assert RepoSettings(hardware=AUTO).wants("h100", ("local",))
    assert not RepoSettings(hardware=AUTO).wants("Linux", ("local",))
    assert not RepoSettings(hardware=("a100",)).wants("h100", ("h100",))
    assert RepoSettings().wants("local", ("local",))


@pytest.mark.parametrize("label", ["self-hosted", "linux", "Linux", "X64", "arm64", "Windows"])
def test_labels_github_gives_every_runner_are_not_gpus(label: str) -> None:
    assert not is_gpu_label(label)


@pytest.mark.parametrize(
    ("settings", "field", "problem", "fix"),
    [
        (
            'schedule = "0 3 * *"',
            "schedule",
            "'0 3 * *' is not a cron expression: has 4 fields, not 5",
            'write schedule = "0 3 * * 1" (03:00 UTC every Monday)',
        ),
        (
            'schedule = "0 25 * * 1"',
            "schedule",
            "'0 25 * * 1' is not a cron expression: hour value 25 is outside 0-23",
            'write schedule = "0 3 * * 1"',
        ),
        ("schedule = 3", "schedule", "expected a cron expression string, found an integer", ""),
        (
            'hardware = ["self-hosted", "h100"]',
            "hardware",
            "'self-hosted' is a label GitHub gives every self-hosted runner, not hardware",
            "name the label your GPU runners carry, e.g. nvidia-h100",
        ),
        (
            'hardware = "h100"',
            "hardware",
            "expected \"auto\" or a list of runner labels, found the string 'h100'",
            'write hardware = ["nvidia-h100", "nvidia-a10g"] (or hardware = "auto")',
        ),
        ("hardware = []", "hardware", "found an empty list", ""),
        (
            'hardware = ["auto"]',
            "hardware",
            '"auto" inside a list',
            'write hardware = "auto" alone',
        ),
        ('hardware = ["h 100"]', "hardware", "'h 100' is not a runner label", ""),
        ("stale_days = 0", "stale_days", "expected a positive number of days, found 0", ""),
        ("stale_days = true", "stale_days", "found a boolean", "write stale_days = 7"),
        (
            "min_speedup = 0.9",
            "min_speedup",
            "expected a speedup of at least 1.0 (e.g. 1.05), found 0.9",
            "write min_speedup = 1.05 (at least 1.0)",
        ),
        ('min_speedup = "5%"', "min_speedup", "found a string", ""),
        (
            'executor = "rays"',
            "executor",
            "unknown executor 'rays'",
            "did you mean 'ray'? use one of: local, ray",
        ),
        (
            'hardwares = ["h100"]',
            "hardwares",
            "unknown key",
            "did you mean 'hardware'? known keys are: ops, hardware, schedule",
        ),
    ],
)
def test_bad_settings_name_the_file_field_problem_and_fix(
    tmp_path: Path, settings: str, field: str, problem: str, fix: str
) -> None:
    repo = demo_with(tmp_path, settings)
    error = error_of(repo)
    assert error.path == repo / "pyproject.toml"
    assert error.field == f"tool.kevolve.{field}"
    assert problem in error.problem
    assert fix in error.fix
    with pytest.raises(SpecError):
        load_config(repo)  # the whole config is refused, not only its settings


def test_keys_other_tools_own_are_left_alone(tmp_path: Path) -> None:
    assert load_settings(demo_with(tmp_path, 'ray_address = "auto"')) == RepoSettings()
