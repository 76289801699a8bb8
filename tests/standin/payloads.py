"""Webhook bodies from GitHub's own examples (npm `@octokit/webhooks-examples`, vendored and
trimmed), re-aimed at a stand-in repo and signed the way GitHub signs them."""

from __future__ import annotations

import copy
import functools
import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

from tests.standin.state import WorkflowRun

# Cut to the events the App handles by tests.standin.excerpt; vendor/LICENSE says whose they are.
EXAMPLES = Path(__file__).resolve().parent / "vendor" / "webhook-examples.json"


@functools.cache
def _examples() -> dict[str, list[dict[str, Any]]]:
    data = json.loads(EXAMPLES.read_text())
    return {event["name"]: event["examples"] for event in data}


def example(event: str, **match: Any) -> dict[str, Any]:
    """A deep copy of the first example of `event` whose top-level fields equal `match`."""
    for body in _examples()[event]:
        if all(body.get(k) == v for k, v in match.items()):
            return copy.deepcopy(body)
    raise LookupError(f"no {event} example with {match}")


def aim(body: dict[str, Any], full_name: str, installation_id: int) -> dict[str, Any]:
    """Point an example at a repo of the stand-in, delivered through an installation."""
    owner, name = full_name.split("/")
    repository = body["repository"]
    repository.update(full_name=full_name, name=name, default_branch="main", fork=False)
    repository["owner"]["login"] = owner
    body["installation"] = {
        "id": installation_id,
        "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u",
    }
    return body


def push(
    full_name: str, installation_id: int, before: str, after: str, modified: list[str]
) -> dict[str, Any]:
    """A push of one commit to `main` that modified `modified`."""
    body = aim(example("push", ref="refs/heads/master"), full_name, installation_id)
    body.update(ref="refs/heads/main", before=before, after=after, base_ref=None)
    commit = copy.deepcopy(body["commits"][0])
    commit.update(id=after, tree_id=after, added=[], removed=[], modified=modified)
    body["commits"], body["head_commit"] = [commit], commit
    return body


def signed(secret: str, body: dict[str, Any], event: str) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers of one delivery, signed with `secret`."""
    raw = json.dumps(body).encode()
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": f"sha256={digest}",
        "Content-Type": "application/json",
    }
    return raw, headers


def workflow_job(
    full_name: str,
    installation_id: int,
    run: WorkflowRun,
    action: str,
    runner: str | None = None,
    conclusion: str | None = None,
) -> dict[str, Any]:
    """A `workflow_job` event of a stand-in run's one job: queued, in_progress or completed."""
    body = aim(example("workflow_job", action="queued"), full_name, installation_id)
    body.pop("deployment", None)
    body["action"] = action
    body["workflow_job"].update(
        id=run.job_id,
        run_id=run.id,
        name=run.name,
        workflow_name=run.workflow,
        head_sha=run.head_sha,
        head_branch=run.ref,
        status=action,
        conclusion=conclusion,
        runner_name=runner,
        labels=["self-hosted", run.inputs.get("hardware", "")],
    )
    return body
