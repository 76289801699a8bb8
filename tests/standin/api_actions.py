"""GitHub Actions endpoints: dispatching a workflow and cancelling its run.

A dispatch reads the workflow file from the repo at `ref` and checks the inputs against its
`workflow_dispatch` inputs, as GitHub does; the new run is then handed to `state.on_dispatch`
(see `tests.standin.actions`, which plays the runners).
"""

from __future__ import annotations

import subprocess
from typing import Any

import yaml

from tests.standin import gitrepo
from tests.standin.routing import Call, Caller, HttpError, Reply, Route
from tests.standin.state import WorkflowRun

MAX_INPUTS = 25


def dispatch(call: Call) -> Reply:
    """POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches."""
    repo = call.repo()
    _require_actions_write(call)
    ref = str(call.body.get("ref") or "")
    sha = gitrepo.resolve(repo.git_dir, ref) if ref else None
    if sha is None:
        raise HttpError(422, f"No ref found for: {ref}")
    workflow = call.params["workflow_id"]
    declared = _dispatch_inputs(repo.git_dir, sha, workflow)
    inputs = _checked_inputs(call.body.get("inputs") or {}, declared)
    state = call.state
    run_id = state.next_id()
    name = _run_name(repo.git_dir, sha, workflow, inputs)
    run = WorkflowRun(run_id, repo, workflow, ref, sha, inputs, name, state.next_id())
    with state.lock:
        state.runs[run_id] = run
    for hook in list(state.on_dispatch):
        hook(run)
    if not call.body.get("return_run_details"):
        return Reply(204, None)
    api = f"{call.urls.api}/repos/{repo.full_name}/actions/runs/{run_id}"
    web = f"{call.urls.web}/{repo.full_name}/actions/runs/{run_id}"
    return Reply(200, {"workflow_run_id": run_id, "run_url": api, "html_url": web})


def cancel(call: Call) -> Reply:
    """POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel."""
    repo = call.repo()
    _require_actions_write(call)
    run = call.state.runs.get(call.number("run_id"))
    if run is None or run.repo is not repo:
        raise HttpError(404, "Not Found")
    if run.status == "completed":
        raise HttpError(409, "Cannot cancel a workflow run that is completed.")
    run.cancel_requested = True
    return Reply(202, {})


def _require_actions_write(call: Call) -> None:
    """403 unless the app may write Actions (dispatch and cancel need it)."""
    assert call.installation is not None
    app = call.state.apps[call.installation.app_id]
    if app.permissions.get("actions") != "write":
        raise HttpError(403, "Resource not accessible by integration")


def _workflow(git_dir: Any, sha: str, workflow: str) -> dict[Any, Any]:
    """The parsed workflow file at `sha`; 404 when there is none."""
    path = f".github/workflows/{workflow}"
    try:
        text = gitrepo.git("show", f"{sha}:{path}", cwd=git_dir)
    except subprocess.CalledProcessError:
        raise HttpError(404, "Not Found") from None
    data = yaml.safe_load(text)
    return data if isinstance(data, dict) else {}


def _dispatch_inputs(git_dir: Any, sha: str, workflow: str) -> dict[str, dict[str, Any]]:
    """The workflow's `workflow_dispatch` inputs; 422 when it cannot be dispatched."""
    triggers = _workflow(git_dir, sha, workflow).get(True) or {}  # YAML 1.1 reads `on` as true
    if not isinstance(triggers, dict) or "workflow_dispatch" not in triggers:
        raise HttpError(422, "Workflow does not have 'workflow_dispatch' trigger")
    inputs = (triggers["workflow_dispatch"] or {}).get("inputs") or {}
    return {str(k): dict(v or {}) for k, v in inputs.items()}


def _checked_inputs(given: Any, declared: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The inputs with defaults filled in; 422 for unexpected, missing or too many."""
    if not isinstance(given, dict) or len(given) > MAX_INPUTS:
        raise HttpError(422, f"inputs must be an object of at most {MAX_INPUTS} properties")
    unexpected = sorted(set(given) - set(declared))
    if unexpected:
        raise HttpError(422, f"Unexpected inputs provided: {unexpected}")
    inputs: dict[str, str] = {}
    for name, spec in declared.items():
        if name in given:
            inputs[name] = str(given[name])
        elif spec.get("required"):
            raise HttpError(422, f"Required input '{name}' not provided")
        elif "default" in spec:
            inputs[name] = str(spec["default"])
    return inputs


def _run_name(git_dir: Any, sha: str, workflow: str, inputs: dict[str, str]) -> str:
    """The job's `name:` with `${{ inputs.x }}` filled in (one-job workflows, as kevolve's)."""
    jobs = _workflow(git_dir, sha, workflow).get("jobs") or {}
    template = str(next(iter(jobs.values()), {}).get("name") or workflow)
    for key, value in inputs.items():
        template = template.replace("${{ inputs." + key + " }}", value)
    return template


_REPO = "/repos/{owner}/{repo}"
ROUTES = [
    Route(
        "POST", _REPO + "/actions/workflows/{workflow_id}/dispatches", Caller.INSTALLATION, dispatch
    ),
    Route("POST", _REPO + "/actions/runs/{run_id}/cancel", Caller.INSTALLATION, cancel),
]
