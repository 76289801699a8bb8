"""The local runner: a job in a child process as the job user, its errors, its cancellation, and
its death with the bot's worker."""

from __future__ import annotations

import json
import os
import pwd
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from kevolve.harness.sandbox.spawn import PASSTHROUGH
from kevolve.runners.intake import read_result
from kevolve.runners.job import JobSpec
from kevolve.runners.local import JobAccount, JobUserError, LocalRunner, job_account
from kevolve.runners.runner import RunnerError

from tests.bot.processes import alive, cmdline, descendants, eventually
from tests.jobuser import ensure_job_user, reachable_dir

ROOT = Path(__file__).resolve().parents[2]
JOB = 9137  # unique among the suite's jobs: its processes are found by this number
RESULT = '{"problem": "softmax", "device": "cpu", "timed": false, "evaluated": 0}'  # the least
KEPT = read_result(json.loads(RESULT), JOB)  # what the runner returns for it


@pytest.fixture(scope="module")
def account() -> JobAccount:
    entry = pwd.getpwnam(ensure_job_user())
    return JobAccount(entry.pw_name, entry.pw_uid, entry.pw_gid)


@pytest.fixture
def work() -> Iterator[Path]:
    """The bot's workdir, somewhere the job user can reach (pytest's own are 0700)."""
    with reachable_dir("kevolve-runner-") as path:
        yield path / "work"


def spec(work: Path, op: str = "softmax", budget: int = 2) -> JobSpec:
    return JobSpec(
        job_id=JOB,
        checkout=str(ROOT / "examples" / "demo"),
        op=op,
        hardware="cpu",
        budget=budget,
        state=str(work / "jobs" / f"job-{JOB}" / "state" / f"{op}.sqlite"),
        cache_dir=str(work / "cache"),
        device="cpu",
        repo="acme/kernels",
    )


def runner(account: JobAccount, work: Path, **kwargs: float | str) -> LocalRunner:
    return LocalRunner(account, workdir=work, **kwargs)  # type: ignore[arg-type]


def test_a_bad_job_fails_with_the_spec_error(account: JobAccount, work: Path) -> None:
    with pytest.raises(RunnerError) as info:
        runner(account, work, poll_s=0.05).run(spec(work, op="sofmax"), lambda: False)
    message = str(info.value)
    assert message.startswith(f"job {JOB} failed (exit 2): kevolve job: error: ")
    assert "no op named 'sofmax'" in message and "did you mean 'softmax'?" in message


def test_the_job_runs_as_the_job_user_with_allow_listed_variables_alone(
    account: JobAccount, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bot's secrets stay behind; the job gets its own HOME, and the LLM key it uses as
    the first line of its stdin, never in its environment."""
    for name, value in {
        "KEVOLVE_WEBHOOK_SECRET": "hook-s3cret",
        "KEVOLVE_DATABASE_URL": "postgresql://kevolve:s3cret@db/kevolve",
        "GITHUB_TOKEN": "ghs_s3cret",
        "KEVOLVE_LLM_API_KEY": "sk-for-the-job",
    }.items():
        monkeypatch.setenv(name, value)
    seen = work.parent / "seen"
    seen.mkdir(mode=0o777)
    seen.chmod(0o777)
    fake = work.parent / "python"
    fake.write_text(
        f"#!/bin/sh\nid -u > {seen}/uid\ntr '\\0' '\\n' < /proc/$$/environ > {seen}/env\n"
        f"head -n 1 > {seen}/stdin\n"
        f"echo '{RESULT}' > \"$4\"\n"
    )
    fake.chmod(0o755)
    keyed = runner(account, work, poll_s=0.05, python=str(fake), llm_key="sk-for-the-job")
    assert keyed.run(spec(work), lambda: False) == KEPT
    assert int((seen / "uid").read_text()) == account.uid != os.geteuid()
    env = dict(line.split("=", 1) for line in (seen / "env").read_text().splitlines())
    assert set(env) <= {*PASSTHROUGH, "PYTHONPATH", "HOME"}, env
    assert "sk-for-the-job" not in (seen / "env").read_text()
    assert (seen / "stdin").read_text() == "sk-for-the-job\n"
    assert Path(env["HOME"]).name.startswith(f"kevolve-job-{JOB}-")
    assert "s3cret" not in (seen / "env").read_text()


def test_the_job_directory_is_the_job_users_alone_while_it_runs(
    account: JobAccount, work: Path
) -> None:
    """Handed over for the run (0700, the job user's), the bot's again afterwards."""
    job_dir = work / "jobs" / f"job-{JOB}"
    (job_dir / "repo").mkdir(parents=True)
    seen = work.parent / "seen"
    seen.mkdir(mode=0o777)
    seen.chmod(0o777)
    fake = work.parent / "python"
    fake.write_text(
        f"#!/bin/sh\nstat -c '%u %a' {job_dir} > {seen}/during\n"
        f"ls {work} > {seen}/listing 2>&1\necho '{RESULT}' > \"$4\"\n"
    )
    fake.chmod(0o755)
    job = replace(spec(work), checkout=str(job_dir / "repo"))
    assert runner(account, work, poll_s=0.05, python=str(fake)).run(job, lambda: False) == KEPT
    assert (seen / "during").read_text().split() == [str(account.uid), "700"]
    assert "Permission denied" in (seen / "listing").read_text()  # the workdir is 0711
    after = job_dir.stat()
    assert (after.st_uid, oct(after.st_mode & 0o777)) == (os.geteuid(), "0o700")


def test_the_repos_lessons_folder_is_the_job_users_to_write(
    account: JobAccount, work: Path
) -> None:
    """A search adds what it learned to its repo's lessons file: the job user writes there."""
    lessons = work / "jobs" / "lessons" / "acme" / "kernels" / "lessons.sqlite"
    fake = work.parent / "python"
    fake.write_text(f"#!/bin/sh\necho learned > {lessons}\necho '{RESULT}' > \"$4\"\n")
    fake.chmod(0o755)
    job = replace(spec(work), lessons=str(lessons))
    assert runner(account, work, poll_s=0.05, python=str(fake)).run(job, lambda: False) == KEPT
    assert lessons.read_text() == "learned\n"
    assert lessons.stat().st_uid == account.uid


def test_the_child_keeps_the_callers_python_path(
    account: JobAccount, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GPU host's extra packages (e.g. installed with --target) stay importable in the job;
    kevolve itself comes from the interpreter's installation, not from a path of ours."""
    seen = work.parent / "pythonpath"
    fake = work.parent / "python"
    fake.write_text(f'#!/bin/sh\necho "$PYTHONPATH" > {seen}\necho \'{RESULT}\' > "$4"\n')
    fake.chmod(0o755)
    work.parent.chmod(0o777)  # the job user writes `seen` there
    monkeypatch.setenv("PYTHONPATH", "/opt/site-extra")
    job = runner(account, work, poll_s=0.05, python=str(fake))
    assert job.run(spec(work), lambda: False) == KEPT
    assert seen.read_text().strip() == "/opt/site-extra"


@pytest.mark.parametrize(
    ("written", "why"),
    [
        (RESULT.replace("false", '"no"'), "result was refused: timed: expected true or false"),
        (RESULT.replace("}", ', "job": {"id": 12}}'), "result was refused: the result is job 12's"),
        ("{not json", "wrote a result that is not JSON: "),
    ],
    ids=["misfit", "another-jobs", "not-json"],
)
def test_a_result_that_does_not_fit_fails_the_job_with_the_field(
    account: JobAccount, work: Path, written: str, why: str
) -> None:
    """The runner reads the child's result at its boundary: the bot gets a checked one or the
    reason there is none."""
    fake = work.parent / "python"
    fake.write_text(f"#!/bin/sh\necho '{written}' > \"$4\"\n")
    fake.chmod(0o755)
    with pytest.raises(RunnerError, match=f"^job {JOB}('s)? {re.escape(why)}"):
        runner(account, work, poll_s=0.05, python=str(fake)).run(spec(work), lambda: False)


@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_a_stopped_job_leaves_no_process_behind(account: JobAccount, work: Path, how: str) -> None:
    """Cancelled once a judge is running (not after a guessed while), or past its time limit:
    nothing of the job is left afterwards, its judges (each in a session of its own) and the
    candidates' workers included."""
    tree: set[int] = set()

    def cancelled() -> bool:
        found = _job_processes()
        tree.update(found, *(descendants(pid) for pid in found))
        judging = any("kevolve.harness.judge" in cmdline(pid) for pid in tree)
        return how == "cancel" and judging

    job = runner(account, work, timeout_s=2.0 if how == "timeout" else 600, poll_s=0.05)
    expected = "was cancelled" if how == "cancel" else "ran past 2 s"
    with pytest.raises(RunnerError, match=f"job {JOB} {expected}"):
        job.run(spec(work, budget=40), cancelled)
    assert tree, "the job's process was never seen"
    assert eventually(lambda: not _alive_of(tree), 10), _alive_of(tree)


WORKER = """
import pwd, sys
from pathlib import Path
from kevolve.runners.job import JobSpec
from kevolve.runners.local import JobAccount, LocalRunner
entry = pwd.getpwnam(sys.argv[1])
spec = JobSpec.from_json(Path(sys.argv[2]).read_text())
LocalRunner(JobAccount(entry.pw_name, entry.pw_uid, entry.pw_gid), Path(sys.argv[3]),
            bwrap=sys.argv[4] or None).run(spec, lambda: False)
"""


@pytest.mark.parametrize("bwrap", ["/usr/bin/bwrap", ""], ids=["bubblewrap", "jail"])
def test_a_job_and_its_judges_die_with_a_killed_worker(
    account: JobAccount, work: Path, bwrap: str
) -> None:
    """SIGKILL to the bot's worker takes the job, its judges and the candidates' workers along,
    so a restarted worker never runs the job a second time beside the first."""
    job = work.parent / "job.json"
    job.write_text(spec(work, budget=200).to_json())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    bot = subprocess.Popen(
        [sys.executable, "-c", WORKER, account.name, str(job), str(work), bwrap], env=env
    )
    tree: set[int] = set()
    try:

        def candidate_running() -> bool:
            tree.update(descendants(bot.pid))
            return any("kevolve.harness.judge.worker" in cmdline(pid) for pid in tree)

        assert eventually(candidate_running, 120), [cmdline(p) for p in tree]
        assert any("kevolve.harness.judge " in cmdline(pid) for pid in tree)
    finally:
        bot.send_signal(signal.SIGKILL)
        bot.wait()
    assert eventually(lambda: not _alive_of(tree), 30), _alive_of(tree)


def test_a_missing_job_user_is_refused_with_the_fix() -> None:
    with pytest.raises(JobUserError) as info:
        job_account("kevolve-no-such-user", as_bot_user=False)
    message = str(info.value)
    assert message.startswith("the job user 'kevolve-no-such-user' (KEVOLVE_JOB_USER) does not")
    assert "useradd --system --no-create-home --shell /usr/sbin/nologin" in message


def test_the_bots_own_user_is_refused_unless_the_operator_opts_in(
    capsys: pytest.CaptureFixture[str],
) -> None:
    me = pwd.getpwuid(os.geteuid()).pw_name
    with pytest.raises(JobUserError, match=f"the job user '{me}' .* is the bot's own user"):
        job_account(me, as_bot_user=False)
    assert job_account(me, as_bot_user=True) is None
    assert f"WARNING: jobs run as the bot's own user ({me})" in capsys.readouterr().err


def test_a_workdir_the_job_user_cannot_reach_is_named(account: JobAccount, tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    with pytest.raises(RunnerError) as info:
        runner(account, tmp_path / "work").run(spec(tmp_path / "work"), lambda: False)
    assert f"the job user {account.name} cannot reach " in str(info.value)
    blocked = re.search(
        r"cannot reach \S+: (\S+) is mode 0700, owned by uid 0\. Fix: ", str(info.value)
    )
    assert blocked is not None and tmp_path.is_relative_to(blocked.group(1)), info.value


def _alive_of(pids: set[int]) -> list[tuple[int, str]]:
    """Those of `pids` still running, with their command lines."""
    return [(pid, cmdline(pid)) for pid in pids if alive(pid)]


def _job_processes() -> list[int]:
    """The live processes of this test's job: their command line names the job's HOME."""
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and alive(int(entry.name))
        and f"kevolve-job-{JOB}-" in cmdline(int(entry.name))
    ]  # fmt: skip
