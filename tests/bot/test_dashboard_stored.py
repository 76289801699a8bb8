"""A finished job's stored result on the served dashboard, read through `read_result`: the search
page draws its history, best and lineage; the repos page's gate cell is the gate the bot
recomputes, not the posted one; a stored result that does not fit says so on both pages."""

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
from kevolve.bot.jobrecord import JobStatus
from kevolve.bot.storage import Storage
from kevolve.harness.assets import template_dir

from tests.bot.fixtures import BEST_ID, REPAIR_ID, SEED_ID, timed_result

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


def _finished(storage: Storage, stored: object, sha: str = "a" * 40) -> int:
    """A done softmax job on h100 whose record keeps `stored` as its result; its id."""
    job = storage.add_job(REPO, sha, "softmax", "h100", "push", 10)
    storage.set_job_status(job, JobStatus.DONE, {"results": {"softmax": stored}, "proposals": []})
    return job


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


def test_the_repos_page_gate_is_the_one_the_bot_recomputes(
    storage: Storage, client: TestClient
) -> None:
    _finished(storage, timed_result())
    page = client.get("/dashboard/")
    assert _text(page.text, r'<td class="gate">(.*?)</td>') == "passed"
    assert "1.31×" in page.text
    stored = timed_result()
    stored["best"]["proposer"] = "seed"  # the repo's own kernel, whatever the posted gate says
    stored["publish_gate"] = {"passed": True, "reasons": []}
    _finished(storage, stored, sha="b" * 40)
    page = client.get("/dashboard/")
    assert _text(page.text, r'<td class="gate">(.*?)</td>') == (
        "the best candidate is the repo's current kernel"
    )
