"""`JobSpec` and `run_job`: the executor a job names travels as JSON and is checked first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kevolve.runners.job import JobError, JobSpec, run_job

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"


def spec(tmp_path: Path, **changes: object) -> JobSpec:
    fields: dict[str, object] = {
        "job_id": 4,
        "checkout": str(DEMO),
        "op": "softmax",
        "hardware": "cpu",
        "budget": 1,
        "state": str(tmp_path / "s.sqlite"),
        "cache_dir": str(tmp_path / "cache"),
        "device": "cpu",
    }
    return JobSpec(**{**fields, **changes})  # type: ignore[arg-type]


def test_the_executor_travels_as_json_and_defaults_to_local(tmp_path: Path) -> None:
    ray = spec(tmp_path, executor="ray", ray_address="ray://head:10001")
    assert JobSpec.from_json(ray.to_json()) == ray
    older = json.loads(spec(tmp_path).to_json())
    del older["executor"], older["ray_address"]  # a spec written before jobs named executors
    again = JobSpec.from_json(json.dumps(older))
    assert (again.executor, again.ray_address) == ("local", None)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"executor": "rey"}, "job 4: unknown executor 'rey'. Fix: use local or ray"),
        (
            {"ray_address": "head:6379"},
            "job 4: a ray_address needs executor 'ray'. Fix: set both, or neither",
        ),
        (
            {"executor": "ray", "ray_address": "head"},
            "job 4: ray_address 'head' is not a Ray cluster address. Fix: give host:port",
        ),
    ],
)
def test_a_job_with_a_bad_executor_is_refused_before_it_runs(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(JobError) as info:
        run_job(spec(tmp_path, **changes))
    assert str(info.value).startswith(message)
    assert not (tmp_path / "s.sqlite").exists()
