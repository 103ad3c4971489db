"""Batch job descriptions -> attempt records and graph writes, without a database."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from threadline_common.lineage import parse_lineage_event, queries
from threadline_common.lineage.batch import (
    attempt_records,
    derive_capacity,
    epoch_ms_to_iso,
    job_description,
    split_job_key,
)
from threadline_common.lineage.graph import plan_run_finished
from threadline_common.lineage.ids import attempt_node

QUERY_TEXTS = {name: text for name, text in vars(queries).items() if name.isupper() and isinstance(text, str)}


@pytest.mark.parametrize(
    ("queue", "fallback", "multinode", "capacity"),
    [
        ("arn:aws:batch:us-east-1:1:job-queue/SpotJobQueue-AbC", False, False, "SPOT"),
        ("arn:aws:batch:us-east-1:1:job-queue/OnDemandJobQueue-AbC", True, False, "ON_DEMAND"),
        ("arn:aws:batch:us-east-1:1:job-queue/GpuJobQueue-AbC", False, True, "GPU"),
        ("arn:aws:batch:us-east-1:1:job-queue/GpuFallbackJobQueue-AbC", True, True, "GPU_FALLBACK"),
        ("threadline-hpc", True, True, "GPU_FALLBACK"),
        ("threadline-batch", False, True, "GPU"),
        ("threadline-batch", False, False, "ON_DEMAND"),
        (None, False, False, "ON_DEMAND"),
    ],
)
def test_capacity_is_read_from_the_queue(queue: str | None, fallback: bool, multinode: bool, capacity: str) -> None:
    assert derive_capacity(queue, fallback=fallback, multinode=multinode) == capacity


def test_job_keys_name_the_step_and_the_fallback() -> None:
    assert split_job_key("preprocess") == ("preprocess", False)
    assert split_job_key("preprocess_on_demand") == ("preprocess", True)
    assert split_job_key("analysis_fallback") == ("analysis", True)
    assert split_job_key("_fallback") == ("_fallback", False)


def test_job_description_is_found_in_every_shape_the_state_machine_passes() -> None:
    job = {"JobId": "j1", "Status": "FAILED"}

    assert job_description(job) == job
    assert job_description({"Error": "States.TaskFailed", "Cause": "{}", "Job": job}) == job
    assert job_description({"Error": "States.TaskFailed", "Cause": json.dumps(job)}) == job
    assert job_description(json.dumps(job)) == job
    assert job_description({"jobs": [{"jobId": "j1"}]}) == {"jobId": "j1"}
    assert job_description({"Error": "States.Timeout", "Cause": "timed out"}) is None
    assert job_description(None) is None


def test_raw_describe_jobs_answer_in_camel_case_is_read() -> None:
    """moto / the CLI describe jobs in camelCase; the job-level exit code fills in for the last attempt."""
    job = {"jobId": "j1", "jobName": "pre", "jobQueue": "SpotJobQueue", "status": "SUCCEEDED",
           "attempts": [{"container": {"logStreamName": "s"}, "startedAt": 0, "stoppedAt": 1500}],
           "container": {"exitCode": 0, "image": "img"}, "parameters": {"input_uri": "s3://b/k.csv"}}

    [record] = attempt_records("preprocess", job, first_seq=1)

    assert (record.attempt_id, record.status, record.exit_code, record.capacity, record.image) == (
        "j1#1", "SUCCEEDED", 0, "SPOT", "img")
    assert (record.started_at, record.ended_at) == ("1970-01-01T00:00:00.000Z", "1970-01-01T00:00:01.500Z")
    assert json.loads(record.parameters_json) == {"input_uri": "s3://b/k.csv"}


def test_job_without_id_is_refused() -> None:
    with pytest.raises(ValueError, match="no JobId"):
        attempt_records("analysis", {"Status": "FAILED"}, first_seq=1)


def test_epoch_conversion() -> None:
    assert epoch_ms_to_iso(1_795_290_000_123) == "2026-11-21T19:40:00.123Z"
    assert epoch_ms_to_iso("2026-11-21T19:40:00Z") == "2026-11-21T19:40:00Z"
    assert epoch_ms_to_iso(None) is None


def test_writes_never_erase_a_known_number_and_never_send_an_empty_batch(sample_event: Any) -> None:
    """A number a row may not know (exit code, size, row count) is written through coalesce, so it keeps
    what an earlier write stored; numbers every row knows are never null."""
    event = sample_event("lineage_run_finished.json")
    event["failures"]["analysis"] = {"Job": {"JobId": "cancelled", "Status": "FAILED", "Attempts": []}}
    plan = plan_run_finished(parse_lineage_event(event), "threadline")

    assert plan.writes and all(write.rows for write in plan.writes)
    for write in plan.writes:
        for row in write.rows:
            assert all(value is not None for key, value in row.items() if key in ("seq", "attempt", "node_count"))
            assert all(isinstance(value, (str, int, type(None))) for value in row.values())  # no maps, no lists
        for field in ("exit_code", "size", "row_count"):
            assert write.query.count(f"row.{field}") == write.query.count(f"coalesce(row.{field}, ")
    attempt_rows = next(w.rows for w in plan.writes if w.query == queries.MERGE_STEP_ATTEMPTS)
    codes = [row["exit_code"] for row in attempt_rows]
    assert None in codes and any(code is not None for code in codes)


@pytest.mark.parametrize("name", sorted(QUERY_TEXTS))
def test_query_texts_keep_to_what_neptune_and_the_embedded_graph_share(name: str) -> None:
    text = QUERY_TEXTS[name]

    assert "+=" not in text
    assert not re.search(r"\btype\s*\(", text, re.IGNORECASE)
    assert not re.search(r"\blabels?\s*\(", text, re.IGNORECASE)
    for hops in re.findall(r"\*\s*(\d*)\s*\.\.\s*(\d*)", text):
        assert hops[1] and int(hops[1]) <= 30, f"{name} has an uncapped or too long variable-length path"
    assert not re.search(r"\*\s*\]", text), f"{name} has an unbounded variable-length path"
    if re.search(r"\b(MERGE|SET)\b", text):
        assert text.lstrip().startswith("UNWIND $rows AS row")
        assert not re.search(r"(?<!ON )CREATE", text), "writes MERGE, so a retried write adds nothing"
    for pattern in re.findall(r"MERGE \(\w+:\w+ (\{[^}]*\})\)", text):
        assert re.fullmatch(r"\{`~id`: row\.\w+\}", pattern), f"{name} MERGEs a node on {pattern}, not its `~id`"
    assert "DELETE" not in text.upper() and "REMOVE" not in text.upper()


def test_reused_steps_become_stand_ins_linked_to_the_attempt_they_reused(sample_event: Any) -> None:
    event = sample_event("lineage_run_finished.json")
    earlier = {"attempt_id": "pre-earlier#1", "run_id": "earlier-run", "cache_key": "k" * 32}
    event["jobs"] = {key: value for key, value in event["jobs"].items() if not key.startswith("preprocess")}
    event["failures"] = {}
    event["plan"] = {"resume": True, "start_at": "analysis", "reused": {"preprocess": earlier}}

    plan = plan_run_finished(parse_lineage_event(event), "threadline")

    stand_in, analysis = plan.attempts[0], plan.attempts[1]
    assert (stand_in.step, stand_in.status, stand_in.seq, analysis.seq) == ("preprocess", "REUSED", 1, 2)
    rows = {write.query: write.rows for write in plan.writes}
    assert rows[queries.LINK_REUSED] == [{"src": attempt_node(stand_in.attempt_id), "dst": "StepAttempt:pre-earlier#1"}]
    attempt_rows = {row["attempt_id"]: row for row in rows[queries.MERGE_STEP_ATTEMPTS]}
    assert attempt_rows[stand_in.attempt_id]["cache_key"] == "k" * 32
    assert attempt_rows[analysis.attempt_id]["cache_key"]  # keyed on the reused pre-processing's key
    assert {"src": attempt_node(stand_in.attempt_id), "dst": attempt_node(analysis.attempt_id)} in rows[
        queries.LINK_FOLLOWED_BY]


def test_combined_plans_write_each_query_text_once_in_dependency_order(sample_event: Any) -> None:
    from threadline_common.lineage.graph import WRITE_ORDER, combine, plan_run_started

    started = parse_lineage_event(sample_event("lineage_run_started.json"))
    finished = parse_lineage_event(sample_event("lineage_run_finished.json"))
    single = plan_run_finished(finished, "threadline")

    plan = combine([plan_run_finished(finished, "threadline"), plan_run_started(started, "threadline"), single])

    texts = [write.query for write in plan.writes]
    assert len(texts) == len(set(texts)) and texts == sorted(texts, key=WRITE_ORDER.index)
    merged = {write.query: write.rows for write in plan.writes}
    assert merged[queries.MERGE_STEP_ATTEMPTS] == next(w.rows for w in single.writes
                                                      if w.query == queries.MERGE_STEP_ATTEMPTS)  # duplicates folded
