"""`kevolve ui` as a real process on loopback, looked at in a real headless Chromium: it follows a
CPU search (Triton's interpreter judges; the LLM is a scripted server on loopback) while the
search runs, opens a lineage node with its source, diff, verdict, prompt and raw reply, and shows
a `kevolve demo` folder; it refuses a path without a search and requests from elsewhere."""

from __future__ import annotations

import html
import os
import re
import select
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from kevolve.harness.search.snapshot import records
from kevolve.harness.search.store import evaluated_count
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from tests.bot.chromium import chromium, screenshot, shown
from tests.bot.processes import eventually
from tests.fakes.llm_server import FakeLLMServer

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"
SEED = (DEMO / "demo_kernels" / "softmax.py").read_text()
LAUNCH = "BLOCK=triton.next_power_of_2(n_cols),"
BUDGET = 7
ADDRESS = r"kevolve ui: (http://127\.0\.0\.1:\d+/dashboard/) \(Ctrl-C stops\)\n"


def _warps(n: int) -> str:
    return SEED.replace(LAUNCH, f"{LAUNCH}\n        num_warps={n},")


def _fenced(source: str, why: str) -> str:
    return f"{why}\n```python\n{source}```\n"


# What the scripted model answers, in order. One generation at a time (--parallel 1) makes the
# order of asks fixed: two proposals, two more planned ahead, then the repair of the first
# (which did not compile) before anything new.
COMPILE_ERROR = SEED.replace("cols = tl.arange(0, BLOCK)", "cols = tl.arange(0, n_cols)")
WRONG = SEED.replace("y = num / tl.sum(num, axis=0)", "y = num / (tl.sum(num, axis=0) + 1.0)")
EXP2 = SEED.replace(
    "num = tl.exp(x - tl.max(x, axis=0))",
    "num = tl.exp2((x - tl.max(x, axis=0)) * 1.4426950408889634)",
)
REPLIES = [
    _fenced(COMPILE_ERROR, "Size the block to the row."),
    _fenced(_warps(4), "Four warps per row."),
    _fenced(WRONG, "Fold the normalizer."),
    _fenced(EXP2, "exp2 is cheaper than exp."),
    _fenced(_warps(8), "Fix: keep the constexpr block; eight warps."),
    _fenced(_warps(2), "Two warps."),
    _fenced(_warps(16), "Sixteen warps."),
    _fenced(_warps(1), "One warp."),
    _fenced(_warps(32), "Thirty-two warps."),
]


@dataclass
class Ui:
    """A running `kevolve ui` and its dashboard's address."""

    proc: subprocess.Popen[str]
    url: str  # ends in /dashboard/


@contextmanager
def kevolve_ui(path: Path, log: Path) -> Iterator[Ui]:
    """`kevolve ui PATH --port 0` until the block ends; its address from its first line."""
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "ui", str(path), "--port", "0"]
    with log.open("w") as err:
        proc = subprocess.Popen(
            argv, env=_env(path.parent), stdout=subprocess.PIPE, stderr=err, text=True
        )
        try:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            line = proc.stdout.readline() if ready else ""
            found = re.fullmatch(
                r"kevolve ui: (http://127\.0\.0\.1:\d+/dashboard/) \(Ctrl-C stops\)\n", line
            )
            assert found, f"{line!r}\n{log.read_text()}"
            yield Ui(proc, found[1])
        finally:
            proc.terminate()
            proc.wait(30)


def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEVOLVE_")}
    return {**env, "PYTHONPATH": str(ROOT), "KEVOLVE_CACHE_DIR": str(cache / "cache")}


def optimize(state: Path, llm: FakeLLMServer, log: Path) -> subprocess.Popen[str]:
    """`kevolve optimize` of the demo's softmax on CPU, the scripted model proposing alone."""
    argv = [
        sys.executable, "-m", "kevolve.bot.commands.cli", "optimize", str(DEMO), "--op", "softmax",
        "--dtype", "float32", "--device", "cpu", "--state", str(state), "--budget", str(BUDGET),
        "--parallel", "1", "--per-generation", "2", "--llm-base-url", llm.base_url,
        "--llm-model", "fake-model", "--llm-share", "1.0", "--json",
    ]  # fmt: skip
    env = {**_env(state.parent), "KEVOLVE_LLM_API_KEY": "sk-kevolve-ui-test-key-0123456789"}
    out = log.open("w")
    return subprocess.Popen(argv, env=env, stdout=out, stderr=out, text=True)


def points(driver: WebDriver) -> int:
    """How many verdicts the best-so-far chart on the page shows."""
    shown = driver.execute_script(
        "const chart = document.querySelector('#progress svg');"
        "return chart ? chart.dataset.points : '0';"
    )  # read in one step: the page may swap the chart in between two
    return int(shown or 0)


def test_the_ui_follows_a_running_search_and_opens_a_lineage_node(tmp_path: Path) -> None:
    folder, shots = tmp_path / "searches", tmp_path / "screenshots"
    folder.mkdir()
    state = folder / "softmax.sqlite"
    log = tmp_path / "optimize.log"
    with (
        FakeLLMServer(REPLIES) as llm,
        kevolve_ui(folder, tmp_path / "ui.log") as ui,
        chromium(tmp_path / "profile") as browser,
    ):
        browser.get(ui.url)
        shown(browser, "#empty")  # an empty folder: nothing yet, and the page says so
        search = optimize(state, llm, log)
        try:
            assert eventually(lambda: evaluated_count(state) >= 1 or search.poll() is not None, 300)
            assert search.poll() is None, (
                f"the search ended before the page looked\n{log.read_text()}"
            )
            browser.get(ui.url + "search/softmax")
            shown(browser, "#progress svg")
            before = points(browser)
            browser.execute_script("window.kevolveMark = 'not reloaded'")
            WebDriverWait(browser, 300).until(lambda d: points(d) > before)
            assert browser.execute_script("return window.kevolveMark") == "not reloaded"
            screenshot(browser, shots, "ui-search-running")
            assert search.wait(600) == 0, log.read_text()
        finally:
            if search.poll() is None:
                search.kill()
        WebDriverWait(browser, 60).until(lambda d: points(d) == BUDGET)
        assert browser.find_element(By.ID, "evaluated").text == str(BUDGET)
        timeline = browser.find_element(By.CSS_SELECTOR, "#timeline svg")
        assert timeline.get_attribute("data-intervals") == str(BUDGET)
        assert "fake-model" in browser.find_element(By.ID, "models").text

        # The repair of the candidate that did not compile: open it in the tree.
        found = records(state)
        [repair] = [c for c in found.candidates.values() if c.proposer.endswith(":repair")]
        failed = found.candidates[repair.parents[0]]
        [asked] = [e.exchange for e in found.exchanges if e.candidate_id == repair.id]
        browser.find_element(By.CSS_SELECTOR, f'svg.tree a[data-node="{repair.id}"]').click()
        shown(browser, f'#node[data-node="{repair.id}"]')
        assert f"?node={repair.id}" in browser.current_url
        panel = browser.find_element(By.ID, "node")
        assert browser.find_element(By.ID, "node-verdict").text == "correct"
        assert f"repairs: {failed.id} (compile_error)" in panel.text
        assert browser.find_element(By.ID, "node-reply").get_attribute("textContent") == asked.reply
        assert asked.rationale == "Fix: keep the constexpr block; eight warps."
        assert asked.rationale in panel.text
        deleted = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#node-diff .d-del")]
        added = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#node-diff .d-add")]
        assert deleted == ["-    cols = tl.arange(0, n_cols)"]
        assert added == ["+    cols = tl.arange(0, BLOCK)", "+        num_warps=8,"]
        prompt = browser.find_element(By.CSS_SELECTOR, ".prompt").get_attribute("textContent") or ""
        assert asked.messages[-1]["content"][:200] in prompt
        assert "compile_error" in prompt  # the repair's prompt carried the failure
        screenshot(browser, shots, "ui-search-node")

        # Without the script the same node is on the page the server renders.
        page = httpx.get(f"{ui.url}search/softmax?node={repair.id}", timeout=30).text
        assert f'id="node" data-node="{repair.id}"' in page
        assert html.escape(asked.rationale, quote=False) in page

        browser.get(ui.url)
        shown(browser, "a.search-link")
        screenshot(browser, shots, "ui-searches")


def test_the_ui_shows_a_demo_folder_and_its_pull_request_body(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "demo", "--op", "softmax"]
    argv += ["--budget", "2", "--device", "cpu", "--out", str(out)]
    done = subprocess.run(argv, env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    with kevolve_ui(out, tmp_path / "ui.log") as ui, chromium(tmp_path / "profile") as browser:
        browser.get(ui.url)
        shown(browser, "a.search-link")
        browser.find_element(By.CSS_SELECTOR, "a.search-link").click()
        shown(browser, "#pull-body")
        body = (out / "pull-requests" / "softmax.md").read_text()
        assert browser.find_element(By.ID, "pull-body").get_attribute("textContent") == body
        assert browser.find_element(By.ID, "untimed").is_displayed()  # CPU: nothing was timed
        tree = browser.find_element(By.CSS_SELECTOR, "#tree svg")
        assert int(tree.get_attribute("data-nodes") or 0) >= 2
        screenshot(browser, tmp_path / "screenshots", "ui-demo")


def test_the_ui_answers_only_requests_from_this_host(tmp_path: Path) -> None:
    folder = tmp_path / "searches"
    folder.mkdir()
    with kevolve_ui(folder, tmp_path / "ui.log") as ui:
        mine = httpx.get(ui.url, timeout=30)
        assert mine.status_code == 200
        assert "script-src 'self'" in mine.headers["Content-Security-Policy"]
        proxied = httpx.get(ui.url, headers={"X-Forwarded-For": "203.0.113.9"}, timeout=30)
        renamed = httpx.get(ui.url, headers={"Host": "kevolve.example"}, timeout=30)
        for refused in (proxied, renamed):
            assert refused.status_code == 403
            assert "answers only on the host it runs on" in refused.text
            assert 'id="nav-searches"' not in refused.text  # not even the way in


@pytest.mark.parametrize("kind", ["missing", "other database", "text"])
def test_the_ui_refuses_a_path_that_holds_no_search(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "state.sqlite"
    if kind == "other database":
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE notes (text TEXT)")
    elif kind == "text":
        path.write_text("not a database\n")
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "ui", str(path), "--port", "0"]
    done = subprocess.run(argv, env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    expected = "no such file or folder" if kind == "missing" else "is not a kevolve search's state"
    assert line.startswith(f"kevolve: error: {path}") and expected in line, line
