"""A job's record read back as its outcome: the ops it holds results for, each stored result
read through `read_result` when asked for, and what proposing each op did; a record kept
without proposals says so, and an entry that is no proposal is left out. The outcome written
back is the record to the byte: a database an earlier version wrote reads and rewrites unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from kevolve.bot.database import jobs_table
from kevolve.bot.joboutcome import JobOutcome, ProposalRecord, ProposalStatus, job_outcome
from kevolve.bot.jobrecord import Job, JobStatus, Trigger
from kevolve.bot.storage import Storage
from kevolve.runners.fieldread import IntakeError

from tests.bot.fixtures import BEST_ID, timed_result

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _job(record: Any) -> Job:
    return Job(
        1, "acme/kernels", "a" * 40, "*", "h100", Trigger.PUSH, 5, JobStatus.DONE, NOW, None, record
    )


def _proposed(op: object, status: str, **fields: Any) -> dict[str, Any]:
    """A proposal in the layout the job worker records (`bot.jobs`)."""
    base = {"op": op, "status": status, "reason": "", "pr": None, "url": None, "candidate": None}
    return {**base, **fields}


def test_a_record_reads_back_as_the_outcome_the_job_worker_kept() -> None:
    url = "https://github.com/acme/kernels/pull/7"
    record = {
        "sha": "b" * 40,
        "results": {"softmax": timed_result(), "rmsnorm": "not a result"},
        "proposals": [
            _proposed("softmax", "opened", reason="pushed", pr=7, url=url, candidate=BEST_ID),
            _proposed("rmsnorm", "skipped", reason="no correct candidate was found"),
        ],
    }
    outcome = job_outcome(_job(record))
    assert (outcome.sha, outcome.ops) == ("b" * 40, ("softmax", "rmsnorm"))
    assert outcome.proposal("softmax") == ProposalRecord(
        "softmax", ProposalStatus.OPENED, "pushed", 7, url, BEST_ID
    )
    skipped = outcome.proposal("rmsnorm")
    assert skipped is not None and not skipped.status.proposed
    assert outcome.proposal("bias_gelu") is None
    result = outcome.result("softmax")
    assert result is not None and result.best is not None and result.best.id == BEST_ID
    assert outcome.result("bias_gelu") is None
    with pytest.raises(IntakeError, match="the result: expected an object, got str"):
        outcome.result("rmsnorm")


def test_a_record_without_proposals_says_none_were_kept_not_that_none_were_made() -> None:
    assert job_outcome(_job({"results": {"softmax": timed_result()}})).proposals is None
    assert job_outcome(_job({"results": {}, "proposals": []})).proposals == ()
    assert job_outcome(_job(None)) == JobOutcome()


def test_the_last_proposal_for_an_op_is_its_outcome() -> None:
    record = {"proposals": [_proposed("softmax", "blocked", pr=7), _proposed("softmax", "updated")]}
    last = job_outcome(_job(record)).proposal("softmax")
    assert last is not None and last.status is ProposalStatus.UPDATED and last.status.proposed


def test_an_entry_that_is_no_proposal_is_left_out_and_odd_fields_are_dropped() -> None:
    record = {
        "results": ["softmax"],
        "proposals": [
            "softmax",
            _proposed("softmax", "merged"),
            _proposed(7, "opened"),
            _proposed("softmax", "opened", pr=True, url=7, reason=None, candidate=3),
        ],
    }
    outcome = job_outcome(_job(record))
    assert outcome.ops == ()
    assert outcome.proposals == (ProposalRecord("softmax", ProposalStatus.OPENED),)


# A finished job's record as the job worker wrote it before it built a `JobOutcome` (a result
# cut to its first fields: results are kept as they came).
OLD_RECORD = (
    '{"sha": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "results": {"softmax": {"schema": 1, '
    '"problem": "softmax", "device": "cuda", "timed": true, "evaluated": 10, "best": null}, '
    '"rmsnorm": {"schema": 1, "problem": "rmsnorm", "device": "cpu", "timed": false, '
    '"evaluated": 0}}, "proposals": [{"op": "softmax", "status": "opened", "reason": "pushed", '
    '"pr": 7, "url": "https://github.com/acme/kernels/pull/7", "candidate": "0123456789abcdef"}, '
    '{"op": "rmsnorm", "status": "skipped", "reason": "no correct candidate was found", '
    '"pr": null, "url": null, "candidate": null}]}'
)


def _stored(storage: Storage, job_id: int) -> str:
    """The job's record as the database holds it."""
    with storage.engine.connect() as conn:
        query = sa.select(jobs_table.c.result).where(jobs_table.c.id == job_id)
        return str(conn.execute(query).scalar_one())


def test_an_old_record_reads_and_is_written_back_to_the_byte(storage: Storage) -> None:
    job_id = storage.add_job("acme/kernels", "b" * 40, "*", "h100", Trigger.PUSH, 5)
    with storage.engine.begin() as conn:  # as an earlier version left it
        done = {"result": OLD_RECORD, "status": JobStatus.DONE}
        conn.execute(jobs_table.update().where(jobs_table.c.id == job_id).values(**done))
    job = storage.job(job_id)
    assert job is not None
    outcome = job_outcome(job)
    assert outcome.ops == ("softmax", "rmsnorm")
    assert [(p.op, p.status, p.pr) for p in outcome.proposals or ()] == [
        ("softmax", ProposalStatus.OPENED, 7),
        ("rmsnorm", ProposalStatus.SKIPPED, None),
    ]
    storage.set_job_status(job_id, JobStatus.DONE, outcome.to_dict())
    assert _stored(storage, job_id) == OLD_RECORD


def test_the_writers_outcome_is_stored_in_the_old_layout(storage: Storage) -> None:
    url = "https://github.com/acme/kernels/pull/7"
    results = json.loads(OLD_RECORD)["results"]
    outcome = JobOutcome(
        "b" * 40,
        results,
        (
            ProposalRecord("softmax", ProposalStatus.OPENED, "pushed", 7, url, "0123456789abcdef"),
            ProposalRecord("rmsnorm", ProposalStatus.SKIPPED, "no correct candidate was found"),
        ),
    )
    job_id = storage.add_job("acme/kernels", "b" * 40, "*", "h100", Trigger.PUSH, 5)
    storage.set_job_status(job_id, JobStatus.DONE, outcome.to_dict())
    assert _stored(storage, job_id) == OLD_RECORD
    job = storage.job(job_id)
    assert job is not None and job_outcome(job) == outcome


def test_a_record_without_a_sha_or_proposals_is_written_back_without_them() -> None:
    record = {"results": {"softmax": {"problem": "softmax"}}}
    assert job_outcome(_job(record)).to_dict() == record
    assert job_outcome(_job(None)).to_dict() == {"results": {}}
