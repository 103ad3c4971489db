"""OpenLineage RunEvents built from the lineage graph: valid by the official schema, complete and stable.

Every event built here is checked against the pinned spec and the schemas of the
facets it carries (openlineage_spec.py); the checker itself is shown to refuse
broken events first, so a pass means something.
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openlineage_spec import problems, schemas
from threadline_common.lineage import parse_lineage_event, record_event, run_report
from threadline_common.lineage.dataset_schemas import KNOWN, fields_for
from threadline_common.lineage.facts import schema_hash
from threadline_common.lineage.graph import ObjectFacts
from threadline_common.lineage.openlineage import (
    ID_NAMESPACE,
    PRODUCER,
    SCHEMA_URL,
    attempt_uuid,
    dataset_name,
    run_events,
    run_uuid,
)
from threadline_common.lineage.openlineage_emit import events_for
from threadline_common.lineage.reader import RunReport

from preprocess.schema import POSITIONS_SCHEMA, load_schema
from threadline.twin.graph_store import GraphStore

PIPELINE = "threadline"
POSITIONS_HASH = schema_hash({"name": "positions", "version": 1})


def _facts(finished: dict[str, Any]) -> list[ObjectFacts]:
    """What S3 and the validation report would say: the input's and clean.parquet's rows and schema."""
    prefix = finished["jobs"]["preprocess_on_demand"]["Parameters"]["output_prefix"]
    return [
        ObjectFacts(uri=finished["source"]["uri"], row_count=100, schema="positions@1", schema_hash=POSITIONS_HASH),
        ObjectFacts(uri=prefix + "clean.parquet", etag="c1ea4", size=5120, row_count=97, schema="positions@1",
                    schema_hash=POSITIONS_HASH),
        ObjectFacts(uri=prefix + "validation.json", etag="7a11d", size=880),
    ]


@pytest.fixture
def sample(graph: GraphStore, sample_event: Any) -> tuple[RunReport, dict[str, Any]]:
    """The sample run in the graph: pre-processing lost to Spot three times, then On-Demand; success."""
    started, finished = sample_event("lineage_run_started.json"), sample_event("lineage_run_finished.json")
    record_event(graph, parse_lineage_event(started), PIPELINE)
    record_event(graph, parse_lineage_event(finished), PIPELINE, _facts(finished))
    report = run_report(graph, started["run_id"])
    assert report is not None
    return report, finished


def _attempt_events(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_run: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        if "parent" in event["run"].get("facets", {}):
            by_run.setdefault(event["run"]["runId"], []).append(event)
    return by_run


def test_the_checker_refuses_what_the_spec_refuses(sample) -> None:
    report, _ = sample
    good = run_events(report)[1]
    assert problems(good) == []
    broken = {
        "run id not a UUID": lambda e: e["run"].update(runId="sample-positions#1"),
        "no producer": lambda e: e.pop("producer"),
        "a status that is no event type": lambda e: e.update(eventType="SUCCEEDED"),
        "a time that is no date-time": lambda e: e.update(eventTime="yesterday"),
        "a facet without _schemaURL": lambda e: e["run"]["facets"]["parent"].pop("_schemaURL"),
        "a parent without its job": lambda e: e["run"]["facets"]["parent"].pop("job"),
        "a custom facet off its schema": lambda e: e["run"]["facets"]["threadline_batchJob"].update(capacity="CHEAP"),
        "a facet with no pinned schema": lambda e: e["run"]["facets"]["parent"].update(
            _schemaURL="https://example.com/Unknown.json#/$defs/X"),
    }
    for why, breaks in broken.items():
        event = copy.deepcopy(good)
        breaks(event)
        assert problems(event), f"the checker let through {why}"


def test_every_event_of_a_run_with_a_spot_fallback_validates(sample) -> None:
    report, _ = sample
    events = run_events(report)
    assert events
    for event in events:
        assert problems(event) == [], (event["eventType"], event["job"]["name"])
        assert (event["producer"], event["schemaURL"]) == (PRODUCER, SCHEMA_URL)


def test_the_run_and_each_attempt_start_then_end(sample) -> None:
    report, _ = sample
    events = run_events(report)
    run_id = run_uuid(PIPELINE, report.run.run_id)
    assert [e["eventType"] for e in events if e["run"]["runId"] == run_id] == ["START", "COMPLETE"]
    assert events[0]["run"]["runId"] == run_id and events[-1]["run"]["runId"] == run_id
    by_attempt = _attempt_events(events)
    assert len(by_attempt) == len(report.attempts) == 6  # 3 Spot losses, On-Demand, analysis, post-processing
    expected = {attempt_uuid(PIPELINE, report.run.run_id, a.attempt_id):
                ["START", "COMPLETE" if a.status == "SUCCEEDED" else "FAIL"] for a in report.attempts}
    assert {run: [e["eventType"] for e in evs] for run, evs in by_attempt.items()} == expected
    for evs in by_attempt.values():
        parent = evs[0]["run"]["facets"]["parent"]
        assert parent["run"] == {"runId": run_id}
        assert parent["job"] == {"namespace": PIPELINE, "name": f"{PIPELINE}.pipeline"}


def test_run_ids_are_derived_from_the_run_and_attempt_ids(sample) -> None:
    report, _ = sample
    assert run_events(report) == run_events(report)
    attempt = report.attempts[0]
    assert attempt_uuid(PIPELINE, report.run.run_id, attempt.attempt_id) == str(
        uuid.uuid5(ID_NAMESPACE, f"{PIPELINE}/{report.run.run_id}/{attempt.attempt_id}"))
    assert run_uuid(PIPELINE, report.run.run_id) != run_uuid("other-stack", report.run.run_id)


def test_the_spot_losses_fail_with_their_reason_and_the_fallback_links_back(sample) -> None:
    report, _ = sample
    events = run_events(report)
    pre = [a for a in report.attempts if a.step == "preprocess"]
    spot, on_demand = [a for a in pre if a.capacity == "SPOT"], [a for a in pre if a.capacity == "ON_DEMAND"]
    assert len(spot) == 3 and len(on_demand) == 1
    ends = {e["run"]["runId"]: e for e in events if e["eventType"] in ("COMPLETE", "FAIL")}
    last_spot = ends[attempt_uuid(PIPELINE, report.run.run_id, spot[-1].attempt_id)]
    assert last_spot["eventType"] == "FAIL"
    assert last_spot["run"]["facets"]["errorMessage"]["message"].startswith("Host EC2 (instance")
    batch = last_spot["run"]["facets"]["threadline_batchJob"]
    assert (batch["capacity"], batch["attempt"], batch["jobDefinitionRevision"]) == ("SPOT", 3, 1)
    assert batch["imageDigest"].startswith("sha256:")
    assert last_spot["run"]["facets"]["threadline_attemptLinks"]["retryOf"]["attemptId"] == spot[1].attempt_id
    fallback = ends[attempt_uuid(PIPELINE, report.run.run_id, on_demand[0].attempt_id)]
    assert fallback["eventType"] == "COMPLETE"
    assert fallback["run"]["facets"]["threadline_attemptLinks"]["fallbackOf"] == {
        "runId": attempt_uuid(PIPELINE, report.run.run_id, spot[-1].attempt_id), "attemptId": spot[-1].attempt_id}
    assert fallback["run"]["facets"]["threadline_cache"]["cacheKey"] == on_demand[0].cache_key


def test_datasets_are_named_by_bucket_and_key_with_versions_sizes_rows_and_schema_in_facets(sample) -> None:
    report, finished = sample
    events = run_events(report)
    source = finished["source"]
    (run_start,) = [e for e in events if e["eventType"] == "START" and "parent" not in e["run"].get("facets", {})]
    (csv,) = run_start["inputs"]
    assert (csv["namespace"], csv["name"]) == (f"s3://{source['bucket']}", source["key"])
    assert csv["facets"]["version"]["datasetVersion"] == source["version_id"]
    assert csv["inputFacets"]["inputStatistics"] == {**csv["inputFacets"]["inputStatistics"],
                                                     "rowCount": 100, "size": source["size"]}
    columns = [c.name for c in load_schema(POSITIONS_SCHEMA).columns]
    assert [f["name"] for f in csv["facets"]["schema"]["fields"]] == columns
    every_dataset = [d for e in events for d in (*e["inputs"], *e["outputs"])]
    assert not [d for d in every_dataset if "versionId" in d["name"] or d["name"].endswith("/")]
    prefix = finished["jobs"]["preprocess_on_demand"]["Parameters"]["output_prefix"]
    clean = next(d for e in events for d in e["outputs"] if d["name"].endswith("clean.parquet"))
    assert (clean["namespace"], clean["name"]) == dataset_name(prefix + "clean.parquet")
    assert clean["outputFacets"]["outputStatistics"]["rowCount"] == 97
    assert clean["outputFacets"]["outputStatistics"]["size"] == 5120
    assert clean["facets"]["version"]["datasetVersion"] == "c1ea4"


def test_a_failed_run_fails_with_its_error_and_the_failed_attempts_exit_code(graph, sample_event) -> None:
    started, finished = sample_event("lineage_run_started.json"), sample_event("lineage_run_finished.json")
    run_id = "sample-positions-failed0000000000"
    failed = json.loads(json.dumps(finished).replace(started["run_id"], run_id))
    analysis = copy.deepcopy(failed["jobs"]["analysis"])
    analysis.update(JobId="an-failed", Status="FAILED", StatusReason="Essential container in task exited")
    analysis["Attempts"][0]["Container"]["ExitCode"] = 3
    failed["jobs"] = {"preprocess_on_demand": failed["jobs"]["preprocess_on_demand"]}
    failed["failures"] = {"analysis": {"Error": "States.TaskFailed", "Cause": json.dumps(analysis), "Job": analysis}}
    failed.update(status="FAILED", error={"Error": "AnalysisFailed", "Cause": "the analysis failed"})
    record_event(graph, parse_lineage_event({**started, "run_id": run_id}), PIPELINE)
    record_event(graph, parse_lineage_event(failed), PIPELINE)
    report = run_report(graph, run_id)
    assert report is not None
    events = run_events(report)
    assert all(problems(e) == [] for e in events)
    run_end = events[-1]
    assert run_end["eventType"] == "FAIL"
    assert run_end["run"]["facets"]["errorMessage"]["message"] == "AnalysisFailed"
    (analysis_end,) = [e for e in events if e["job"]["name"] == f"{PIPELINE}.analysis" and e["eventType"] == "FAIL"]
    assert analysis_end["run"]["facets"]["threadline_batchJob"]["exitCode"] == 3
    assert analysis_end["run"]["facets"]["threadline_batchJob"]["nodeCount"] == 2


def test_a_job_that_ends_before_its_run_waits_for_the_runs_end(graph, sample_event) -> None:
    """Attempts go out with the run's end (with their cache keys and facts), or after it."""
    started, job_event = sample_event("lineage_run_started.json"), sample_event("batch_job_state_change.json")
    job = parse_lineage_event(job_event)
    run_start = parse_lineage_event({**started, "run_id": job.run_id})
    record_event(graph, run_start, PIPELINE)
    record_event(graph, job, PIPELINE)
    assert [e["eventType"] for e in events_for(graph, [run_start, job], PIPELINE)] == ["START"]
    finished = parse_lineage_event({"event": "run_finished", "run_id": job.run_id, "status": "ABORTED",
                                    "at": "2026-11-21T20:00:00.000Z"})
    record_event(graph, finished, PIPELINE)
    late = events_for(graph, [job], PIPELINE)  # the job's event delivered again after the run ended
    assert late and {e["job"]["name"] for e in late} == {f"{PIPELINE}.{job.step}"}
    at_end = events_for(graph, [finished], PIPELINE)
    assert at_end[-1]["eventType"] == "ABORT"
    assert all(problems(e) == [] for e in [*late, *at_end])


def test_a_reused_step_completes_and_links_to_the_attempt_it_took(graph, sample) -> None:
    earlier, finished = sample
    reused_attempt = next(a for a in earlier.attempts if a.step == "preprocess" and a.status == "SUCCEEDED")
    rerun_id = f"{earlier.run.run_id}-r1"
    rerun = json.loads(json.dumps(finished).replace(earlier.run.run_id, rerun_id))
    del rerun["jobs"]["preprocess_on_demand"]
    rerun["failures"] = {}
    rerun["plan"] = {"reused": {"preprocess": {"attempt_id": reused_attempt.attempt_id,
                                               "run_id": earlier.run.run_id, "cache_key": reused_attempt.cache_key}}}
    record_event(graph, parse_lineage_event(rerun), PIPELINE)
    report = run_report(graph, rerun_id)
    assert report is not None
    events = run_events(report)
    assert all(problems(e) == [] for e in events)
    (stand_in,) = [a for a in report.attempts if a.status == "REUSED"]
    mine = [e for e in events if e["run"]["runId"] == attempt_uuid(PIPELINE, rerun_id, stand_in.attempt_id)]
    assert [e["eventType"] for e in mine] == ["START", "COMPLETE"]
    assert mine[-1]["run"]["facets"]["threadline_attemptLinks"]["reusedFrom"] == {
        "runId": attempt_uuid(PIPELINE, earlier.run.run_id, reused_attempt.attempt_id),
        "attemptId": reused_attempt.attempt_id, "threadlineRunId": earlier.run.run_id}
    assert "threadline_batchJob" not in mine[-1]["run"]["facets"]  # it ran no Batch job
    assert mine[-1]["inputs"] == [] and mine[-1]["outputs"] == []


def test_the_pinned_and_custom_schemas_are_valid_json_schemas() -> None:
    for schema in schemas().values():
        Draft202012Validator.check_schema(schema)
    assert len(schemas()) == 1 + 7 + 5  # the spec, the facets threadline uses, its own five


def test_the_schema_fields_lineage_names_are_the_jobs_schema() -> None:
    schema = load_schema(POSITIONS_SCHEMA)
    assert KNOWN[(schema.name, schema.version)] == tuple((c.name, c.type) for c in schema.columns), (
        "jobs/preprocess/positions.schema.json changed: update threadline_common/lineage/dataset_schemas.py")
    assert fields_for(POSITIONS_HASH) == KNOWN[("positions", 1)]
