"""runners.intake field by field: every field of a posted result the bot reads is refused by its own
name when it does not fit, every field it does not read is dropped, what an omitted field
becomes, the caps, and what the bot computes from what it kept (the speedup, the gate)."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import pytest
from kevolve.harness.search.candidate import candidate_id
from kevolve.harness.search.status import StopKind
from kevolve.runners.fieldread import IntakeError
from kevolve.runners.intake import read_result

from tests.bot.fixtures import BEST_ID, SOURCE, timed_result

# What the bot does not read from a posted result: it recomputes the gate and the throughput,
# judges the winner again itself, and has no use for the rest.
DROPPED: tuple[str, ...] = (
    "best.evaluation.checks[*].first_indices",
    "best.evaluation.kernels",
    "best.evaluation.diagnostics",
    "best.evaluation.notes",
    "best.evaluation.hardware.*",
    "best.evaluation.phases.*",
    "best.evaluation.memory.*",
    "best.evaluation.schema",
    "hardware.device",
    "hardware.sm_count",
    "hardware.l2_bytes",
    "hardware.python",
    "throughput.*",
    "publish_gate.*",
    "waiting",
)
DROPPED += tuple(p.replace("best.evaluation.", "baseline.") for p in DROPPED if "evaluation" in p)
NOT_A_FIELD = {"bad": 1}  # an object: no reader of a single field (or list) takes one
NOT_AN_OBJECT = 7


def _posted() -> dict[str, Any]:
    """The fixture's timed result with every optional part filled in: its job, a baseline, a CPU
    name, the LLM's models and transport, dimension names and a flag."""
    posted = timed_result()
    posted["job"] = {"id": 7, "hardware": "h100"}
    posted["baseline"] = copy.deepcopy(posted["best"]["evaluation"])
    posted["hardware"]["cpu"] = "AMD EPYC 7R13"
    posted["llm"].update(models=["m-1"], transport="http", repairs_judged=2, repairs_correct=1)
    posted["best"]["evaluation"]["dims"] = ["rows", "cols"]
    posted["best"]["evaluation"]["flags"] = ["a flag"]
    return posted


def _leaves(value: object, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """The path of every leaf (a value that is no object and no non-empty list)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list) and value:
        for i, item in enumerate(value):
            yield from _leaves(item, (*path, i))
    else:
        yield path


def _nodes(value: object, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """The path of every object and non-empty list below the top."""
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        if isinstance(item, dict) or (isinstance(item, list) and item):
            yield (*path, key)
            yield from _nodes(item, (*path, key))


def _dropped(name: str) -> bool:
    """Whether the field `name` is one the bot does not read."""
    pattern = re.sub(r"\[\d+\]", "[*]", name)  # `x[*].y` stands for every item's `y`
    return any(
        pattern == p or (p.endswith(".*") and (pattern == p[:-2] or pattern.startswith(p[:-1])))
        for p in DROPPED
    )


def _with(posted: dict[str, Any], path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    """A copy of `posted` with `value` at `path`."""
    changed = copy.deepcopy(posted)
    parent: Any = changed
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return changed


def _name(path: tuple[str | int, ...]) -> str:
    """A path as a refusal names it: `best.evaluation.timings[0].speedup`."""
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else part)
    return name


# `schema` is refused in words of its own (test_a_schema_this_bot_does_not_read_is_refused) and
# a compile mode is checked against the modes torch has (test_a_compile_mode_must_be_one_torch_has).
LEAVES = [p for p in _leaves(_posted()) if p != ("schema",) and p[-1] != "mode"]
NODES = list(_nodes(_posted()))


@pytest.mark.parametrize("path", LEAVES + NODES, ids=_name)
def test_each_field_is_read_under_its_own_name_or_dropped(path: tuple[str | int, ...]) -> None:
    """Each field, object and list of a result, made something no reader of it takes, is refused
    by its own name; unless the bot does not read it."""
    posted, name = _posted(), _name(path)
    wrong = NOT_AN_OBJECT if isinstance(_at(posted, path), dict) else NOT_A_FIELD
    if _dropped(name):
        read_result(_with(posted, path, wrong))  # not read, so not refused
        return
    with pytest.raises(IntakeError) as info:
        read_result(_with(posted, path, wrong))
    assert str(info.value).startswith(f"{name}: "), str(info.value)


def _at(posted: dict[str, Any], path: tuple[str | int, ...]) -> Any:
    """The value at `path`."""
    value: Any = posted
    for part in path:
        value = value[part]
    return value


def test_what_the_bot_keeps_is_what_was_posted() -> None:
    """Every field the bot reads comes back from what it kept under the same name, unchanged."""
    posted = _posted()
    kept = read_result(posted).to_dict()
    for path in _leaves(posted):
        if not _dropped(_name(path)):
            assert _at(kept, path) == _at(posted, path), _name(path)


def test_the_result_and_its_parts_must_be_objects() -> None:
    for data, message in (
        ([], "the result: expected an object, got list"),
        ({**_posted(), "job": "7"}, "job: expected an object, got str"),
        ({**_posted(), "counts": []}, "counts: expected an object, got list"),
    ):
        with pytest.raises(IntakeError) as info:
            read_result(data)
        assert str(info.value) == message


def test_a_compile_mode_must_be_one_torch_has() -> None:
    posted = timed_result()
    posted["best"]["evaluation"]["timings"][0]["compiled"][1]["mode"] = "fastest"
    with pytest.raises(IntakeError) as info:
        read_result(posted)
    assert str(info.value) == (
        "best.evaluation.timings[0].compiled[1].mode: 'fastest' is not a torch.compile mode"
    )


def test_a_schema_this_bot_does_not_read_is_refused() -> None:
    for schema in (2, True, "1"):
        with pytest.raises(IntakeError) as info:
            read_result({**timed_result(), "schema": schema})
        assert str(info.value) == f"schema {schema!r} is not one this bot reads (1)"
    assert read_result({k: v for k, v in timed_result().items() if k != "schema"}).evaluated == 10


def test_a_stop_kind_must_be_one_the_search_has() -> None:
    for kind in StopKind:
        assert read_result({**timed_result(), "stop": kind.value}).stop is kind
    with pytest.raises(IntakeError) as info:
        read_result({**timed_result(), "stop": "waiting for 3 replies"})
    assert str(info.value) == (
        "stop: 'waiting for 3 replies' is none of "
        "budget, minutes, tokens, cost, patience, paused, other"
    )


@pytest.mark.parametrize(
    ("waiting", "kind"), [(["softmax-g001-s00"], StopKind.PAUSED), ([], StopKind.OTHER)]
)
def test_a_result_written_before_stop_kinds_is_paused_when_it_left_prompts_waiting(
    waiting: list[str], kind: StopKind
) -> None:
    posted = {k: v for k, v in timed_result().items() if k != "stop"}
    kept = read_result({**posted, "stop_reason": "waiting for 1 reply", "waiting": waiting})
    assert kept.stop is kind
    assert read_result(kept.to_dict()).stop is kind  # what the bot keeps says it as a kind


def test_an_omitted_field_is_its_default() -> None:
    minimal = {"problem": "softmax", "device": "cpu", "timed": False, "evaluated": 0}
    assert read_result(minimal).to_dict() == {
        "schema": 1,
        "problem": "softmax",
        "device": "cpu",
        "timed": False,
        "evaluated": 0,
        "counts": {},
        "best": None,
        "baseline": None,
        "history": [],
        "hardware": {
            "name": None,
            "capability": None,
            "memory_gib": None,
            "driver": None,
            "cuda": None,
            "torch": None,
            "triton": None,
            "cpu": None,
        },
        "llm": {
            "configured": False,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "requests": 0,
            "failures": 0,
            "cost_usd": 0.0,
            "models": [],
            "transport": "none",
            "repairs_judged": 0,
            "repairs_correct": 0,
        },
        "wall_s": 0.0,
        "gpu_s": 0.0,
        "stop_reason": "",
        "stop": "other",
        "notes": [],
    }


def test_an_omitted_field_of_the_best_is_its_default() -> None:
    evaluation = {"verdict": "correct", "problem": "softmax", "device": "cpu"}
    best = {"id": candidate_id(SOURCE), "proposer": "seed", "source": SOURCE}
    minimal = {"problem": "softmax", "device": "cpu", "timed": False, "evaluated": 1}
    kept = read_result({**minimal, "best": {**best, "evaluation": evaluation}})
    assert kept.best is not None
    assert (kept.best.generation, kept.best.parents, kept.best.score) == (0, (), None)
    ev = kept.best.evaluation
    defaults = (ev.reason, ev.timed, ev.candidate_hash, ev.checks, ev.timings, ev.flags, ev.dims)
    assert defaults == ("", False, "", [], [], [], [])


def _best_evaluation(posted: dict[str, Any]) -> dict[str, Any]:
    evaluation: dict[str, Any] = posted["best"]["evaluation"]
    return evaluation


@pytest.mark.parametrize(
    ("where", "field", "cap"),
    [("checks", "checks", 512), ("timings", "timings", 512), ("dims", "dims", 8)],
)
def test_an_evaluation_holds_at_most_its_caps(where: str, field: str, cap: int) -> None:
    posted = timed_result()
    items = _best_evaluation(posted)[field] or ["n"]
    _best_evaluation(posted)[field] = (items * cap)[:cap]
    read_result(posted)
    _best_evaluation(posted)[field] = (items * (cap + 1))[: cap + 1]
    with pytest.raises(IntakeError) as info:
        read_result(posted)
    assert str(info.value) == f"best.evaluation.{where}: {cap + 1} items, at most {cap}"


def test_a_case_has_at_most_four_compiled_timings() -> None:
    posted = timed_result()
    timing = _best_evaluation(posted)["timings"][0]
    timing["compiled"] = (timing["compiled"] * 2)[:4]
    read_result(posted)
    timing["compiled"] = timing["compiled"] + timing["compiled"][:1]
    with pytest.raises(IntakeError) as info:
        read_result(posted)
    assert str(info.value) == "best.evaluation.timings[0].compiled: 5 items, at most 4"


@pytest.mark.parametrize("field", ["mismatches", "elements"])
def test_a_checks_counts_reach_2_to_the_62(field: str) -> None:
    posted = timed_result()
    check = _best_evaluation(posted)["checks"][0]
    check[field] = 2**62
    best = read_result(posted).best
    assert best is not None and getattr(best.evaluation.checks[0], field) == 2**62
    check[field] = 2**62 + 1
    with pytest.raises(IntakeError, match=rf"checks\[0\]\.{field}: .* from 0 to {2**62}, got"):
        read_result(posted)


@pytest.mark.parametrize("field", ["bytes", "flops"])
def test_a_timings_bytes_and_flops_reach_2_to_the_62(field: str) -> None:
    posted = timed_result()
    timing = _best_evaluation(posted)["timings"][0]
    timing[field] = 2**62
    best = read_result(posted).best
    assert best is not None and getattr(best.evaluation.timings[0], field) == 2**62
    timing[field] = 2**62 + 1
    with pytest.raises(IntakeError, match=rf"timings\[0\]\.{field}: .* from 0 to {2**62}, got"):
        read_result(posted)


def test_a_result_names_its_job_and_a_post_to_another_job_is_refused() -> None:
    posted = {**timed_result(), "job": {"id": 7, "hardware": "h100"}}
    assert (read_result(posted).job_id, read_result(posted).hardware) == (7, "h100")
    assert read_result(posted, 7).job_id == 7
    with pytest.raises(IntakeError) as info:
        read_result(posted, 8)
    assert str(info.value) == "the result is job 7's, not job 8's"
    unnamed = read_result({**timed_result(), "job": {}}, 8)
    assert (unnamed.job_id, unnamed.hardware) == (8, None)
    assert read_result(timed_result()).to_dict().get("job") is None


def test_a_lineage_needs_a_best_to_start_at() -> None:
    posted = {**timed_result(), "best": None}
    with pytest.raises(IntakeError) as info:
        read_result(posted)
    assert str(info.value) == f"lineage[0].id: {BEST_ID} is not the best's (none)"


def test_a_rationale_is_cut_to_a_paragraph() -> None:
    posted = timed_result()
    posted["lineage"][0]["rationale"] = "word " * 200
    kept = read_result(posted)
    assert kept.rationale == ("word " * 200)[:600] and kept.lineage[0].rationale == kept.rationale
    old = read_result({**timed_result(), "lineage": [{"rationale": "word " * 200}]})
    assert old.rationale == ("word " * 200)[:600]


def test_the_best_is_named_by_the_hash_of_its_source() -> None:
    posted = timed_result()
    posted["best"]["id"] = "0" * 16
    with pytest.raises(IntakeError) as info:
        read_result(posted)
    assert str(info.value) == f"best.id: {'0' * 16} is not the hash of its source ({BEST_ID})"


def test_a_source_nested_too_deeply_to_hash_is_refused() -> None:
    posted = timed_result()
    posted["best"]["source"] = "x = " + "-" * 200_000 + "1\n"
    with pytest.raises(IntakeError) as info:
        read_result(posted)
    assert str(info.value) == "best.source: nested too deeply to read"


def test_counts_are_by_verdict() -> None:
    with pytest.raises(IntakeError) as info:
        read_result({**timed_result(), "counts": {"correct": 1, "great": 2}})
    assert str(info.value) == "counts: 'great' is not a verdict"
    kept = read_result({**timed_result(), "counts": {"correct": 3, "timeout": 1}})
    assert kept.counts == (("correct", 3), ("timeout", 1))


def test_the_speedup_is_the_geometric_mean_of_the_timed_cases() -> None:
    kept = read_result(timed_result())
    assert kept.speedup() == pytest.approx((1.42 * 1.21) ** 0.5, rel=1e-12)
    untimed = read_result({**timed_result(), "timed": False})
    assert untimed.speedup() is None
    posted = timed_result()
    for timing in _best_evaluation(posted)["timings"]:
        timing["speedup"] = None
    assert read_result(posted).speedup() is None
    assert read_result({**timed_result(), "best": None, "lineage": []}).speedup() is None


def test_the_gate_takes_the_results_word_on_the_seed_only_when_not_told() -> None:
    posted = timed_result()
    posted["best"]["proposer"] = "seed"
    posted["lineage"][0]["proposer"] = "seed"
    seed = read_result(posted)
    assert "the best candidate is the repo's current kernel" in seed.gate().reasons
    assert "the best candidate is the repo's current kernel" not in seed.gate(False).reasons
    told = read_result(timed_result()).gate(True)
    assert "the best candidate is the repo's current kernel" in told.reasons
    strict = read_result(timed_result()).gate(False, min_speedup=2.0)
    assert any(r.startswith("the gain is too small") for r in strict.reasons)


def test_a_record_with_only_its_required_fields_takes_the_defaults() -> None:
    posted = _posted()
    evaluation = posted["best"]["evaluation"]
    evaluation["checks"] = [{"shape": [4, 8], "dtype": "float16", "trials": 1, "passed": True}]
    evaluation["timings"] = [
        {
            "shape": [4, 8],
            "dtype": "float16",
            "candidate": evaluation["timings"][0]["candidate"],
            "compiled": [{"mode": "default"}],
        },
        {"shape": [4, 8], "dtype": "float16", "candidate": evaluation["timings"][0]["candidate"]},
    ]
    posted["hardware"] = {"ceilings": None}
    best = read_result(posted).best
    assert best is not None
    [check], [timing, bare] = best.evaluation.checks, best.evaluation.timings
    assert bare.compiled == []
    figures = (check.max_abs, check.max_rel, check.rel_norm, check.mismatches, check.elements)
    assert figures == (0.0, 0.0, 0.0, 0, 0) and (check.failure, check.tolerance) == (None, None)
    assert (timing.baseline, timing.speedup, timing.speedup_ci, timing.bytes) == (None,) * 3 + (0,)
    assert (timing.rechecked, timing.flops) == (False, None)
    [compiled] = timing.compiled
    assert (compiled.timing, compiled.compile_s, compiled.error, compiled.from_seed) == (
        None,
        None,
        None,
        False,
    )
    assert read_result(posted).to_dict()["hardware"] == dict.fromkeys(
        ("name", "capability", "memory_gib", "driver", "cuda", "torch", "triton", "cpu")
    )


def test_one_measured_ceiling_is_kept_without_the_other() -> None:
    posted = _posted()
    posted["hardware"]["ceilings"] = {"copy_gbps": 2950.4}
    kept = read_result(posted).to_dict()["hardware"]
    assert kept["ceilings"] == {"copy_gbps": 2950.4, "matmul_tflops": None}


def test_a_history_may_hold_many_points() -> None:
    history = [{"evaluated": i, "best_score": 1.0} for i in range(1, 1001)]
    assert len(read_result({**_posted(), "history": history}).history) == 1000


def test_a_history_point_names_its_candidate_verdict_and_score() -> None:
    [first, second, *_] = read_result(_posted()).history
    assert (first.evaluated, first.candidate, first.verdict, first.score, first.best_score) == (
        1,
        "0000000000000001",
        "correct",
        1.0,
        1.0,
    )
    assert (second.candidate, second.verdict, second.score, second.best_score) == (
        "0000000000000002",
        "compile_error",
        None,
        1.0,
    )


def test_a_point_kept_before_points_named_their_candidate_has_none() -> None:
    kept = read_result({**_posted(), "history": [{"evaluated": 3, "best_score": None}]})
    [point] = kept.history
    assert (point.evaluated, point.best_score) == (3, None)
    assert (point.candidate, point.verdict, point.score) == (None, None, None)
    assert kept.to_dict()["history"] == [
        {"evaluated": 3, "candidate": None, "verdict": None, "score": None, "best_score": None}
    ]
    assert read_result(kept.to_dict()) == kept


FINITE = "expected a finite number from 0 to 1e+15, got"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("verdict", "great", "history[1].verdict: 'great' is not a verdict"),
        ("verdict", 3, "history[1].verdict: 3 is not a verdict"),
        ("score", float("inf"), f"history[1].score: {FINITE} inf"),
        ("score", float("nan"), f"history[1].score: {FINITE} nan"),
        ("score", -1.0, f"history[1].score: {FINITE} -1.0"),
        ("candidate", "c01", "history[1].candidate: 'c01' does not match [0-9a-f]{16}"),
        (
            "candidate",
            "A" * 16,
            f"history[1].candidate: {'A' * 16!r} does not match [0-9a-f]{{16}}",
        ),
    ],
)
def test_a_history_point_that_does_not_fit_is_refused_by_its_field(
    field: str, value: object, message: str
) -> None:
    posted = _posted()
    posted["history"][1][field] = value
    with pytest.raises(IntakeError) as info:
        read_result(posted)
    assert str(info.value) == message


def test_what_the_bot_keeps_reads_back_as_itself() -> None:
    for posted in (_posted(), timed_result(), {**_posted(), "best": None, "lineage": []}):
        kept = read_result(posted)
        assert read_result(kept.to_dict()) == kept
        assert read_result(kept.to_dict()).to_dict() == kept.to_dict()
    history = read_result(_posted()).to_dict()["history"]
    assert history == _posted()["history"]


def test_an_unknown_verdict_is_quoted_in_the_refusal() -> None:
    posted = _posted()
    posted["best"]["evaluation"]["verdict"] = "great"
    with pytest.raises(IntakeError) as info:
        read_result(posted)
    assert str(info.value) == "best.evaluation.verdict: 'great' is not a verdict"


def test_a_lineage_must_start_at_the_best_it_names() -> None:
    posted = _posted()
    posted["lineage"][0]["id"] = "0" * 16
    with pytest.raises(IntakeError) as info:
        read_result(posted)
    assert str(info.value) == f"lineage[0].id: {'0' * 16} is not the best's ({BEST_ID})"


def test_a_best_without_a_rationale_has_none() -> None:
    posted = _posted()
    del posted["lineage"][0]["rationale"]
    kept = read_result(posted)
    assert kept.rationale == "" and kept.lineage[0].rationale is None


def test_a_kept_rationale_is_named_where_it_sits() -> None:
    with pytest.raises(IntakeError) as info:
        read_result({**_posted(), "lineage": [{"rationale": 5}]})
    assert str(info.value) == "lineage[0].rationale: expected text, got int"


def test_the_gate_of_a_result_without_a_best_and_of_a_best_that_is_no_seed() -> None:
    assert read_result({**_posted(), "best": None, "lineage": []}).gate().reasons == [
        "no correct candidate was found"
    ]
    reasons = read_result(_posted()).gate().reasons
    assert "the best candidate is the repo's current kernel" not in reasons
