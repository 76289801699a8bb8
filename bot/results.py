"""`POST /jobs/{id}/result`: a runner hands back one op's `SearchResult` with its job's token.

The token (`bot.tokens`) names the job and expires, so a runner can post only its own job's
result and only for a while. A result is kept once: a retried post changes nothing. Refusals say
what was wrong, so the runner's log explains itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bot.board import RunBoard
from bot.storage import Storage
from bot.tokens import TokenError, verify

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
    """200 once the result is stored (or was already); 401/403 for the token, 4xx for the rest."""
    ctx: ResultsContext = request.app.state.results
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _refuse(401, "no job token: send 'Authorization: Bearer <the job's token>'")
    try:
        verify(ctx.key, token.strip(), job_id, ctx.clock())
    except TokenError as exc:
        return _refuse(403, f"{exc}; the result was not stored")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BYTES:
        return _refuse(413, f"a result may be at most {MAX_BYTES} bytes")
    body = await request.body()
    if len(body) > MAX_BYTES:
        return _refuse(413, f"a result may be at most {MAX_BYTES} bytes")
    try:
        result = json.loads(body)
    except ValueError as exc:
        return _refuse(400, f"the body is not JSON: {exc}")
    try:
        op = _op_of(result, job_id)
    except ValueError as exc:
        return _refuse(422, str(exc))
    return await run_in_threadpool(_store, ctx, job_id, op, result)


def _op_of(result: Any, job_id: int) -> str:
    """The op the result is for; a ValueError saying why the body is not this job's result."""
    if not isinstance(result, dict) or not isinstance(result.get("problem"), str):
        raise ValueError("the body is not a SearchResult: it needs a 'problem' field naming the op")
    job = result.get("job")
    if isinstance(job, dict) and job.get("id") not in (None, job_id):
        raise ValueError(f"the result is job {job.get('id')}'s, posted to job {job_id}")
    return str(result["problem"])


def _store(ctx: ResultsContext, job_id: int, op: str, result: dict[str, Any]) -> JSONResponse:
    """Keep the result on the board if the job still waits for it."""
    job = ctx.storage.job(job_id)
    if job is None:
        return _refuse(404, f"there is no job {job_id}")
    if job.status != "running":
        return _refuse(409, f"job {job_id} is {job.status}: its result is no longer wanted")
    outcome = ctx.board.post(job_id, op, result)
    if outcome == "not dispatched":
        return _refuse(409, f"job {job_id} did not dispatch op '{op}'")
    return JSONResponse({"job": job_id, "op": op, "stored": outcome == "stored"})
