"""The analysis as a multi-container, multi-node job through the whole pipeline.

Each analysis node runs a task of two containers: `analysis` (essential) and the
`progress` sidecar (not essential), which ships progress and checkpoints to S3.
Lineage keeps one record per container of each node of each attempt.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import run_together, until
from threadline_common.lineage.reader import Container, run_containers

from threadline.twin.runs import RunResult

pytestmark = pytest.mark.pipeline

SAMPLE = (Path(__file__).resolve().parents[2] / "src" / "threadline" / "data" / "sample-positions.csv").read_bytes()
NODES = 2  # the template's AnalysisNodes default
# The failure tests' runs: each input file and the faults scoped to it.
RUNS = {"multi-container-sidecar.csv": ("analysis/progress:exit=3",),
        "multi-container-main.csv": ("analysis/analysis:exit=5",)}


@pytest.fixture(scope="module")
def runs(twin: Any, visited: set[str]) -> dict[str, RunResult]:
    """The failure tests' runs, run at once: they share nothing but the twin."""
    results = run_together(twin, {name: (SAMPLE, faults) for name, faults in RUNS.items()})
    for result in results.values():
        visited.update(result.path)
    return results


def _containers(twin: Any, graph: Any, run_id: str) -> dict[tuple[int, str], Container]:
    assert twin.event_sources.wait_idle(60)
    found = until(lambda: run_containers(graph, run_id) or None, 60, "the analysis containers in the graph")
    return {(c.node_index, c.name): c for c in found}


def test_the_sidecar_ships_progress_and_lineage_records_every_container(twin, graph, sample_run) -> None:
    result = sample_run
    assert result.status == "SUCCEEDED", result.cause

    containers = _containers(twin, graph, result.run_id)
    assert set(containers) == {(node, name) for node in range(NODES) for name in ("analysis", "progress")}
    assert all(c.exit_code == 0 for c in containers.values())  # the sidecar flushes on SIGTERM and exits 0
    assert [containers[(0, "analysis")].essential, containers[(0, "progress")].essential] == [True, False]

    s3 = twin.client("s3")
    bucket = twin.physical_id("IntermediateBucket")
    for node in range(NODES):
        key = f"runs/{result.run_id}/analysis/progress/node-{node:04d}.json"
        progress = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        assert progress["blocks_done"] == progress["blocks_total"] > 0
        s3.head_object(Bucket=bucket, Key=f"runs/{result.run_id}/analysis/checkpoints/node-{node:04d}/latest.npz")


def test_a_failed_sidecar_does_not_fail_the_job(twin, graph, runs) -> None:
    result = runs["multi-container-sidecar.csv"]
    assert result.status == "SUCCEEDED", result.cause

    containers = _containers(twin, graph, result.run_id)
    assert {(node, c.exit_code) for (node, name), c in containers.items() if name == "progress"} == {
        (node, 3) for node in range(NODES)}
    assert {c.exit_code for (_, name), c in containers.items() if name == "analysis"} == {0}


def test_a_failed_main_container_fails_the_job_and_stops_the_sidecar(twin, graph, runs) -> None:
    result = runs["multi-container-main.csv"]
    assert result.status == "FAILED"
    assert "AnalysisFailed" in result.path
    assert "exit code 5" in (result.cause or "") or '"ExitCode":5' in (result.cause or "").replace(" ", "")

    containers = _containers(twin, graph, result.run_id)
    assert {c.exit_code for (_, name), c in containers.items() if name == "analysis"} == {5}
    # The sidecar was stopped when the essential container ended: it flushed and exited 0 on SIGTERM,
    # or was killed; either way it is recorded and did not decide the attempt.
    assert {c.exit_code for (_, name), c in containers.items() if name == "progress"} <= {0, 137, 143}
    [attempt] = graph.run("MATCH (a:StepAttempt {step: 'analysis'})-[:PART_OF]->(r:Run {run_id: $run_id}) "
                          "RETURN a.status AS status, a.exit_code AS exit_code", {"run_id": result.run_id})
    assert (attempt["status"], attempt["exit_code"]) == ("FAILED", 5)
