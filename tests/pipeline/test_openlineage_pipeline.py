"""A run with Spot and GPU-capacity fallbacks reaches the twin's OpenLineage receiver complete and valid.

The twin points the lineage function at its local receiver (standing in for
Marquez), so the events arrive as they would in the cloud: sent by the function
after each graph write, over HTTP.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pipeline_helpers import until
from threadline_common.lineage import run_report
from threadline_common.lineage.openlineage import attempt_uuid, run_uuid

REPO = Path(__file__).resolve().parents[2]
SAMPLE = (REPO / "src" / "threadline" / "data" / "sample-positions.csv").read_bytes()

pytestmark = pytest.mark.pipeline


def _spec_checker() -> ModuleType:
    """tests/lineage/openlineage_spec.py (the pinned spec's checker), loaded by path."""
    spec = importlib.util.spec_from_file_location("openlineage_spec_checker", REPO / "tests" / "lineage" /
                                                  "openlineage_spec.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _of_run(events: list[dict[str, Any]], run_id: str) -> list[dict[str, Any]]:
    """The run's own events and those of its child runs (attempts)."""
    return [e for e in events if e["run"]["runId"] == run_id
            or e["run"].get("facets", {}).get("parent", {}).get("run", {}).get("runId") == run_id]


def test_a_run_with_fallbacks_arrives_at_the_receiver_complete(run_pipeline, twin, graph) -> None:
    result = run_pipeline("openlineage-fallback.csv", SAMPLE,
                          faults=("preprocess@SpotJobQueue:spot", "analysis@GpuJobQueue:capacity"))
    assert result.status == "SUCCEEDED", result.cause
    pipeline = twin.config.stack_name
    run_id = run_uuid(pipeline, result.run_id)
    received = until(lambda: [e for e in _of_run(twin.openlineage.events(), run_id)
                              if e["run"]["runId"] == run_id and e["eventType"] == "COMPLETE"]
                     and _of_run(twin.openlineage.events(), run_id), 60, "the run's COMPLETE at the receiver")
    assert twin.event_sources.wait_idle(60)
    received = _of_run(twin.openlineage.events(), run_id)

    checker = _spec_checker()
    assert [(e["eventType"], checker.problems(e)) for e in received if checker.problems(e)] == []

    # Redelivery may repeat an event; what counts is that each run has its START and one end.
    kinds: dict[str, set[str]] = {}
    for event in received:
        kinds.setdefault(event["run"]["runId"], set()).add(event["eventType"])
    report = run_report(graph, result.run_id)
    assert report is not None
    expected = {run_id: {"START", "COMPLETE"}}
    expected.update({attempt_uuid(pipeline, result.run_id, a.attempt_id):
                     {"START", "COMPLETE" if a.status == "SUCCEEDED" else "FAIL"} for a in report.attempts})
    assert kinds == expected

    ends = {e["run"]["runId"]: e for e in received if e["eventType"] in ("COMPLETE", "FAIL")}
    by_capacity = {a.capacity: a for a in report.attempts}
    for fallback, primary in (("ON_DEMAND", "SPOT"), ("GPU_FALLBACK", "GPU")):
        end = ends[attempt_uuid(pipeline, result.run_id, by_capacity[fallback].attempt_id)]
        assert end["eventType"] == "COMPLETE"
        link = end["run"]["facets"]["threadline_attemptLinks"]["fallbackOf"]
        assert ends[link["runId"]]["eventType"] == "FAIL"
        assert ends[link["runId"]]["run"]["facets"]["threadline_batchJob"]["capacity"] == primary
    spot_failures = [e for e in ends.values() if e["eventType"] == "FAIL"
                     and e["run"]["facets"]["threadline_batchJob"]["capacity"] == "SPOT"]
    assert spot_failures and all(e["run"]["facets"]["errorMessage"]["message"].startswith("Host EC2")
                                 for e in spot_failures)

    # The facts the function read from S3 and the validation report: rows, sizes, the schema's fields.
    # (the run's START went out before the run wrote anything; its COMPLETE has what the run found)
    (source,) = ends[run_id]["inputs"]
    assert source["name"] == "incoming/openlineage-fallback.csv" and source["namespace"].startswith("s3://")
    assert source["inputFacets"]["inputStatistics"]["rowCount"] > 0
    assert source["facets"]["schema"]["fields"][0]["name"] == "position_id"
    clean = [d for e in received for d in e["outputs"] if d["name"].endswith("/clean.parquet")]
    assert clean and clean[0]["outputFacets"]["outputStatistics"]["rowCount"] > 0
    print(f"{len(received)} events for {len(expected)} runs; {len(report.attempts)} attempts")

