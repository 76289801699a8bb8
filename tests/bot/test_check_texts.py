"""Check-run texts of queued, running, failed, stopped, finished, refused and broken-config jobs,
pinned: they are rendered from `templates/github/` and read exactly as before they moved there."""

from __future__ import annotations

from pathlib import Path

from kevolve.bot.joboutcome import ProposalRecord, ProposalStatus
from kevolve.bot.jobrecord import JobStatus
from kevolve.bot.messages import Messages
from kevolve.harness.spec.load import SpecError
from kevolve.runners.intake import read_result

from tests.bot.fixtures import DEMO, demo_result

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = Messages(ROOT / "templates" / "github")
SHA = "c" * 40
UNTIMED = {"problem": "softmax", "device": "cpu", "timed": False, "evaluated": 0}


def test_a_queued_job_names_its_op_hardware_and_commit() -> None:
    title, summary = MESSAGES.job_queued(7, "softmax", "h100", SHA)
    assert title == "Job #7 queued: softmax on h100"
    assert summary == f"kevolve job #7 will search for a faster `softmax` on `h100` at `{SHA}`."


def test_a_job_queued_by_the_fleet_says_why() -> None:
    _title, summary = MESSAGES.job_queued(7, "softmax", "h100", SHA, reason="a new runner")
    assert summary == (
        f"kevolve job #7 will search for a faster `softmax` on `h100` at `{SHA}`."
        " It was queued because a new runner."
    )


def test_a_running_job_counts_its_evaluations() -> None:
    title, summary = MESSAGES.job_running(7, "softmax", "h100", SHA, 3, 20)
    assert title == "Job #7 running: softmax on h100"
    assert summary == (
        f"kevolve is searching for a faster `softmax` on `h100` at `{SHA}`: "
        "3 of 20 candidates evaluated."
    )


def test_the_queue_full_title_counts_jobs_in_the_singular_and_plural() -> None:
    assert MESSAGES.queue_full_title(1) == "kevolve queue is full: 1 job not queued"
    assert MESSAGES.queue_full_title(3) == "kevolve queue is full: 3 jobs not queued"


def test_a_broken_config_names_file_field_problem_and_fix() -> None:
    error = SpecError(Path("kevolve.toml"), "budget", "is -1", "use a positive number")
    title, summary = MESSAGES.config_broken(error)
    assert title == "kevolve config is broken: no jobs were queued"
    assert summary == (
        "kevolve could not read its config, so nothing was queued.\n\n"
        "- **File:** `kevolve.toml`\n"
        "- **Field:** `budget`\n"
        "- **Problem:** is -1\n"
        "- **Fix:** use a positive number\n"
    )


def test_a_broken_config_lists_the_runner_labels_waiting_on_it() -> None:
    error = SpecError(Path("kevolve.toml"), None, "is not TOML", "fix the syntax")
    _title, summary = MESSAGES.config_broken(error, waiting=["h100", "a10g"])
    assert "- **Field:** `(whole file)`\n" in summary
    assert summary.endswith(
        "- **Fix:** fix the syntax\n\nNew runner labels waiting on it: `h100`, `a10g`.\n"
    )


def test_a_refused_result_names_its_op_and_the_field() -> None:
    title, summary = MESSAGES.check_summary({**UNTIMED, "evaluated": "10"})
    assert title == "softmax: result refused"
    assert summary == (
        "The result was refused: evaluated: expected a whole number from 0 to 1000000000, got '10'"
    )


def test_a_refused_result_shows_its_op_escaped_or_not_at_all_when_too_long() -> None:
    title, summary = MESSAGES.check_summary({**UNTIMED, "problem": "a[b](c)"})
    assert title == "a\\[b\\](c): result refused"
    assert summary == (
        "The result was refused: problem: 'a\\[b\\](c)' does not match \\[A-Za-z0-9_-\\]{1,100}"
    )
    title, _summary = MESSAGES.check_summary({**UNTIMED, "problem": "x" * 101})
    assert title == "result: result refused"


def test_a_failed_job_says_why() -> None:
    assert MESSAGES.job_failed("job 7 failed (exit 1): boom") == (
        "The job failed: job 7 failed (exit 1): boom"
    )


def test_a_job_broken_by_a_bug_names_the_exception() -> None:
    assert MESSAGES.job_failed("'hardware'", bug="KeyError") == (
        "kevolve failed: KeyError: 'hardware'"
    )


def test_a_stopped_job_says_what_stopped_it() -> None:
    assert MESSAGES.job_cancelled() == "Stopped by `/kevolve stop`."


def test_an_ended_jobs_check_title_names_its_op_hardware_and_status() -> None:
    assert MESSAGES.job_ended_title("softmax", "h100", JobStatus.DONE) == "softmax on h100: done"
    assert MESSAGES.job_ended_title("*", "a10g", JobStatus.CANCELLED) == "* on a10g: cancelled"
    assert MESSAGES.job_ended_title("rmsnorm", "h100", JobStatus.FAILED) == (
        "rmsnorm on h100: failed"
    )


def test_a_finished_job_shows_each_result_under_its_title_then_a_line_per_proposal() -> None:
    refused = {**UNTIMED, "evaluated": "10"}
    kernel = (DEMO / "demo_kernels" / "rmsnorm.py").read_text() + "# tuned\n"
    found = read_result(demo_result("rmsnorm", kernel, 7), 7)
    title, summary = MESSAGES.check_summary(found)
    # As before, a summary ending in a newline keeps it: one blank line more before the next.
    assert title.startswith("rmsnorm: ") and summary.endswith("\n")
    url = "https://github.com/octo/kernels/pull/12"
    proposals = [
        ProposalRecord("softmax", ProposalStatus.SKIPPED, "no correct candidate was found"),
        ProposalRecord("rmsnorm", ProposalStatus.OPENED, "pushed", 12, url, "k"),
    ]
    assert MESSAGES.job_done([refused, found], proposals) == (
        "### softmax: result refused\n\n"
        "The result was refused: evaluated: expected a whole number from 0 to 1000000000, got '10'"
        f"\n\n### {title}\n\n{summary}\n\n"
        "- `softmax`: skipped (no pull request): no correct candidate was found\n\n"
        f"- `rmsnorm`: opened ([#12]({url})): pushed"
    )


def test_a_finished_job_with_nothing_searched_has_an_empty_summary() -> None:
    assert MESSAGES.job_done([], []) == ""
