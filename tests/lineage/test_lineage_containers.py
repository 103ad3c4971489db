"""Multi-container Batch attempts (`ecsProperties`) in lineage: one Container node per container of each node's task.

The job descriptions here have AWS Batch's shapes. A single-node job's attempts list
its task (`taskProperties[].containers[]`, no `container`), with the containers'
declared properties in the job's own `ecsProperties`. A multi-node job (an essential
`analysis` container and a non-essential `progress` sidecar on each node) is told in
two parts: the job's own description, whose attempts carry its main node's exit and
no tasks, and each node's, `<JobId>#<N>` with `nodeDetails`, whose own attempts hold
that node's task. They reach lineage in camelCase, as Batch's EventBridge events
carry them, and the job's own also in PascalCase, as Step Functions reports it in
`run_finished` (Step Functions never reports the nodes).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import pytest
from openlineage_spec import problems
from rich.console import Console
from threadline_common.lineage import parse_lineage_event, record_event, run_report
from threadline_common.lineage.batch import attempt_records, node_containers, pascal_case_keys
from threadline_common.lineage.openlineage import attempt_uuid, run_events
from threadline_common.lineage.reader import run_containers

from threadline.lineage import render
from threadline.twin.graph_store import GraphQueryError, GraphStore

PIPELINE = "threadline"
RUN_ID = "sample-positions-f7bb85b42b864454"
JOB_ID = "4a5b6c7d-0a8e-4b8e-9d0e-1f2a3b4c5d6e"
ACCOUNT = "123456789012"
QUEUE = f"arn:aws:batch:us-east-1:{ACCOUNT}:job-queue/GpuJobQueue-8KqWe3RtY6uI"
IMAGE = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/threadline/analysis@sha256:{'6' * 64}"
SIDECAR = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/threadline/progress@sha256:{'7' * 64}"
STARTED, STOPPED = 1795290240000, 1795290372000
STOPPED_BY_ESSENTIAL = "Essential container in task exited"


def declared_task() -> dict[str, Any]:
    """One node's task as the job definition declares it: the analysis and its progress sidecar."""
    return {"containers": [
        {"name": "analysis", "essential": True, "image": IMAGE, "command": ["python", "-m", "analysis"]},
        {"name": "progress", "essential": False, "image": SIDECAR, "command": ["python", "-m", "progress"],
         "dependsOn": [{"containerName": "analysis", "condition": "START"}]},
    ]}


def task(node: int, exits: dict[str, tuple[int | None, str | None]]) -> dict[str, Any]:
    """One node's task in an attempt: each container's exit code and reason."""
    return {
        "containerInstanceArn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:container-instance/gpu/{node:032x}",
        "taskArn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/gpu/{node + 1:032x}",
        "containers": [{"name": name, "exitCode": code, "reason": reason,
                        "logStreamName": f"threadline-analysis/{name}/{node:04x}", "networkInterfaces": []}
                       for name, (code, reason) in exits.items()],
    }


def job(status: str, attempts: list[dict[str, Any]], *, nodes: int) -> dict[str, Any]:
    """The analysis job's own description in camelCase (DescribeJobs, the EventBridge event's detail).

    More than one node: a multi-node job whose node ranges declare the containers; one node:
    a single-node job with the containers in its own `ecsProperties`.
    """
    description: dict[str, Any] = {
        "jobArn": f"arn:aws:batch:us-east-1:{ACCOUNT}:job/{JOB_ID}", "jobName": f"analysis-{RUN_ID}",
        "jobId": JOB_ID, "jobQueue": QUEUE, "status": status, "statusReason": STOPPED_BY_ESSENTIAL,
        "createdAt": STARTED - 60_000, "startedAt": STARTED, "stoppedAt": STOPPED, "attempts": attempts,
        "dependsOn": [], "jobDefinition": f"arn:aws:batch:us-east-1:{ACCOUNT}:job-definition/threadline-analysis:4",
        "parameters": {"run_id": RUN_ID, "clean_uri": f"s3://threadline-intermediate/runs/{RUN_ID}/clean.parquet",
                       "partials_prefix": f"s3://threadline-intermediate/runs/{RUN_ID}/analysis/"},
        "platformCapabilities": ["EC2"], "tags": {"threadline:step": "analysis"},
    }
    if nodes > 1:
        description["nodeProperties"] = {"numNodes": nodes, "mainNode": 0, "nodeRangeProperties": [
            {"targetNodes": "0:", "ecsProperties": {"taskProperties": [declared_task()]}}]}
    else:
        description["ecsProperties"] = {"taskProperties": [declared_task()]}
    return description


def node_job(parent: dict[str, Any], node: int, *tasks: dict[str, Any]) -> dict[str, Any]:
    """Node `node` of the multi-node `parent` (`<JobId>#<N>`): one attempt per task given, its range's containers."""
    ended = {c["exitCode"] for c in tasks[-1]["containers"] if c["name"] == "analysis"}
    description = {key: copy.deepcopy(parent[key]) for key in (
        "jobName", "jobQueue", "createdAt", "startedAt", "stoppedAt", "dependsOn", "jobDefinition", "parameters",
        "platformCapabilities", "tags")}
    return description | {
        "jobArn": f"{parent['jobArn']}#{node}", "jobId": f"{JOB_ID}#{node}",
        "status": "SUCCEEDED" if ended == {0} else "FAILED", "statusReason": STOPPED_BY_ESSENTIAL,
        "nodeDetails": {"nodeIndex": node, "isMainNode": node == 0},
        "attempts": [attempt(t) for t in tasks], "ecsProperties": {"taskProperties": [declared_task()]},
    }


def attempt(*tasks: dict[str, Any]) -> dict[str, Any]:
    return {"startedAt": STARTED, "stoppedAt": STOPPED, "statusReason": STOPPED_BY_ESSENTIAL,
            "taskProperties": list(tasks)}


def main_node_attempt(exit_code: int) -> dict[str, Any]:
    """A multi-node job's own attempt: its main node's exit, no tasks."""
    return {"startedAt": STARTED, "stoppedAt": STOPPED, "statusReason": STOPPED_BY_ESSENTIAL,
            "container": {"exitCode": exit_code, "networkInterfaces": []}}


@dataclass(frozen=True)
class Described:
    """A job as Batch describes it: its own description and, for a multi-node job, each node's."""

    job: dict[str, Any]
    nodes: tuple[dict[str, Any], ...] = ()

    def batch_events(self) -> list[dict[str, Any]]:
        """Batch's events as the job ends: the nodes' first, then the job's."""
        return [batch_event(detail) for detail in (*self.nodes, self.job)]


def sidecar_failed() -> Described:
    """(a) Two nodes; the progress sidecar exited 3 on node 0, the analysis exited 0 on both: the job goes on."""
    parent = job("SUCCEEDED", [main_node_attempt(0)], nodes=2)
    return Described(parent, (
        node_job(parent, 0, task(0, {"analysis": (0, None), "progress": (3, "progress upload refused")})),
        node_job(parent, 1, task(1, {"analysis": (0, None), "progress": (0, None)})),
    ))


def analysis_failed() -> Described:
    """(b) One node; the analysis exited 5, so Batch stopped the sidecar (143): the job fails."""
    return Described(job("FAILED", [attempt(
        task(0, {"analysis": (5, None), "progress": (143, STOPPED_BY_ESSENTIAL)}),
    )], nodes=1))


def batch_event(detail: dict[str, Any]) -> dict[str, Any]:
    """The "Batch Job State Change" EventBridge event for a job (or a node) that ended."""
    return {"version": "0", "id": "5d0c1b2a-76e5-d76a-f980-7011e206042b", "detail-type": "Batch Job State Change",
            "source": "aws.batch", "account": ACCOUNT, "time": "2026-11-21T19:46:12Z", "region": "us-east-1",
            "resources": [detail["jobArn"]], "detail": detail}


def record_all(graph: GraphStore, events: list[dict[str, Any]]) -> None:
    for event in events:
        record_event(graph, parse_lineage_event(event), PIPELINE)


def run_finished(detail: dict[str, Any]) -> dict[str, Any]:
    """`run_finished` with the job as Step Functions reports it: a `.sync` output, or a failure's Cause."""
    reported = pascal_case_keys(detail)
    event: dict[str, Any] = {
        "event": "run_finished", "run_id": RUN_ID, "status": reported["Status"], "at": "2026-11-21T19:47:01.502Z",
        "execution_arn": f"arn:aws:states:us-east-1:{ACCOUNT}:execution:threadline-pipeline:{RUN_ID}",
        "source": {"bucket": "threadline-incoming", "key": "incoming/sample-positions.csv",
                   "uri": "s3://threadline-incoming/incoming/sample-positions.csv", "version_id": "v1"},
    }
    if reported["Status"] == "SUCCEEDED":
        event["jobs"] = {"analysis": reported}
    else:
        cause = json.dumps(reported)
        event["failures"] = {"analysis": {"Error": "States.TaskFailed", "Cause": cause, "Job": json.loads(cause)}}
        event["error"] = {"Error": "States.TaskFailed", "Cause": cause}
    return event


def containers_in(graph: GraphStore) -> dict[str, dict[str, Any]]:
    """Every Container node with the attempt that ran it, by container id."""
    rows = graph.run("MATCH (a:StepAttempt)-[:RAN_CONTAINER]->(c:Container) "
                     "RETURN a.attempt_id AS attempt_id, c.container_id AS container_id, c.node_index AS node_index, "
                     "c.name AS name, c.essential AS essential, c.exit_code AS exit_code, c.reason AS reason, "
                     "c.log_stream AS log_stream, c.image AS image")
    return {row.pop("container_id"): row for row in rows}


def attempt_in(graph: GraphStore) -> dict[str, Any]:
    rows = graph.run("MATCH (a:StepAttempt {attempt_id: $id}) RETURN a.status AS status, a.exit_code AS exit_code, "
                     "a.status_reason AS status_reason, a.log_stream AS log_stream, a.image AS image",
                     {"id": f"{JOB_ID}#1"})
    assert len(rows) == 1
    return rows[0]


def counts(graph: GraphStore) -> dict[str, int]:
    found = {f"node:{r['l']}": r["c"] for r in graph.run("MATCH (n) RETURN label(n) AS l, count(*) AS c")}
    return found | {f"rel:{r['l']}": r["c"] for r in graph.run("MATCH ()-[e]->() RETURN label(e) AS l, count(*) AS c")}


def test_a_failed_sidecar_leaves_the_attempt_succeeded_and_is_recorded(graph: GraphStore) -> None:
    record_all(graph, sidecar_failed().batch_events())

    assert attempt_in(graph) == {"status": "SUCCEEDED", "exit_code": 0, "status_reason": STOPPED_BY_ESSENTIAL,
                                 "log_stream": None, "image": IMAGE}
    containers = containers_in(graph)
    assert sorted(containers) == [f"{JOB_ID}#1/{node}/{name}" for node in (0, 1) for name in ("analysis", "progress")]
    assert {c["attempt_id"] for c in containers.values()} == {f"{JOB_ID}#1"}
    assert containers[f"{JOB_ID}#1/0/progress"] == {
        "attempt_id": f"{JOB_ID}#1", "node_index": 0, "name": "progress", "essential": False, "exit_code": 3,
        "reason": "progress upload refused", "log_stream": "threadline-analysis/progress/0000", "image": SIDECAR}
    analysis = {cid: c for cid, c in containers.items() if c["name"] == "analysis"}
    assert [(c["node_index"], c["essential"], c["exit_code"], c["image"]) for c in analysis.values()] == [
        (0, True, 0, IMAGE), (1, True, 0, IMAGE)]
    assert containers[f"{JOB_ID}#1/1/progress"]["exit_code"] == 0


def test_a_failed_essential_container_gives_the_attempt_its_exit_code(graph: GraphStore) -> None:
    record_all(graph, analysis_failed().batch_events())

    assert attempt_in(graph) == {"status": "FAILED", "exit_code": 5, "status_reason": STOPPED_BY_ESSENTIAL,
                                 "log_stream": "threadline-analysis/analysis/0000", "image": IMAGE}
    containers = containers_in(graph)
    assert {cid: (c["essential"], c["exit_code"], c["reason"]) for cid, c in containers.items()} == {
        f"{JOB_ID}#1/0/analysis": (True, 5, None),
        f"{JOB_ID}#1/0/progress": (False, 143, STOPPED_BY_ESSENTIAL),
    }


def test_an_attempt_without_a_reason_of_its_own_takes_the_failed_essential_containers() -> None:
    """A retried attempt's failure is told by its essential container, not by the sidecar Batch then stopped."""
    description = analysis_failed().job
    retried = attempt(task(0, {"progress": (143, STOPPED_BY_ESSENTIAL),
                               "analysis": (137, "OutOfMemoryError: Container killed due to memory usage")}))
    del retried["statusReason"]
    description["attempts"].insert(0, retried)

    first, last = attempt_records("analysis", description, first_seq=1)

    assert (first.status, first.exit_code, first.status_reason, first.log_stream) == (
        "FAILED", 137, "OutOfMemoryError: Container killed due to memory usage", "threadline-analysis/analysis/0000")
    assert (last.attempt_id, last.exit_code) == (f"{JOB_ID}#2", 5)
    assert [c.container_id for c in first.containers] == [f"{JOB_ID}#1/0/progress", f"{JOB_ID}#1/0/analysis"]


def test_plain_single_container_attempts_have_no_containers(graph: GraphStore, sample_event: Any) -> None:
    finished = sample_event("lineage_run_finished.json")
    record_event(graph, parse_lineage_event(sample_event("lineage_run_started.json")), PIPELINE)
    record_event(graph, parse_lineage_event(finished), PIPELINE)

    assert "node:Container" not in counts(graph) and "rel:RAN_CONTAINER" not in counts(graph)
    report = run_report(graph, RUN_ID)
    assert report is not None and report.containers == ()
    assert not [e for e in run_events(report) if "threadline_containers" in e["run"].get("facets", {})]
    analysis = next(a for a in report.attempts if a.step == "analysis")
    assert analysis.exit_code == 0 and analysis.image == finished["jobs"]["analysis"]["NodeProperties"][
        "NodeRangeProperties"][0]["Container"]["Image"]


@pytest.mark.parametrize("description", [sidecar_failed, analysis_failed])
def test_a_redelivered_event_writes_nothing_new(graph: GraphStore, description: Any) -> None:
    described = description()
    record_all(graph, described.batch_events())
    before = (counts(graph), containers_in(graph), attempt_in(graph))

    record_all(graph, described.batch_events())

    assert (counts(graph), containers_in(graph), attempt_in(graph)) == before
    assert before[0]["node:Container"] == len(before[1]) == before[0]["rel:RAN_CONTAINER"] == 4 - 2 * (
        not described.nodes)
    assert before[0]["node:StepAttempt"] == 1  # the nodes' attempts are the job's: none of their own

    record_event(graph, parse_lineage_event(run_finished(described.job)), PIPELINE)  # the same job, from the run
    after = counts(graph)
    assert (after["node:Container"], after["rel:RAN_CONTAINER"]) == (len(before[1]), len(before[1]))
    assert containers_in(graph) == before[1]


@pytest.mark.parametrize("description", [sidecar_failed, analysis_failed])
def test_step_functions_and_eventbridge_shapes_give_the_same_facts(tmp_path: Any, description: Any) -> None:
    described = description()
    camel = described.job
    pascal = pascal_case_keys(camel)
    assert attempt_records("analysis", camel, first_seq=1) == attempt_records("analysis", pascal, first_seq=1)

    written = []
    nodes = [batch_event(node) for node in described.nodes]  # Step Functions reports no nodes: Batch does
    for name, events in (("eventbridge", described.batch_events()), ("step-functions", [run_finished(camel), *nodes])):
        with GraphStore(tmp_path / name / "graph.lbug") as graph:
            record_all(graph, events)
            written.append((containers_in(graph), {k: v for k, v in attempt_in(graph).items()}))
    assert written[0] == written[1]
    assert len(written[0][0]) == 2 * max(1, len(described.nodes))


@pytest.mark.parametrize("description", [sidecar_failed, analysis_failed])
def test_the_openlineage_events_carry_the_containers_and_validate(graph: GraphStore, description: Any) -> None:
    described = description()
    detail = described.job
    record_all(graph, [run_finished(detail), *(batch_event(node) for node in described.nodes)])
    report = run_report(graph, RUN_ID)
    assert report is not None
    assert [(c.node_index, c.name) for c in report.containers] == sorted(
        (n, name) for n in range(max(1, len(described.nodes))) for name in ("analysis", "progress"))
    assert report.containers == tuple(run_containers(graph, RUN_ID))

    events = run_events(report)
    for event in events:
        assert problems(event) == [], (event["eventType"], event["job"]["name"])
    attempt_run = attempt_uuid(PIPELINE, RUN_ID, f"{JOB_ID}#1")
    ends = [e for e in events if e["run"]["runId"] == attempt_run and e["eventType"] != "START"]
    assert [e["eventType"] for e in ends] == ["COMPLETE" if detail["status"] == "SUCCEEDED" else "FAIL"]
    facet = ends[0]["run"]["facets"]["threadline_containers"]
    assert facet["_schemaURL"].endswith("/ThreadlineContainersRunFacet.json#/$defs/ThreadlineContainersRunFacet")
    by_name = {(c["nodeIndex"], c["name"]): c for c in facet["containers"]}
    sidecar = by_name[(0, "progress")]
    assert sidecar["essential"] is False and sidecar["exitCode"] == (3 if detail["status"] == "SUCCEEDED" else 143)
    assert ends[0]["run"]["facets"]["threadline_batchJob"]["exitCode"] == by_name[(0, "analysis")]["exitCode"]

    broken = copy.deepcopy(ends[0])
    broken["run"]["facets"]["threadline_containers"]["containers"][0]["exitCode"] = "3"
    assert problems(broken), "the containers facet's own schema let a string exit code through"


def test_the_run_report_shows_each_container(graph: GraphStore) -> None:
    described = sidecar_failed()
    record_all(graph, [run_finished(described.job), *(batch_event(node) for node in described.nodes)])
    report = run_report(graph, RUN_ID)
    assert report is not None
    console = Console(record=True, width=200)

    render.run_report(console, report)

    lines = [line.split() for line in console.export_text().splitlines() if f"{JOB_ID}#1" in line]
    rows = [[cell for cell in line if cell != "│"] for line in lines]
    assert rows == [
        [f"{JOB_ID}#1", "0", "analysis", "yes", "0"],
        [f"{JOB_ID}#1", "0", "progress", "no", "3", "progress", "upload", "refused"],
        [f"{JOB_ID}#1", "1", "analysis", "yes", "0"],
        [f"{JOB_ID}#1", "1", "progress", "no", "0"],
    ]


def test_a_graph_written_before_containers_were_recorded_still_reports_its_runs(tmp_path: Any,
                                                                                 sample_event: Any) -> None:
    """A twin's graph from before the Container table, read without the twin (read-only), has no containers."""
    path = tmp_path / "graph.lbug"
    with GraphStore(path) as graph:
        record_event(graph, parse_lineage_event(sample_event("lineage_run_finished.json")), PIPELINE)
        graph.run("DROP TABLE RAN_CONTAINER")
        graph.run("DROP TABLE Container")

    with GraphStore(path, read_only=True) as graph:
        report = run_report(graph, RUN_ID)
        with pytest.raises(GraphQueryError, match="Table Nothing does not exist"):
            graph.run("MATCH (n:Nothing) RETURN n")  # a table no schema has is still an error

    assert report is not None and len(report.attempts) == 6 and report.containers == ()


def test_a_node_description_names_its_node_and_its_parents_attempts() -> None:
    """A node's attempt N is its job's attempt N; the node is `nodeDetails.nodeIndex`, whatever the task order."""
    described = sidecar_failed()
    node = described.nodes[1] | {"attempts": [
        attempt(task(1, {"analysis": (137, "OutOfMemoryError: Container killed due to memory usage"),
                         "progress": (143, STOPPED_BY_ESSENTIAL)})),
        *described.nodes[1]["attempts"]]}

    containers = node_containers(node)

    assert [(c.attempt_id, c.node_index, c.name, c.essential, c.exit_code) for c in containers] == [
        (f"{JOB_ID}#1", 1, "analysis", True, 137), (f"{JOB_ID}#1", 1, "progress", False, 143),
        (f"{JOB_ID}#2", 1, "analysis", True, 0), (f"{JOB_ID}#2", 1, "progress", False, 0)]
    declared_by_range = {k: v for k, v in node.items() if k != "ecsProperties"} | {
        "nodeProperties": described.job["nodeProperties"]}
    assert node_containers(declared_by_range) == containers  # or declared by the job's node range
    with pytest.raises(ValueError, match="not a node"):
        node_containers(described.job)


@pytest.mark.parametrize("order", ["nodes-job-run", "run-nodes", "node1-run-node0-job", "job-nodes-run"])
def test_node_events_in_any_order_record_the_same_containers_under_the_jobs_attempt(tmp_path: Any,
                                                                                   order: str) -> None:
    described = sidecar_failed()
    named = {"node0": batch_event(described.nodes[0]), "node1": batch_event(described.nodes[1]),
             "job": batch_event(described.job), "run": run_finished(described.job)}
    named["nodes"] = named["node0"]
    events = [named[part] for part in order.split("-")]
    if "nodes" in order:
        events.insert(order.split("-").index("nodes") + 1, named["node1"])

    with GraphStore(tmp_path / "graph.lbug") as graph:
        record_all(graph, events)
        found = (counts(graph), containers_in(graph), attempt_in(graph))

    assert found[0]["node:StepAttempt"] == 1 and found[0]["node:Container"] == found[0]["rel:RAN_CONTAINER"] == 4
    assert sorted(found[1]) == [f"{JOB_ID}#1/{node}/{name}" for node in (0, 1) for name in ("analysis", "progress")]
    assert found[1][f"{JOB_ID}#1/0/progress"]["exit_code"] == 3
    assert found[2]["status"] == "SUCCEEDED"


def test_a_node_that_ends_before_its_job_is_recorded_shows_only_with_the_job(graph: GraphStore) -> None:
    described = sidecar_failed()
    record_event(graph, parse_lineage_event(batch_event(described.nodes[0])), PIPELINE)

    assert run_report(graph, RUN_ID) is None  # nothing of the run is written from a node
    assert counts(graph)["node:Container"] == 2

    record_event(graph, parse_lineage_event(run_finished(described.job)), PIPELINE)

    report = run_report(graph, RUN_ID)
    assert report is not None and [a.attempt_id for a in report.attempts if a.step == "analysis"] == [f"{JOB_ID}#1"]
    assert {(c.node_index, c.name) for c in report.containers} == {(0, "analysis"), (0, "progress")}
