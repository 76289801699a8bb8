"""Tests for `harness.sandbox.confine`: a judge importing repo code, confined by bubblewrap or,
without it, by the fallback jail as the job user, sees only its own processes, cannot read another
user's 0600 file, has no network; the verdict's notes say how it was confined."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kevolve.harness.evaluate import EvalOptions, HarnessError, evaluate, judge_cache
from kevolve.harness.evaluation import Verdict
from kevolve.harness.sandbox.confine import Confinement
from kevolve.harness.spec.load import load_problems
from kevolve.harness.spec.problem import Problem

from tests.bot.processes import alive, cmdline, descendants, eventually
from tests.jobuser import ensure_job_user, reachable_dir

ROOT = Path(__file__).resolve().parents[2]
SOFTMAX = ROOT / "examples" / "kernelbench" / "softmax.py"
GOOD = (ROOT / "tests" / "corpus" / "kernelbench" / "softmax__good_online.py").read_text()
BWRAP = shutil.which("bwrap")
MARK = "KEVOLVE_CONFINE_MARK"
REPORT = re.compile(r"PROBE (.*?) END")
PROBE = """
def _kevolve_probe():
    import errno, os, socket
    from pathlib import Path

    pids = [e.name for e in Path("/proc").iterdir() if e.name.isdigit()]
    spied = []
    for pid in pids:
        try:
            if b"{mark}=" in Path("/proc/" + pid + "/environ").read_bytes():
                spied.append(pid)
        except OSError:
            pass
    try:
        Path({secret!r}).read_bytes()
        secret = "read"
    except OSError as exc:
        secret = type(exc).__name__
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=5).close()
        net = "connected"
    except OSError as exc:
        net = errno.errorcode.get(exc.errno, "other")
    raise RuntimeError(
        "PROBE uid=%d pids=%d tester=%s spied=%s secret=%s net=%s END"
        % (os.getuid(), len(pids), {tester!r} in pids, ",".join(spied) or "none", secret, net)
    )


_kevolve_probe()
"""


@pytest.fixture(scope="module")
def job_user() -> str:
    return ensure_job_user()


@pytest.fixture
def place() -> Iterator[Path]:
    """A directory the job user can reach: `repo/` for the problem, beside `bot/` holding a 0600
    file of ours (the bot's key)."""
    with reachable_dir("kevolve-confine-") as path:
        (path / "repo").mkdir(mode=0o755)
        (path / "bot").mkdir(mode=0o711)
        secret = path / "bot" / "secret.pem"
        secret.write_text("-----BEGIN PRIVATE KEY-----\n")
        secret.chmod(0o600)
        yield path


@pytest.fixture
def listener() -> Iterator[int]:
    """The port of a loopback TCP listener of ours."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def probed_problem(place: Path, port: int) -> Problem:
    """A KernelBench problem whose module (the judge's reference) runs the probe on import."""
    path = place / "repo" / "softmax.py"
    probe = PROBE.format(
        mark=MARK, secret=str(place / "bot" / "secret.pem"), port=port, tester=str(os.getpid())
    )
    path.write_text(SOFTMAX.read_text() + probe)
    [problem] = load_problems(path)
    return problem


def probe(problem: Problem, confinement: Confinement, cache: Path) -> dict[str, str]:
    """What the probe found, from the judge's failure."""
    options = EvalOptions(device="cpu", timeout=60, confinement=confinement, cache_dir=cache)
    with pytest.raises(HarnessError) as info:
        evaluate(problem, GOOD, options)
    found = REPORT.search(str(info.value))
    assert found is not None, f"{info.value}\n{info.value.detail}"
    return dict(field.split("=", 1) for field in found.group(1).split())


def test_under_bubblewrap_repo_code_sees_only_its_own_processes_and_files(
    job_user: str, place: Path, listener: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert BWRAP is not None, "install bubblewrap (apt-get install bubblewrap)"
    monkeypatch.setenv(MARK, "1")  # in our environment, the bot's stand-in
    report = probe(probed_problem(place, listener), Confinement(job_user, BWRAP), place / "cache")
    assert report["tester"] == "False"  # its own pid namespace: we do not exist there
    assert int(report["pids"]) <= 3  # bubblewrap's init, the judge, at most one more
    assert report["spied"] == "none"
    assert report["secret"] == "FileNotFoundError"  # nothing of ours is bound in
    assert report["net"] in ("ENETUNREACH", "ECONNREFUSED")
    assert report["uid"] != str(os.getuid())


def test_without_bubblewrap_the_jail_and_the_job_user_still_wall_it_off(
    job_user: str, place: Path, listener: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MARK, "1")
    report = probe(probed_problem(place, listener), Confinement(job_user), place / "cache")
    assert report["tester"] == "True"  # no pid namespace here: the user is the wall
    assert report["spied"] == "none"
    assert report["secret"] == "PermissionError"
    assert report["net"] in ("ENETUNREACH", "ECONNREFUSED")
    assert report["uid"] != str(os.getuid())


@pytest.mark.parametrize(
    ("bwrap", "note"),
    [
        (
            BWRAP,
            "confined by bubblewrap as user kevolve-job: own pid, mount, IPC and user "
            "namespaces, network isolated",
        ),
        (
            None,
            "no bubblewrap (bwrap) on this host: the judge ran in the fallback jail "
            "(resource limits, own network namespace, no bubblewrap) as user kevolve-job",
        ),
        (
            "/nonexistent/bwrap",
            "bubblewrap was not found at /nonexistent/bwrap: the judge ran in the fallback jail",
        ),
    ],
    ids=["bubblewrap", "missing", "wrong-path"],
)
def test_the_verdict_says_how_the_judge_was_confined(
    job_user: str, place: Path, bwrap: str | None, note: str
) -> None:
    [problem] = load_problems(shutil.copy(SOFTMAX, place / "repo" / "softmax.py"))
    options = EvalOptions(
        device="cpu", timeout=60, confinement=Confinement(job_user, bwrap), cache_dir=place
    )
    ev = evaluate(problem, GOOD, options)
    assert ev.verdict is Verdict.CORRECT, ev.reason
    assert [n for n in ev.notes if n.startswith(note)], ev.notes


def test_each_repository_has_its_own_judge_cache(tmp_path: Path) -> None:
    one, other = judge_cache(tmp_path, "acme/kernels"), judge_cache(tmp_path, "acme_kernels")
    assert one.parent == other.parent == tmp_path / "triton-judge"
    assert one != other and one.name.startswith("acme_kernels-")
    assert judge_cache(tmp_path, "") == tmp_path / "triton-judge" / "local"


EVALUATE = """
import sys
from pathlib import Path
from kevolve.harness.evaluate import EvalOptions, evaluate
from kevolve.harness.spec.load import load_problems
[problem] = load_problems(Path(sys.argv[1]))
evaluate(problem, Path(sys.argv[2]).read_text(), EvalOptions(device="cpu", timeout=600))
"""
HANG = "import torch\nimport triton\n\nwhile True:\n    pass\n"


def test_an_unconfined_judge_and_its_worker_die_with_the_search(tmp_path: Path) -> None:
    """As the command line judges (no confinement): a SIGKILLed search leaves no judge behind."""
    candidate = tmp_path / "hang.py"
    candidate.write_text(HANG)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    search = subprocess.Popen(
        [sys.executable, "-c", EVALUATE, str(SOFTMAX), str(candidate)], env=env
    )
    tree: set[int] = set()
    try:

        def worker_started() -> bool:
            tree.update(descendants(search.pid))
            return any("kevolve.harness.judge.worker" in cmdline(pid) for pid in tree)

        assert eventually(worker_started, 120), [cmdline(p) for p in tree]
    finally:
        search.send_signal(signal.SIGKILL)
        search.wait()
    assert eventually(lambda: not [p for p in tree if alive(p)], 30)
