"""`kevolve app create` as a real process against the GitHub stand-in: GitHub's App manifest flow
clicked through in a real headless Chromium, the written files used by a real `kevolve serve`;
and each way the flow can fail, driven over HTTP."""

from __future__ import annotations

import html
import os
import re
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from github import Auth, GithubIntegration
from kevolve.bot.app_manifest import EVENTS, PERMISSIONS
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.bot.processes import eventually
from tests.ports import free_port
from tests.standin import hookshot, payloads
from tests.standin.fixtures import install
from tests.standin.server import StandIn
from tests.standin.state import App

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ORG = "acme"


@dataclass
class Registration:
    """A running `kevolve app create` and where its page is."""

    proc: subprocess.Popen[str]
    address: str  # the page with its token, as printed
    directory: Path
    webhook_url: str

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        """Its exit status, the rest of its stdout and its stderr."""
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[StandIn]:
    """A bare GitHub stand-in with one organization; fails on replies that break the spec."""
    server = StandIn(tmp_path / "github").start()
    server.state.add_user(ORG, "Organization")
    try:
        yield server
        server.assert_clean()
    finally:
        server.stop()


@pytest.fixture
def registrations() -> Iterator[list[Registration]]:
    """The registrations a test starts; any still running afterwards is killed."""
    started: list[Registration] = []
    yield started
    for registration in started:
        if registration.proc.poll() is None:
            registration.proc.kill()
            registration.proc.communicate()


def register(
    standin: StandIn, directory: Path, started: list[Registration], *extra: str
) -> Registration:
    """Start `kevolve app create` against the stand-in; once its page is up."""
    webhook = f"http://127.0.0.1:{free_port()}/webhook"
    argv = [
        *(sys.executable, "-m", "kevolve.bot.commands.cli", "app", "create"),
        *("--webhook-url", webhook),
        *("--port", "0", "--dir", str(directory)),
        *("--github-url", standin.urls.web, "--api-url", standin.urls.api, *extra),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        argv, cwd=directory.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    registration = Registration(proc, "", directory, webhook)
    started.append(registration)
    line = _line(proc, timeout=60)
    found = re.fullmatch(r"Open (\S+) in a browser signed in to GitHub\.\n", line)
    assert found, f"{line!r}\n{registration.finish()[2] if not line else ''}"
    registration.address = found[1]
    return registration


def _line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The next line of a process's stdout, waiting at most `timeout` seconds."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no line within the deadline"
    return proc.stdout.readline()


def _form(page: str) -> tuple[str, dict[str, str]]:
    """The first form of a page: its action and its fields' values."""
    found = re.search(r"<form[^>]*action=[\"']([^\"']*)[\"']", page)
    assert found, page
    fields = re.findall(r"<input[^>]*name=[\"'](\w+)[\"'][^>]*value=[\"']([^\"']*)[\"']", page)
    return html.unescape(found[1]), {name: html.unescape(value) for name, value in fields}


def to_redirect(standin: StandIn, registration: Registration) -> str:
    """Post the page's manifest to the stand-in and press its button as a browser would; the
    address GitHub sends the browser back to (not followed)."""
    action, fields = _form(httpx.get(registration.address).text)
    confirm = httpx.post(action, data=fields)
    assert confirm.status_code == 200, confirm.text
    create, fields = _form(confirm.text)
    created = httpx.post(urljoin(action, create), data=fields)
    assert created.status_code == 302, created.text
    return created.headers["Location"]


def the_app(standin: StandIn) -> App:
    """The one App the stand-in holds."""
    [app] = standin.state.apps.values()
    return app


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """Debian's Chromium, headless, driven by its chromedriver."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(
            f"no {CHROMIUM} or {CHROMEDRIVER}: apt-get install chromium chromium-driver "
            "(.ci/run does)",
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)  # no sandbox: tests run as root, which Chromium refuses
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium'}")
    options.add_argument("--window-size=1000,1400")
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def _shown(driver: WebDriver, element_id: str) -> None:
    """Wait until the page shows the element `element_id`."""
    try:
        WebDriverWait(driver, 30).until(
            expected_conditions.presence_of_element_located((By.ID, element_id))
        )
    except WebDriverException:
        pytest.fail(f"no #{element_id} at {driver.current_url}:\n{driver.page_source}")


def env_file(path: Path) -> dict[str, str]:
    """An environment file read as systemd's EnvironmentFile= reads it (KEY=VALUE, comments)."""
    values = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value[1:-1] if value.startswith('"') else value
    return values


def test_an_app_registered_in_chromium_is_written_and_serves(
    standin: StandIn, registrations: list[Registration], browser: WebDriver, tmp_path: Path
) -> None:
    registration = register(standin, tmp_path / "app", registrations, "--org", ORG)
    browser.get(registration.address)
    _shown(browser, "register")
    browser.save_screenshot(str(tmp_path / "1-kevolve-page.png"))
    browser.find_element(By.ID, "register").click()
    _shown(browser, "create")
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Create GitHub App for {ORG}"
    browser.save_screenshot(str(tmp_path / "2-github-page.png"))
    browser.find_element(By.ID, "create").click()
    _shown(browser, "created")
    browser.save_screenshot(str(tmp_path / "3-registered.png"))
    app = the_app(standin)
    assert browser.find_element(By.ID, "app-id").text == str(app.id)
    status, out, err = registration.finish()
    assert status == 0, err
    assert f"Registered the GitHub App 'kevolve' (id {app.id})" in out

    # GitHub holds exactly what kevolve asked for.
    assert app.owner.login == ORG and app.webhook_url == registration.webhook_url
    assert app.permissions == {name: level for name, (level, _) in PERMISSIONS.items()}
    assert app.events == list(EVENTS)

    # The files: the App's own key and secret, readable by their owner alone.
    directory = registration.directory
    files = {name: directory / name for name in ("github-app.pem", "webhook-secret", "kevolve.env")}
    assert {name: path.stat().st_mode & 0o777 for name, path in files.items()} == dict.fromkeys(
        files, 0o600
    )
    key = serialization.load_pem_private_key(files["github-app.pem"].read_bytes(), None)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert public == app.public_key_pem
    assert files["webhook-secret"].read_text() == f"{app.webhook_secret}\n"
    env = env_file(files["kevolve.env"])
    assert env == {
        "KEVOLVE_GITHUB_APP_ID": str(app.id),
        "KEVOLVE_GITHUB_PRIVATE_KEY_PATH": str(files["github-app.pem"]),
        "KEVOLVE_GITHUB_API_URL": standin.urls.api,
        "KEVOLVE_BOT_LOGIN": "kevolve[bot]",
        "KEVOLVE_WEBHOOK_SECRET_FILE": str(files["webhook-secret"]),
    }

    # The key signs in as the App, and gets tokens for an installation of it.
    installation = install(standin, app.id, ORG)
    integration = GithubIntegration(
        auth=Auth.AppAuth(env["KEVOLVE_GITHUB_APP_ID"], files["github-app.pem"].read_text()),
        base_url=standin.urls.api,
    )
    assert integration.get_app().slug == app.slug
    assert integration.get_access_token(installation.id).token

    # `kevolve serve` started from the env file accepts what GitHub signs for this App.
    serve_env = {k: v for k, v in os.environ.items() if not k.startswith("KEVOLVE_")}
    serve_env.update(env, PYTHONPATH=str(ROOT), KEVOLVE_WORKDIR=str(tmp_path / "work"))
    serve_env["KEVOLVE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'kevolve.db'}"
    port = urlsplit(registration.webhook_url).port
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "serve"]
    argv += ["--no-worker", "--port", str(port)]
    with (tmp_path / "serve.log").open("wb") as log:
        serve = subprocess.Popen(argv, cwd=tmp_path, env=serve_env, stdout=log, stderr=log)
    try:
        assert eventually(lambda: serve.poll() is not None or _healthy(port), 60)
        assert serve.poll() is None, (tmp_path / "serve.log").read_text()
        body = payloads.example("installation", action="created")
        body["installation"].update(id=installation.id, app_id=app.id)
        assert hookshot.deliver(app, "installation", body).status_code == 202
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)


def _healthy(port: int | None) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_redirect_without_the_flows_state_is_refused_and_the_flow_goes_on(
    standin: StandIn, registrations: list[Registration], tmp_path: Path
) -> None:
    registration = register(standin, tmp_path / "app", registrations)
    location = to_redirect(standin, registration)
    code = parse_qs(urlsplit(location).query)["code"][0]
    forged = location.split("?")[0] + f"?code={code}&state=forged"
    refused = httpx.get(forged)
    assert refused.status_code == 400 and "State mismatch" in refused.text
    assert httpx.get(registration.address.split("?")[0]).status_code == 403  # no token, no page
    assert registration.proc.poll() is None and not registration.directory.exists()
    assert httpx.get(location).status_code == 200  # the genuine redirect still completes
    assert registration.finish()[0] == 0


def test_an_expired_code_is_said_and_nothing_is_written(
    standin: StandIn, registrations: list[Registration], tmp_path: Path
) -> None:
    registration = register(standin, tmp_path / "app", registrations)
    location = to_redirect(standin, registration)
    code = parse_qs(urlsplit(location).query)["code"][0]
    handed = standin.state.manifest_codes[code]
    standin.state.manifest_codes[code] = type(handed)(
        handed.app_id, handed.pem, handed.client_secret, handed.expires_at.replace(year=2000)
    )
    page = httpx.get(location)
    assert page.status_code == 502 and "expired (a code lasts one hour)" in page.text
    status, _, err = registration.finish()
    assert status == 1
    assert err.startswith("kevolve: error: GitHub does not know this code: it expired")
    assert not registration.directory.exists()


def test_a_github_error_during_the_exchange_is_said(
    standin: StandIn, registrations: list[Registration], tmp_path: Path
) -> None:
    registration = register(standin, tmp_path / "app", registrations)
    location = to_redirect(standin, registration)
    standin.throttle_next(1, retry_after=60)
    assert httpx.get(location).status_code == 502
    status, _, err = registration.finish()
    assert status == 1
    assert "GitHub answered 403 to the code's exchange: You have exceeded a secondary" in err
    assert not registration.directory.exists()


def test_a_busy_port_is_said_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "app", "create"]
        argv += ["--port", str(port)]
        argv += ["--webhook-url", "https://kevolve.example.com/webhook", "--dir", str(tmp_path)]
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == (
        f"kevolve: error: port {port} on 127.0.0.1 is in use by another program. Fix: stop "
        "it, or pass --port with a free port (--port 0 picks one)\n"
    )


def test_existing_files_are_kept_unless_forced(
    standin: StandIn, registrations: list[Registration], tmp_path: Path
) -> None:
    directory = tmp_path / "app"
    directory.mkdir()
    old_key = directory / "github-app.pem"
    old_key.write_text("the key of an App registered before\n")
    old_key.chmod(0o644)
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "app", "create"]
    argv += ["--dir", str(directory)]
    argv += ["--webhook-url", "https://kevolve.example.com/webhook", "--port", "0"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"{old_key} already exists" in done.stderr and "--force" in done.stderr
    assert old_key.read_text() == "the key of an App registered before\n"

    registration = register(standin, directory, registrations, "--force")
    assert httpx.get(to_redirect(standin, registration)).status_code == 200
    assert registration.finish()[0] == 0
    assert old_key.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert old_key.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in directory.iterdir()) == [
        "github-app.pem",
        "kevolve.env",
        "webhook-secret",
    ]
