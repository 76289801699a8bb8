"""A finished job's stored result on the served dashboard, read through `read_result`: the search
page draws its history, best and lineage; the repos page's gate cell says what the bot did with
it (proposed, refused by the repo's own `min_speedup` and why, or not judged), or for a record
kept without proposals the gate recomputed here, never the posted one, and says so; a stored
result that does not fit says so on both pages."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kevolve.bot.dashboard.access import LocalAccess
from kevolve.bot.dashboard.catalog import JobCatalog
from kevolve.bot.dashboard.mount import ui_app
from kevolve.bot.dashboard.portal import Dashboard
from kevolve.bot.dashboard.redaction import Redactor
from kevolve.bot.dashboard.renderer import Renderer
from kevolve.bot.joboutcome import ProposalStatus, job_outcome
from kevolve.bot.jobrecord import JobStatus, Trigger
from kevolve.bot.storage import Storage
from kevolve.harness.assets import template_dir
from kevolve.runners.intake import CheckedResult, read_result
from kevolve.runners.job import JobSpec
from kevolve.runners.runner import Cancelled

from tests.bot.fixtures import BEST_ID, DEMO, REPAIR_ID, SEED_ID, demo_result, timed_result
from tests.bot.test_jobs import REPO as JOBS_REPO
from tests.bot.test_jobs import ScriptedRunner
from tests.bot.test_jobs import _bare as bare_repo
from tests.bot.test_jobs import worker as job_worker
from tests.fakes.github import LocalGitHub

REPO = "acme/kernels"
UNFIT = "history[1].verdict: 'great' is not a verdict"


@pytest.fixture
def client(storage: Storage, tmp_path: Path) -> Iterator[TestClient]:
    """The dashboard of the bot's jobs in `storage`, open to the test client."""
    board = Dashboard(
        catalog=JobCatalog(storage, tmp_path),
        access=LocalAccess(open_to_all=True),
        renderer=Renderer(template_dir("dashboard"), Redactor()),
        storage=storage,
    )
    with TestClient(ui_app(board)) as served:
        yield served


def _finished(
    storage: Storage,
    stored: object,
    sha: str = "a" * 40,
    proposals: list[dict[str, Any]] | None = None,
) -> int:
    """A done softmax job on h100 whose record keeps `stored` as its result and `proposals`
    (None: a record kept without them); its id."""
    job = storage.add_job(REPO, sha, "softmax", "h100", Trigger.PUSH, 10)
    record: dict[str, Any] = {"sha": sha, "results": {"softmax": stored}}
    if proposals is not None:
        record["proposals"] = proposals
    storage.set_job_status(job, JobStatus.DONE, record)
    return job


def _proposal(status: str, reason: str, pr: int | None = None) -> dict[str, Any]:
    """One op's proposal in the layout the job worker records (`bot.jobs`)."""
    url = None if pr is None else f"https://github.com/{REPO}/pull/{pr}"
    return {
        "op": "softmax",
        "status": status,
        "reason": reason,
        "pr": pr,
        "url": url,
        "candidate": BEST_ID,
    }


def _gate_cell(client: TestClient) -> str:
    page = client.get("/dashboard/")
    assert page.status_code == 200
    return _text(page.text, r'<td class="gate">(.*?)</td>')


def _text(page: str, pattern: str) -> str:
    """The unescaped text of the first match of `pattern`'s group in `page`."""
    found = re.search(pattern, page, re.S)
    assert found is not None, pattern
    return html.unescape(found.group(1)).strip()


def _unfit() -> dict[str, Any]:
    """The fixture's result with a history point whose verdict is none the harness has."""
    stored = timed_result()
    stored["history"][1]["verdict"] = "great"
    return stored


def test_a_stored_result_shows_its_history_best_and_lineage(
    storage: Storage, client: TestClient
) -> None:
    job = _finished(storage, timed_result())
    page = client.get(f"/dashboard/search/{job}.softmax")
    assert page.status_code == 200
    for point in timed_result()["history"]:
        assert f'data-candidate="{point["candidate"]}"' in page.text, point
    for step in (BEST_ID, REPAIR_ID, SEED_ID):
        assert f"?node={step}" in page.text, step
    assert 'id="unreadable"' not in page.text
    assert client.get(f"/dashboard/search/{job}.softmax/node/{BEST_ID}").status_code == 200


def test_history_points_kept_without_their_candidates_leave_the_best_on_the_chart(
    storage: Storage, client: TestClient
) -> None:
    stored = timed_result()
    stored["history"] = [{"evaluated": i, "best_score": 1.0} for i in range(1, 4)]
    page = client.get(f"/dashboard/search/{_finished(storage, stored)}.softmax")
    assert page.status_code == 200
    assert set(re.findall(r'data-candidate="([0-9a-f]+)"', page.text)) == {BEST_ID}


def test_a_stored_result_that_does_not_fit_says_so_on_its_search_page(
    storage: Storage, client: TestClient
) -> None:
    job = _finished(storage, _unfit())
    page = client.get(f"/dashboard/search/{job}.softmax")
    assert page.status_code == 200
    notice = _text(page.text, r'<p class="notice" id="unreadable">(.*?)</p>')
    assert notice == f"The stored result of this search cannot be read: {UNFIT}"
    assert 'id="waiting"' not in page.text and 'http-equiv="refresh"' not in page.text
    assert client.get(f"/dashboard/search/{job}.softmax/node/{BEST_ID}").status_code == 404
    live = client.get(f"/dashboard/search/{job}.softmax/live", params={"since": "v1"})
    assert (live.status_code, live.json()) == (200, {"version": "v1"})
    other = _finished(storage, "a result", sha="b" * 40)
    page = client.get(f"/dashboard/search/{other}.softmax")
    assert _text(page.text, r'id="unreadable">(.*?)</p>') == (
        "The stored result of this search cannot be read: the result: expected an object, got str"
    )


def test_the_repos_page_shows_a_stored_result_that_does_not_fit_as_such(
    storage: Storage, client: TestClient
) -> None:
    _finished(storage, timed_result())
    _finished(storage, _unfit(), sha="b" * 40)
    page = client.get("/dashboard/")
    assert page.status_code == 200
    cell = _text(page.text, r'<td colspan="3" class="muted unreadable">(.*?)</td>')
    assert cell == f"the stored result cannot be read: {UNFIT}"
    assert _text(page.text, r'<td class="gate">(.*?)</td>') == ""
    assert "1.31×" not in page.text  # the earlier result's speedup is not shown as the newest's


def test_without_recorded_proposals_the_gate_cell_is_the_gate_recomputed_and_says_so(
    storage: Storage, client: TestClient
) -> None:
    _finished(storage, timed_result())
    page = client.get("/dashboard/")
    assert _gate_cell(client) == "recomputed at the default min_speedup (1.05): passed"
    assert "1.31×" in page.text
    stored = timed_result()
    stored["best"]["proposer"] = "seed"  # the repo's own kernel, whatever the posted gate says
    stored["publish_gate"] = {"passed": True, "reasons": []}
    _finished(storage, stored, sha="b" * 40)
    assert _gate_cell(client) == (
        "recomputed at the default min_speedup (1.05): "
        "the best candidate is the repo's current kernel"
    )


REFUSED = (
    "publish gate: the gain is too small: 1.283x at the low end of the 95% intervals "
    "(geometric mean over 2 timed cases), below the 1.50x this repo asks for (min_speedup)"
)


@pytest.mark.parametrize(
    ("proposals", "cell"),
    [
        ([_proposal("opened", "pushed", 7)], "proposed as PR #7"),
        ([_proposal("updated", "pushed", 7)], "proposed as PR #7"),
        (
            [_proposal("blocked", "the branch has a person's commits", 7)],
            "blocked: the branch has a person's commits",
        ),
        ([_proposal("skipped", REFUSED)], f"refused: {REFUSED}"),
        ([], "not judged: the job recorded no proposal for this op"),
    ],
    ids=["opened", "updated", "blocked", "refused", "not-judged"],
)
def test_the_gate_cell_says_what_the_bot_did_with_the_result(
    storage: Storage, client: TestClient, proposals: list[dict[str, Any]], cell: str
) -> None:
    _finished(storage, timed_result(), proposals=proposals)
    assert _gate_cell(client) == cell  # whatever the gate recomputed at 1.05 says (passed)


class SlowWinner(ScriptedRunner):
    """Answers each job with a timed winner 1.2x faster than the repo's kernel on every case."""

    def run(self, spec: JobSpec, cancelled: Cancelled) -> CheckedResult:
        kernel = (DEMO / "demo_kernels" / f"{spec.op}.py").read_text() + "# tuned\n"
        return read_result(demo_result(spec.op, kernel, spec.job_id, speedup=1.2), spec.job_id)


def test_a_winner_below_the_repos_own_min_speedup_shows_as_refused_not_as_passed(
    storage: Storage, client: TestClient, tmp_path: Path
) -> None:
    github = LocalGitHub(bare_repo(tmp_path, "\n[tool.kevolve]\nmin_speedup = 1.5\n"))
    storage.add_job(JOBS_REPO, "refs/heads/main", "softmax", "h100", Trigger.PUSH, 5)
    assert job_worker(github, storage, SlowWinner(), tmp_path).run_pending() == 1
    [job] = storage.jobs()
    assert job.status is JobStatus.DONE and github.pulls == []
    # At the default 1.05 the gate passes: only what the bot recorded tells the two apart.
    outcome = job_outcome(job)
    result = outcome.result("softmax")
    assert result is not None and result.gate().passed
    [proposal] = outcome.proposals or ()
    assert (proposal.op, proposal.status, proposal.pr) == ("softmax", ProposalStatus.SKIPPED, None)
    cell = _gate_cell(client)
    assert cell.startswith("refused: publish gate: the gain is too small: 1.164x"), cell
    assert "below the 1.50x this repo asks for (min_speedup)" in cell
    assert "passed" not in cell
