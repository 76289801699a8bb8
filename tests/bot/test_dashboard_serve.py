"""The dashboard of a real `kevolve serve` (with its worker process) against the GitHub stand-in:
pushes become CPU searches (Triton's interpreter), and a real headless Chromium signs people in
with GitHub (the App's OAuth flow, on the stand-in), follows a running search's chart, opens a
lineage node (of the whole search, kept when the job ends), and sees only the repos GitHub says
each person can read; no page shows a secret.
Without sign-in settings the dashboard answers only requests from its own host."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import git
import httpx
import pytest
from kevolve.bot.storage import Storage
from kevolve.harness.search.snapshot import records
from kevolve.harness.search.store import evaluated_count
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from tests.bot.chromium import chromium, screenshot, shown
from tests.bot.processes import eventually
from tests.ports import free_port
from tests.standin import auth, gitrepo, payloads
from tests.standin.fixtures import World, add_collaborator, build_world, create_repo, git_env
from tests.standin.state import Repo
from tests.standin.user_auth import client_id

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "dashboard-webhook-secret-0123456789"
CLIENT_SECRET = "dashboard-oauth-client-secret-9876543210"
LLM_KEY = "sk-kevolve-dashboard-test-key-0123456789"
KERNEL = "demo_kernels/softmax.py"
BUDGET = 4


@dataclass
class Served:
    """A running `kevolve serve`, its database and the GitHub world it serves."""

    url: str
    world: World
    hidden: Repo  # acme/secret: alice alone may read it
    storage: Storage
    tmp: Path
    proc: subprocess.Popen[bytes]
    shots: Path
    pushed: dict[str, str] = field(default_factory=dict)  # repo -> the sha pushed

    def log(self) -> str:
        return (self.tmp / "serve.log").read_text(errors="replace")

    def push(self, repo: Repo, line: str) -> None:
        """Commit a change to the softmax kernel on main and deliver its push webhook."""
        before = gitrepo.branch_sha(repo.git_dir, "main") or ""
        token = auth.issue_token(self.world.standin.state, self.world.installation).value
        into = self.tmp / f"clone-{repo.name}-{time.monotonic_ns()}"
        clone = git.Repo.clone_from(self.world.standin.clone_url(repo, token), into, env=git_env())
        clone.git.update_environment(**git_env())
        (into / KERNEL).write_text((into / KERNEL).read_text() + f"# {line}\n")
        clone.index.add([KERNEL])
        alice = git.Actor("Alice", "alice@example.com")
        after = clone.index.commit(line, author=alice, committer=alice).hexsha
        clone.git.push("origin", "HEAD:refs/heads/main")
        body = payloads.push(repo.full_name, self.world.installation.id, before, after, [KERNEL])
        raw, headers = payloads.signed(WEBHOOK_SECRET, body, "push")
        answer = httpx.post(f"{self.url}/webhook", content=raw, headers=headers, timeout=30)
        assert answer.status_code == 202, answer.text
        self.pushed[repo.full_name] = after

    def job_of(self, repo: Repo) -> int | None:
        """The id of the repo's job, once stored."""
        jobs = self.storage.jobs(repo.full_name)
        return jobs[-1].id if jobs else None

    def status(self, job_id: int) -> str:
        job = self.storage.job(job_id)
        return job.status if job else "missing"

    def state_file(self, job_id: int) -> Path:
        return self.tmp / "work" / "jobs" / f"job-{job_id}" / "state" / "softmax.sqlite"

    def kept_state(self, job_id: int) -> Path:
        return self.tmp / "work" / "jobs" / "finished" / f"job-{job_id}" / "softmax.sqlite"

    def secrets(self) -> list[str]:
        """Every secret value a page must never show."""
        state = self.world.standin.state
        return [
            WEBHOOK_SECRET, CLIENT_SECRET, LLM_KEY, "PRIVATE KEY",
            *state.user_tokens, *state.tokens,
        ]  # fmt: skip


def _private(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)  # the bot refuses secret files others may read
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The stand-in (repos acme/kernels, read by alice, bob and carol, and acme/secret, read by
    alice alone) and `kevolve serve` signing people in through the App's OAuth client."""
    tmp = tmp_path_factory.mktemp("served")
    world = build_world(tmp / "github")
    try:
        hidden = create_repo(world.standin, world.installation, "secret")
        add_collaborator(world.standin, hidden, "alice", "admin")
        world.standin.state.add_user("dave")  # on GitHub, but no role on either repo
        world.standin.state.apps[world.app.app_id].client_secret = CLIENT_SECRET
        env = _bot_env(tmp, world)
        port = free_port()
        argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "serve", "--port", str(port)]
        out = (tmp / "serve.log").open("wb")
        proc = subprocess.Popen(argv, cwd=tmp, env=env, stdout=out, stderr=out)
        url = f"http://127.0.0.1:{port}"
        assert eventually(lambda: proc.poll() is not None or _healthy(url), 60)
        assert proc.poll() is None, (tmp / "serve.log").read_text()
        storage = Storage(env["KEVOLVE_DATABASE_URL"])
        try:
            yield Served(url, world, hidden, storage, tmp, proc, tmp / "screenshots")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            storage.close()
        world.standin.assert_clean()  # every reply to the dashboard's calls followed the spec
    finally:
        world.standin.stop()


def _bot_env(tmp: Path, world: World) -> dict[str, str]:
    """The environment of `kevolve serve`: the stand-in's App and its OAuth client."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEVOLVE_")}
    return {
        **env,
        "PYTHONPATH": str(ROOT),
        "KEVOLVE_WEBHOOK_SECRET_FILE": str(_private(tmp / "webhook.secret", WEBHOOK_SECRET)),
        "KEVOLVE_LLM_API_KEY_FILE": str(_private(tmp / "llm.key", LLM_KEY)),
        "KEVOLVE_DATABASE_URL": f"sqlite:///{tmp / 'bot.db'}",
        "KEVOLVE_GITHUB_APP_ID": str(world.app.app_id),
        "KEVOLVE_GITHUB_PRIVATE_KEY_PATH": str(_private(tmp / "app.pem", world.app.private_key)),
        "KEVOLVE_GITHUB_API_URL": world.standin.urls.api,
        "KEVOLVE_GITHUB_URL": world.standin.urls.web,
        "KEVOLVE_GITHUB_CLIENT_ID": client_id(world.standin.state.apps[world.app.app_id]),
        "KEVOLVE_GITHUB_CLIENT_SECRET_FILE": str(_private(tmp / "client.secret", CLIENT_SECRET)),
        "KEVOLVE_HARDWARE": "cpu",
        "KEVOLVE_BUDGET": str(BUDGET),
        "KEVOLVE_DEVICE": "cpu",
        "KEVOLVE_WORKDIR": str(tmp / "work"),
        "KEVOLVE_CACHE_DIR": str(tmp / "cache"),
        "KEVOLVE_PUBLISH_UNTIMED": "1",
        "KEVOLVE_FLEET_POLL_S": "0",  # no runner polling: the stand-in's runner is not a CPU
        # The jobs run as this test's own user: the dashboard reads their state as they run.
        "KEVOLVE_JOB_USER": pwd.getpwuid(os.geteuid()).pw_name,
        "KEVOLVE_JOB_AS_BOT_USER": "1",
    }


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def sign_in(browser: WebDriver, served: Served, login: str, page: str = "/dashboard/") -> None:
    """Open `page`; GitHub's sign-in comes first, as `login`; back on the page afterwards."""
    browser.get(served.url + page)
    shown(browser, "#authorize")  # the stand-in's GitHub sign-in page
    assert browser.current_url.startswith(served.world.standin.urls.web + "/login/oauth/")
    browser.find_element(By.ID, "login").send_keys(login)
    browser.find_element(By.ID, "authorize").click()
    shown(browser, "#viewer")
    assert browser.find_element(By.ID, "viewer").text == login
    assert browser.current_url == served.url + page


def sign_out(browser: WebDriver) -> None:
    browser.find_element(By.CSS_SELECTOR, "form.who button").click()
    shown(browser, "#message")
    assert browser.find_element(By.ID, "message").text == "Signed out."


def points(driver: WebDriver) -> int:
    shown = driver.execute_script(
        "const chart = document.querySelector('#progress svg');"
        "return chart ? chart.dataset.points : '0';"
    )  # read in one step: the page may swap the chart in between two
    return int(shown or 0)


def test_signed_in_the_chart_follows_a_running_search_and_the_tree_opens_a_node(
    served: Served, tmp_path: Path
) -> None:
    kernels = served.world.repo
    with chromium(tmp_path / "carol") as browser:
        sign_in(browser, served, "carol")
        served.push(kernels, "a change to follow")
        assert eventually(lambda: served.job_of(kernels) is not None, 60), served.log()
        job = served.job_of(kernels)
        assert job is not None
        state = served.state_file(job)
        ended = ("done", "failed", "cancelled")
        assert eventually(
            lambda: evaluated_count(state) >= 1 or served.status(job) in ended, 300
        ), served.log()
        assert served.status(job) == "running", "the search ended before the page looked"
        browser.get(f"{served.url}/dashboard/search/{job}.softmax")
        shown(browser, "#progress svg")
        before = points(browser)
        browser.execute_script("window.kevolveMark = 'not reloaded'")
        WebDriverWait(browser, 300).until(lambda d: points(d) > before)
        assert browser.execute_script("return window.kevolveMark") == "not reloaded"
        screenshot(browser, served.shots, "serve-search-running")

        gone = lambda: served.status(job) == "done" and not state.exists()  # noqa: E731
        assert eventually(gone, 300), served.log()
        kept = served.kept_state(job)
        assert kept.is_file()  # the checkout went; the search state was kept for the dashboard
        browser.refresh()
        shown(browser, "#tree svg")
        assert not browser.find_elements(By.ID, "summary-only")
        assert points(browser) == BUDGET
        tree = browser.find_element(By.CSS_SELECTOR, "#tree svg")
        assert tree.get_attribute("data-nodes") == str(len(records(kept).candidates))
        result = served.storage.job(job).result  # type: ignore[union-attr]
        best = result["results"]["softmax"]["best"]  # type: ignore[index]
        browser.find_element(By.CSS_SELECTOR, f'svg.tree a[data-node="{best["id"]}"]').click()
        shown(browser, f'#node[data-node="{best["id"]}"]')
        assert browser.find_element(By.ID, "node-verdict").text == "correct"
        source = browser.find_element(By.ID, "node-source").get_attribute("textContent")
        assert source == best["source"]
        screenshot(browser, served.shots, "serve-search-node")


def test_each_person_sees_only_the_repos_they_can_read(served: Served, tmp_path: Path) -> None:
    kernels, hidden = served.world.repo, served.hidden
    if kernels.full_name not in served.pushed:
        served.push(kernels, "a change for the overview")
    served.push(hidden, "a change nobody else may see")
    assert eventually(lambda: served.job_of(hidden) is not None, 60), served.log()
    hidden_job = served.job_of(hidden)
    assert hidden_job is not None
    assert eventually(lambda: all(j.status == "done" for j in served.storage.jobs()), 600), (
        served.log()
    )
    hidden_pages = [
        f"/dashboard/repos/{hidden.full_name}",
        f"/dashboard/search/{hidden_job}.softmax",
        f"/dashboard/search/{hidden_job}.softmax?node=0123456789abcdef",
    ]
    with chromium(tmp_path / "browser") as browser:
        sign_in(browser, served, "carol")  # reads acme/kernels only
        shown(browser, f'section.repo[data-repo="{kernels.full_name}"]')
        screenshot(browser, served.shots, "serve-repos")
        carol = _pages(browser, served)
        for text in carol.values():
            assert hidden.full_name not in text and served.pushed[hidden.full_name] not in text
        for page in hidden_pages:
            browser.get(served.url + page)
            shown(browser, "#message")
            assert hidden.full_name not in browser.page_source.split("<main>")[1]
        live = browser.execute_script(
            "return fetch(arguments[0]).then(r => r.status)",
            f"{served.url}/dashboard/search/{hidden_job}.softmax/live",
        )
        assert live == 404
        browser.get(f"{served.url}/dashboard/repos/{kernels.full_name}")
        shown(browser, "#repo-name")
        screenshot(browser, served.shots, "serve-repo")
        browser.get(f"{served.url}/dashboard/fleet")
        shown(browser, "h1")
        screenshot(browser, served.shots, "serve-fleet")
        sign_out(browser)

        sign_in(browser, served, "dave")  # on GitHub, no role on either private repo
        shown(browser, "#empty")
        assert kernels.full_name not in browser.page_source
        sign_out(browser)

        sign_in(browser, served, "alice")  # admin of both
        shown(browser, f'section.repo[data-repo="{hidden.full_name}"]')
        alice = _pages(browser, served)
        assert hidden.full_name in alice["/dashboard/fleet"]
        for page in hidden_pages[:2]:
            browser.get(served.url + page)
            assert hidden.full_name in browser.page_source

        secrets = served.secrets()
        for text in [*carol.values(), *alice.values()]:
            assert not [s for s in secrets if s in text]


def _pages(browser: WebDriver, served: Served) -> dict[str, str]:
    """The source of each page a signed-in person reaches from the overview."""
    found = {}
    jobs = served.storage.jobs()
    pages = ["/dashboard/", "/dashboard/searches", "/dashboard/fleet"]
    pages += [f"/dashboard/repos/{j.repo}" for j in jobs]
    pages += [f"/dashboard/search/{j.id}.softmax" for j in jobs]
    for page in pages:
        browser.get(served.url + page)
        shown(browser, "main")
        found[page] = browser.page_source
    return found


def test_without_a_session_nothing_shows_and_a_forged_return_is_refused(served: Served) -> None:
    for page in ("/dashboard/", "/dashboard/fleet", "/dashboard/search/1.softmax"):
        answer = httpx.get(served.url + page, timeout=30)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/dashboard/signin?next=")
    live = httpx.get(f"{served.url}/dashboard/search/1.softmax/live", timeout=30)
    assert live.status_code == 401 and "softmax" not in live.text
    start = httpx.get(f"{served.url}/dashboard/signin?next=https://evil.example/", timeout=30)
    assert start.status_code == 303
    assert start.headers["location"].startswith(served.world.standin.urls.web)
    forged = httpx.get(
        f"{served.url}/dashboard/signin/callback?code=abc&state=made-up",
        cookies={"kevolve_signin": "made-up"},
        timeout=30,
    )
    assert forged.status_code == 403
    assert "not started here" in forged.text
    assert "kevolve_session" not in forged.headers.get("set-cookie", "")


def test_without_sign_in_settings_the_dashboard_answers_only_this_host(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEVOLVE_")}
    env.update(
        PYTHONPATH=str(ROOT),
        KEVOLVE_WEBHOOK_SECRET_FILE=str(_private(tmp_path / "webhook.secret", WEBHOOK_SECRET)),
        KEVOLVE_DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        KEVOLVE_WORKDIR=str(tmp_path / "work"),
        KEVOLVE_FLEET_POLL_S="0",
    )
    port = free_port()
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "serve"]
    argv += ["--no-worker", "--port", str(port)]
    out = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        assert eventually(lambda: proc.poll() is not None or _healthy(url), 60)
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        assert httpx.get(f"{url}/dashboard/", timeout=30).status_code == 200
        for headers in ({"X-Forwarded-For": "203.0.113.9"}, {"Host": "kevolve.example"}):
            refused = httpx.get(f"{url}/dashboard/fleet", headers=headers, timeout=30)
            assert refused.status_code == 403
            assert "KEVOLVE_DASHBOARD=github" in refused.text
    finally:
        proc.terminate()
        proc.wait(60)


@pytest.mark.parametrize(
    ("dashboard", "message"),
    [
        ("github", "KEVOLVE_DASHBOARD=github signs people in with the App's OAuth client: set"),
        ("public", "KEVOLVE_DASHBOARD='public' is unknown. Fix: set it to auto, local, github"),
    ],
)
def test_a_dashboard_setting_serve_cannot_honour_stops_it_with_the_fix(
    tmp_path: Path, dashboard: str, message: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEVOLVE_")}
    env.update(
        PYTHONPATH=str(ROOT),
        KEVOLVE_WEBHOOK_SECRET_FILE=str(_private(tmp_path / "webhook.secret", WEBHOOK_SECRET)),
        KEVOLVE_DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        KEVOLVE_DASHBOARD=dashboard,
    )
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "serve", "--no-worker"]
    argv += ["--port", str(free_port())]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith(f"kevolve: error: {message}"), done.stderr
    assert "Traceback" not in done.stderr
