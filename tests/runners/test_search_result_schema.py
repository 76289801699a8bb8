"""docs/search-result.schema.json: a real `kevolve run-job` result fits it, the bot reads that
result, and the schema names exactly the fields `SearchResult.to_dict` writes."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from kevolve.harness.evaluation import Evaluation
from kevolve.harness.search.result import SCHEMA_VERSION, GateResult, SearchResult
from kevolve.harness.search.status import StopKind
from kevolve.runners.intake import read_result

from tests.bot.test_run_job import run_job

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "search-result.schema.json").read_text())


def _validator() -> jsonschema.protocols.Validator:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    return jsonschema.Draft202012Validator(SCHEMA)


def _empty_result() -> dict[str, Any]:
    return SearchResult(
        problem="softmax",
        device="cpu",
        timed=False,
        evaluated=0,
        counts={},
        best=None,
        baseline=None,
        history=[],
        hardware=None,
        llm={"configured": False},
        wall_s=0.0,
        gpu_s=0.0,
        gate=GateResult(False, ["no correct candidate was found"]),
        stop_reason="budget",
    ).to_dict()


def test_a_result_kevolve_run_job_writes_fits_the_schema_and_the_bot_reads_it(
    tmp_path: Path,
) -> None:
    done = run_job(tmp_path, "--op", "softmax", "--budget", "1", token=None)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    errors = [e.message for e in _validator().iter_errors(result)]
    assert errors == []
    kept = read_result(result, 5)
    assert (kept.problem, kept.evaluated, kept.job_id) == ("softmax", 1, 5)
    assert (result["stop"], kept.stop) == ("budget", StopKind.BUDGET)


def test_the_schema_names_exactly_the_fields_the_dataclass_writes() -> None:
    written = set(_empty_result())
    assert set(SCHEMA["required"]) == written
    assert set(SCHEMA["properties"]) == written | {"job"}  # the runner adds the job's ids
    assert SCHEMA["properties"]["schema"]["const"] == SCHEMA_VERSION
    assert SCHEMA["properties"]["stop"]["enum"] == [kind.value for kind in StopKind]
    evaluation = SCHEMA["$defs"]["evaluation"]["properties"]
    assert set(evaluation) <= {f.name for f in fields(Evaluation)}
    assert _validator().is_valid(_empty_result())


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"evaluated": -1}, "evaluated"),
        ({"counts": {"fast": 1}}, "counts"),
        ({"schema": SCHEMA_VERSION + 1}, "schema"),
        ({"stop": "waiting for 3 replies"}, "stop"),
        ({"publish": True}, ""),
    ],
)
def test_the_schema_refuses_what_does_not_fit(change: dict[str, Any], where: str) -> None:
    errors = list(_validator().iter_errors({**_empty_result(), **change}))
    assert errors and any(".".join(map(str, e.absolute_path)) == where for e in errors)
