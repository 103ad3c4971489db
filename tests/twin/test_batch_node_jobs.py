"""The nodes of a multi-node Batch job in the twin, shown as Batch shows them: child jobs `<jobId>#<N>`.

Each node has its own status, "Batch Job State Change" events and attempts (its
task of containers, or its `container`), with `nodeDetails`; the parent's
attempts carry the deciding node's exit code and no tasks; DescribeJobs answers
a node by its id.
"""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from moto.batch import models as batch_models

from threadline.twin import moto_fixes, moto_speedups
from threadline.twin.batch_runtime import EXITED_REASON, LocalBatchRuntime
from threadline.twin.faults import FaultPlan

JOB_ID = "job-0001"
ARN = f"arn:aws:batch:us-east-1:123456789012:job/{JOB_ID}"
NODE_INDEX = "import os, sys; node = int(os.environ['AWS_BATCH_JOB_NODE_INDEX'])\n"


def _container(name: str, script: str, *, essential: bool = True, after: str | None = None) -> dict[str, Any]:
    """A container running `python -c script`, started once container `after` has exited (if given)."""
    return {"name": name, "image": "local", "essential": essential, "command": ["python", "-c", script],
            "dependsOn": [{"containerName": after, "condition": "COMPLETE"}] if after else []}


def _job(node_range: dict[str, Any], nodes: int = 2, retry: dict[str, Any] | None = None) -> Any:
    """What the runtime reads of a moto multi-node job; `describe` gives the parent's own fields."""
    definition = SimpleNamespace(
        name="tasked", type="multinode", arn="arn:aws:batch:us-east-1:123456789012:job-definition/tasked:1",
        container_properties=None, ecs_properties=None, parameters={}, retry_strategy=retry or {}, timeout=None,
        node_properties={"numNodes": nodes, "mainNode": 0, "nodeRangeProperties": [{"targetNodes": "0:",
                                                                                      **node_range}]})
    job = SimpleNamespace(job_id=JOB_ID, arn=ARN, job_name="analysis-run-1", job_definition=definition,
                          job_queue=SimpleNamespace(name="q", arn="arn:aws:batch:us-east-1:123456789012:job-queue/q"),
                          parameters={"run_id": "run-1"}, container_overrides={}, timeout=None, stop=False,
                          job_stopped_reason=None, attempts=[], status="SUBMITTED", backend=None)
    job.describe = lambda: {"jobArn": ARN, "jobId": JOB_ID, "jobName": job.job_name, "status": job.status,
                            "jobQueue": job.job_queue.arn, "jobDefinition": definition.arn,
                            "parameters": dict(job.parameters), "createdAt": 1, "attempts": copy.deepcopy(job.attempts),
                            "nodeProperties": definition.node_properties}
    return job


def _run(tmp_path: Path, job: Any) -> list[dict[str, Any]]:
    """Run the job; every job state event's detail, in the order they were sent."""
    events: list[dict[str, Any]] = []
    runtime = LocalBatchRuntime(tmp_path, {}, tmp_path / "logs", FaultPlan())
    runtime.definition_dirs["tasked"] = tmp_path
    runtime.state_events = lambda described: events.append({**described.describe(), "status": described.status})
    runtime.run(job)
    return events


def _ecs_nodes(analysis: str = "pass", progress: str = "pass") -> dict[str, Any]:
    return {"ecsProperties": {"taskProperties": [{"containers": [
        _container("analysis", NODE_INDEX + analysis, after="progress"),
        _container("progress", progress, essential=False)]}]}}


def _of(events: list[dict[str, Any]], job_id: str) -> list[dict[str, Any]]:
    return [event for event in events if event["jobId"] == job_id]


def test_each_node_is_a_child_job_with_its_own_events_and_task(tmp_path) -> None:
    job = _job(_ecs_nodes(progress="import sys; sys.exit(3)"))

    events = _run(tmp_path, job)

    assert job.status == "SUCCEEDED"
    for node in (0, 1):
        node_events = _of(events, f"{JOB_ID}#{node}")
        assert [e["status"] for e in node_events] == ["STARTING", "RUNNING", "SUCCEEDED"]
        last = node_events[-1]
        assert last["nodeDetails"] == {"nodeIndex": node, "isMainNode": node == 0}
        assert last["jobArn"] == f"{ARN}#{node}" and last["jobName"] == job.job_name
        assert last["parameters"] == {"run_id": "run-1"} and last["jobQueue"] == job.job_queue.arn
        [attempt] = last["attempts"]
        [task] = attempt["taskProperties"]
        exits = {c["name"]: c["exitCode"] for c in task["containers"]}
        assert exits == {"analysis": 0, "progress": 3}
        assert {c["name"]: c["logStreamName"] for c in task["containers"]}["analysis"] == \
            f"tasked/analysis/{JOB_ID}#{node}"
        declared = {c["name"]: c for c in last["ecsProperties"]["taskProperties"][0]["containers"]}
        assert declared["progress"]["exitCode"] == 3 and declared["progress"]["essential"] is False
    starts = [e["jobId"] for e in events if e["status"] == "STARTING" and "nodeDetails" in e]
    assert starts == [f"{JOB_ID}#0", f"{JOB_ID}#1"]  # the main node first
    parent = _of(events, JOB_ID)
    assert parent[-1]["status"] == "SUCCEEDED" and events[-1] is parent[-1]  # the nodes end before the job
    assert all("nodeDetails" not in e for e in parent)
    [attempt] = job.attempts
    assert "taskProperties" not in attempt and attempt["container"]["exitCode"] == 0


def test_the_job_s_end_is_visible_before_its_nodes_announce_theirs_and_a_retry_announces_them_at_once(
        tmp_path, monkeypatch) -> None:
    job = _job(_ecs_nodes(analysis="sys.exit(6 if node == 1 else 0)"), retry={"attempts": 2})
    polls_woken: list[str] = []
    monkeypatch.setattr(moto_speedups, "batch_job_ended", lambda: polls_woken.append(job.status))
    parent_seen: list[tuple[str, str, str]] = []  # (node, its status, the parent's status) at each node event
    events: list[dict[str, Any]] = []
    runtime = LocalBatchRuntime(tmp_path, {}, tmp_path / "logs", FaultPlan())
    runtime.definition_dirs["tasked"] = tmp_path

    def sent(described: Any) -> None:
        events.append({**described.describe(), "status": described.status})
        if "#" in described.job_id and described.status in ("SUCCEEDED", "FAILED"):
            parent_seen.append((described.job_id, described.status, job.status))

    runtime.state_events = sent
    runtime.run(job)

    assert polls_woken == ["FAILED"]  # once, at the job's end
    first, last = parent_seen[:2], parent_seen[2:]
    assert {parent for _, _, parent in first} == {"RUNNING"}  # the retried attempt's nodes: announced at once
    assert {parent for _, _, parent in last} == {"FAILED"}  # the last attempt's: after the job's end shows
    assert [node for node, _, _ in last] == [f"{JOB_ID}#0", f"{JOB_ID}#1"]
    assert events[-1]["jobId"] == JOB_ID and events[-1]["status"] == "FAILED"  # the job's own event still last


def test_a_retried_job_gives_every_node_an_attempt_per_attempt_of_the_job(tmp_path) -> None:
    job = _job(_ecs_nodes(analysis="sys.exit(6 if node == 1 else 0)"), retry={"attempts": 2})

    events = _run(tmp_path, job)

    assert job.status == "FAILED" and job.exit_code == 6 and len(job.attempts) == 2
    assert job.attempts[-1]["container"]["reason"] == "node 1: container analysis exited with code 6"
    node0, node1 = (_of(events, f"{JOB_ID}#{n}")[-1] for n in (0, 1))
    assert [node0["status"], node1["status"]] == ["SUCCEEDED", "FAILED"]
    assert len(node0["attempts"]) == len(node1["attempts"]) == 2
    for attempt in node1["attempts"]:
        [task] = attempt["taskProperties"]
        assert {c["name"]: c["exitCode"] for c in task["containers"]}["analysis"] == 6
        assert attempt["statusReason"] == EXITED_REASON
    assert [e["status"] for e in _of(events, f"{JOB_ID}#1")] == ["STARTING", "RUNNING", "FAILED"] * 2


def test_a_container_node_reports_its_own_container(tmp_path) -> None:
    job = _job({"container": {"image": "local", "command": ["python", "-c", NODE_INDEX + "sys.exit(node * 4)"]}})

    events = _run(tmp_path, job)

    assert job.status == "FAILED" and job.exit_code == 4
    node0, node1 = (_of(events, f"{JOB_ID}#{n}")[-1] for n in (0, 1))
    assert node0["container"]["exitCode"] == 0 and node1["container"]["exitCode"] == 4
    assert node1["attempts"][0]["container"]["logStreamName"] == f"tasked/default/{JOB_ID}#1"
    assert "ecsProperties" not in node1 and "taskProperties" not in node1["attempts"][0]


def test_describe_jobs_answers_a_node_by_its_id(tmp_path) -> None:
    job = _job(_ecs_nodes())
    _run(tmp_path, job)
    moto_fixes.fix_batch_concurrent_describe()
    backend = SimpleNamespace(_jobs={JOB_ID: job})

    described = batch_models.BatchBackend.describe_jobs(backend, [JOB_ID, f"{JOB_ID}#1", f"{ARN}#0", f"{JOB_ID}#7"])

    assert [d["jobId"] for d in described] == [JOB_ID, f"{JOB_ID}#0", f"{JOB_ID}#1"]  # no node 7: nothing
    assert described[2]["nodeDetails"] == {"nodeIndex": 1, "isMainNode": False}
    assert described[2]["status"] == "SUCCEEDED" and len(described[2]["attempts"]) == 1
