"""No dashboard page shows a secret: a state file whose verdict, prompt and reply carry tokens and
keys (as a failing process or a careless model might echo them) is served by a real `kevolve ui`,
and every page masks them; and the masking itself, case by case."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from kevolve.bot.dashboard.redaction import Redactor
from kevolve.harness.evaluation import Evaluation, Verdict
from kevolve.harness.search.candidate import Candidate
from kevolve.harness.search.proposal import Exchange
from kevolve.harness.search.store import Store

ROOT = Path(__file__).resolve().parents[2]
SEED = (ROOT / "examples" / "demo" / "demo_kernels" / "softmax.py").read_text()
GITHUB_TOKEN = "ghs_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"
API_KEY = "sk-" + "proj-0123456789abcdefghijklmnop"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
URL = "https://x-access-token:" + GITHUB_TOKEN + "@github.com/acme/kernels.git"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"token {GITHUB_TOKEN} expired", "token *** expired"),
        (f"key={API_KEY}", "key=***"),
        (f"Authorization: Bearer {GITHUB_TOKEN}", "Authorization: Bearer ***"),
        (f"cannot clone {URL}: 403", "cannot clone https://***@github.com/acme/kernels.git: 403"),
        (f"leaked:\n{PEM}\nend", "leaked:\n***\nend"),
        ("AKIAABCDEFGHIJKLMNOP in a log", "*** in a log"),
        ("the best kernel tiles by 128", "the best kernel tiles by 128"),  # no secret: unchanged
    ],
)
def test_secret_shaped_text_is_masked(text: str, shown: str) -> None:
    assert Redactor()(text) == shown


def test_known_secret_values_are_masked_wherever_they_appear() -> None:
    mask = Redactor(["it's a secret to everybody", "short"])
    assert mask("webhook: it's a secret to everybody!") == "webhook: ***!"
    assert mask("a short word stays") == "a short word stays"  # too short to look for


def _state(path: Path) -> Candidate:
    """A search whose one failed candidate's verdict, prompt and reply hold secrets."""
    store = Store(path)
    store.bind({"problem": "softmax", "seed": 0, "hardware": "local:cpu"})
    seed = Candidate(SEED)
    child = Candidate(SEED + "# tuned\n", (seed.id,), "llm:fake-model", 0, 1)
    for c in (seed, child):
        store.save_candidate(c)
    store.save_evaluation(
        seed.id, "local:cpu", Evaluation(Verdict.CORRECT, "correct", "softmax", "cpu")
    )
    reason = f"runtime error: cannot clone {URL}"
    store.save_evaluation(
        child.id, "local:cpu", Evaluation(Verdict.RUNTIME_ERROR, reason, "softmax", "cpu")
    )
    messages = ({"role": "user", "content": f"use key {API_KEY} to fetch"},)
    reply = f"Here you go.\n{PEM}\n```python\n{child.source}```"
    exchange = Exchange("softmax-g001-s00", "fake-model", messages, reply, rationale=GITHUB_TOKEN)
    store.save_exchange(1, exchange, child.id)
    history = [
        {"evaluated": 1, "candidate": seed.id, "verdict": "correct", "score": 1.0},
        {"evaluated": 2, "candidate": child.id, "verdict": "runtime_error", "score": None},
    ]
    for entry in history:
        entry["best_score"] = 1.0
    state = {
        "generation": 1,
        "evaluated": 2,
        "elapsed_s": 30.0,
        "history": history,
        "best": seed.id,
        "database": {"islands": [[{"id": seed.id, "score": 1.0}]]},
        "counts": {"correct": 1, "runtime_error": 1},
        "tokens": 120,
        "cost_usd": 0.0,
    }
    store.save_checkpoint(1, state)
    store.close()
    return child


def test_no_page_of_kevolve_ui_shows_a_secret(tmp_path: Path) -> None:
    child = _state(tmp_path / "softmax.sqlite")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEVOLVE_")}
    env["PYTHONPATH"] = str(ROOT)
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "ui", str(tmp_path), "--port", "0"]
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        found = re.search(r"(http://\S+/dashboard/)", proc.stdout.readline() if ready else "")
        assert found, proc.stderr.read() if proc.poll() is not None else "no address"
        base = found[1]
        pages = [
            "", "searches", "search/softmax", f"search/softmax?node={child.id}",
            f"search/softmax/node/{child.id}", "search/softmax/live",
        ]  # fmt: skip
        texts = [httpx.get(base + page, timeout=30).text for page in pages]
    finally:
        proc.terminate()
        proc.wait(30)
    node = texts[4]
    assert "runtime_error" in node and "Here you go." in node  # the panel is there...
    assert "cannot clone https://***@github.com" in node  # ...its secrets masked
    for text in texts:
        for secret in (GITHUB_TOKEN, API_KEY, "PRIVATE KEY", "MIIEpAIBAAKCAQEA"):
            assert secret not in text
