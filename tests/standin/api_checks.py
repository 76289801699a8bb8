"""Check run endpoints: an app reports a job's progress and outcome on a commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.standin import gitrepo, pulls_json
from tests.standin.routing import Call, Caller, HttpError, Reply, Route
from tests.standin.state import CheckRun, now

STATUSES = {"queued", "in_progress", "completed"}
CONCLUSIONS = {
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "timed_out",
}


def _apply(run: CheckRun, body: dict[str, Any]) -> None:
    """Apply the writable fields of a create or update body to a check run."""
    run.name = str(body.get("name", run.name))
    run.details_url = body.get("details_url", run.details_url)
    run.external_id = body.get("external_id", run.external_id)
    run.output = dict(body.get("output", run.output))
    conclusion = body.get("conclusion", run.conclusion)
    status = body.get("status", "completed" if conclusion else run.status)
    if status not in STATUSES or (conclusion is not None and conclusion not in CONCLUSIONS):
        raise HttpError(422, "Validation Failed: status or conclusion")
    if status == "completed" and conclusion is None:
        raise HttpError(422, "Validation Failed: a completed check run needs a conclusion")
    run.status, run.conclusion = status, conclusion
    if "started_at" in body:
        run.started_at = _moment(body["started_at"])
    if status == "completed":
        run.completed_at = _moment(body["completed_at"]) if "completed_at" in body else now()


def _moment(text: str) -> datetime:
    """Parse an ISO 8601 timestamp from a request."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def create_check_run(call: Call) -> Reply:
    """POST /repos/{owner}/{repo}/check-runs."""
    repo = call.repo()
    head_sha = str(call.body.get("head_sha", ""))
    if gitrepo.resolve(repo.git_dir, head_sha) != head_sha:
        raise HttpError(422, "Validation Failed: head_sha is not a commit of this repo")
    assert call.app is not None
    run = CheckRun(call.state.next_id(), repo, call.app, str(call.body.get("name", "")), head_sha)
    _apply(run, call.body)
    with call.state.lock:
        call.state.check_runs[run.id] = run
    return Reply(201, pulls_json.check_run(call.urls, run))


def update_check_run(call: Call) -> Reply:
    """PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}."""
    repo = call.repo()
    run = call.state.check_runs.get(call.number("check_run_id"))
    if run is None or run.repo is not repo:
        raise HttpError(404, "Not Found")
    _apply(run, call.body)
    return Reply(200, pulls_json.check_run(call.urls, run))


_RUNS = "/repos/{owner}/{repo}/check-runs"
ROUTES = [
    Route("POST", _RUNS, Caller.INSTALLATION, create_check_run),
    Route("PATCH", _RUNS + "/{check_run_id}", Caller.INSTALLATION, update_check_run),
]
