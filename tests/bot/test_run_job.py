"""`kevolve run-job` as a runner calls it: a search here, the result file, and the POST back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from kevolve.bot.commands import run_job as command
from kevolve.bot.commands.cli import main
from kevolve.bot.commands.optimize import PAUSED
from kevolve.runners.job import API_KEY_VARS

from tests.ports import free_port
from tests.runners.test_post import Bot

ROOT = Path(__file__).resolve().parents[2]


def run_job(
    tmp_path: Path, *extra: str, token: str | None = "kj1.5.9.x"
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KEVOLVE_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("KEVOLVE_JOB_TOKEN", None)
    if token is not None:
        env["KEVOLVE_JOB_TOKEN"] = token
    argv = [
        sys.executable,
        "-m",
        "kevolve.bot.commands.cli",
        "run-job",
        "--job-id",
        "5",
        "--hardware",
        "cpu",
    ]
    argv += ["--checkout", str(ROOT / "examples" / "demo"), "--device", "cpu"]
    argv += ["--state", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "r.json"), *extra]
    return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def test_a_job_runs_writes_its_result_and_posts_it_with_its_token(tmp_path: Path) -> None:
    bot = Bot([202])
    threading.Thread(target=bot.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{bot.server_address[1]}"
        done = run_job(tmp_path, "--op", "softmax", "--budget", "1", "--bot-url", url)
    finally:
        bot.shutdown()
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["evaluated"] == 1 and result["job"] == {
        "id": 5,
        "hardware": "cpu",
        "kernel": "demo_kernels/softmax.py",
    }
    [(path, auth, posted)] = bot.received
    assert (path, auth) == ("/jobs/5/result", "Bearer kj1.5.9.x")
    assert posted == result
    assert f"posted to {url} (202)" in done.stdout


def test_posting_needs_a_token_and_a_bad_op_is_named(tmp_path: Path) -> None:
    no_token = run_job(tmp_path, "--op", "softmax", "--bot-url", "http://127.0.0.1:9", token=None)
    assert no_token.returncode == 2
    assert "needs the job's token in $KEVOLVE_JOB_TOKEN" in no_token.stderr
    bad = run_job(tmp_path, "--op", "sofmax")
    assert bad.returncode == 2 and "did you mean 'softmax'?" in bad.stderr


def test_an_unreachable_ray_cluster_is_named_with_the_fix(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    done = run_job(tmp_path, "--op", "softmax", "--executor", "ray", "--ray-address", address)
    assert done.returncode == 2
    assert f"kevolve: error: no Ray cluster answers at {address}" in done.stderr
    alone = run_job(tmp_path, "--op", "softmax", "--ray-address", address)
    assert alone.returncode == 2 and "--ray-address is for --executor ray" in alone.stderr


@pytest.mark.parametrize(
    ("ended", "code"),
    [
        ({"stop": "paused", "waiting": ["s-g001-s01"]}, PAUSED),
        ({"waiting": ["s-g001-s01", "s-g001-s02"]}, PAUSED),  # a result from before kinds
        ({"stop": "budget", "waiting": ["s-g001-s01"]}, 0),  # the kind decides, not the list
        ({"stop": "budget", "waiting": []}, 0),
        ({"waiting": []}, 0),
    ],
)
def test_a_search_that_stopped_for_replies_pauses_the_job_by_its_stop_kind(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    ended: dict[str, Any],
    code: int,
) -> None:
    for name in (*API_KEY_VARS, "KEVOLVE_JOB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KEVOLVE_CACHE_DIR", str(tmp_path / "cache"))
    result = {"problem": "softmax", "evaluated": 1, "stop_reason": "", **ended}
    monkeypatch.setattr(command, "run_job", lambda *_args, **_kwargs: result)
    out = tmp_path / "r.json"
    argv = ["run-job", "--job-id", "5", "--op", "softmax", "--hardware", "cpu"]
    assert main([*argv, "--state", str(tmp_path / "s.sqlite"), "--out", str(out)]) == code
    assert json.loads(out.read_text()) == result
    paused = capsys.readouterr().err
    if code == PAUSED:
        assert paused.startswith(f"kevolve: paused: waiting for {len(ended['waiting'])} repl")
    else:
        assert "paused" not in paused
