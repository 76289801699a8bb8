"""`POST /jobs/{id}/result`: a runner hands back one op's `SearchResult` with its job's token.

The token (`bot.tokens`) names the job, the op and the attempt and expires with the attempt's time
limit, so a runner can post only its own dispatch's result and only for a while; it posts once
(a second post with it is refused, 409, and counted on the board). Anything that is not a token
is refused as such (401), a token that is not this job's valid one too (403). Refusals say what
was wrong, so the runner's log explains itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from kevolve.bot.board import RunBoard
from kevolve.bot.jobrecord import JobStatus
from kevolve.bot.storage import Storage
from kevolve.bot.tokens import Grant, TokenError, verify
from kevolve.runners.fieldread import IntakeError
from kevolve.runners.intake import read_result
from starlette.concurrency import run_in_threadpool

router = APIRouter()

MAX_BYTES = 32 * 1024 * 1024  # a result with its history and sources is well under this


@dataclass(frozen=True)
class ResultsContext:
    """What the route needs: the token key, the jobs, the board and the wall clock."""

    key: bytes
    storage: Storage
    board: RunBoard
    clock: Callable[[], float]  # Unix seconds, as tokens carry


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@router.post("/jobs/{job_id}/result")
async def post_result(job_id: int, request: Request) -> JSONResponse:
    """200 once the result is stored; 401/403 for the token, 409 for a spent one, 4xx else."""
    ctx: ResultsContext = request.app.state.results
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _refuse(401, "no job token: send 'Authorization: Bearer <the job's token>'")
    try:
        grant = verify(ctx.key, token.strip(), job_id, ctx.clock())
    except TokenError as exc:
        return _refuse(exc.status, f"{exc}; the result was not stored")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BYTES:
        return _refuse(413, f"a result may be at most {MAX_BYTES} bytes")
    body = await request.body()
    if len(body) > MAX_BYTES:
        return _refuse(413, f"a result may be at most {MAX_BYTES} bytes")
    try:
        posted = json.loads(body)
    except ValueError as exc:
        return _refuse(400, f"the body is not JSON: {exc}")
    except RecursionError:
        return _refuse(400, "the body is not JSON this bot reads: it is nested too deeply")
    try:  # kept as the bot read it: typed, checked, and nothing it does not use
        result = read_result(posted, job_id)
    except IntakeError as exc:
        return _refuse(422, f"the body is not a SearchResult this bot takes: {exc}")
    if result.problem != grant.op:
        return _refuse(403, f"job token is for op '{grant.op}', not '{result.problem}'; not stored")
    return await run_in_threadpool(_store, ctx, grant, result.to_dict())


def _spent() -> JSONResponse:
    """The answer to a token's second post (the board counted it)."""
    message = "this job token was used already: a token posts once; the result was not stored"
    return JSONResponse({"error": message, "spent": True}, status_code=409)


def _store(ctx: ResultsContext, grant: Grant, result: dict[str, Any]) -> JSONResponse:
    """Keep the result on the board if the job still waits for it; the token is spent."""
    job_id, op = grant.job_id, grant.op
    job = ctx.storage.job(job_id)
    if job is None:
        return _refuse(404, f"there is no job {job_id}")
    if ctx.board.replayed(grant):
        return _spent()
    if job.status is not JobStatus.RUNNING:
        return _refuse(409, f"job {job_id} is {job.status}: its result is no longer wanted")
    outcome = ctx.board.post(grant, result)
    if outcome == "spent":
        return _spent()
    if outcome == "unknown token":
        return _refuse(403, "this job token was never issued by this bot; not stored")
    if outcome == "not dispatched":
        return _refuse(409, f"job {job_id} did not dispatch op '{op}' #{grant.attempt}")
    if outcome == "taken":
        return _refuse(409, f"op '{op}' of job {job_id} has another attempt's result already")
    return JSONResponse({"job": job_id, "op": op, "attempt": grant.attempt, "stored": True})
