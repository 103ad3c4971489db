"""What a running execution is doing, read as a script against AWS would read it.

The states come from the execution history; the Batch jobs from the history's
`TaskSubmitted` events (their job ids) and DescribeJobs: status, attempts,
queue, the capacity type of the queue's first compute environment, and nodes.
While the analysis runs, its progress comes from what its sidecar ships under
the job's `partials_prefix` (`progress/node-NNNN.json`, see jobs/README.md).
The same calls work against the twin and against AWS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .runs import StateVisit, _history, _visits


@dataclass
class JobView:
    state: str  # the state that submitted it
    job_id: str
    name: str
    status: str = "SUBMITTED"
    queue: str = ""
    capacity: str = ""  # SPOT, EC2 (On-Demand), FARGATE, ... of the queue's first compute environment
    attempts: int = 0
    nodes: int = 1
    reason: str = ""
    progress: str = ""  # e.g. "analysis 3/8 blocks (37%)", from the nodes' shipped progress


@dataclass
class Snapshot:
    status: str
    started: datetime
    states: list[StateVisit]
    jobs: list[JobView] = field(default_factory=list)


class ProgressReader:
    """Reads snapshots of executions; remembers each queue's capacity type and each definition's node count.

    With an S3 client it also reads a running analysis job's progress.
    """

    def __init__(self, sfn: Any, batch: Any, s3: Any | None = None) -> None:
        self.sfn = sfn
        self.batch = batch
        self.s3 = s3
        self._capacity: dict[str, str] = {}
        self._nodes: dict[str, int] = {}

    def read(self, execution_arn: str) -> Snapshot:
        described = self.sfn.describe_execution(executionArn=execution_arn)
        events = _history(self.sfn, execution_arn)
        jobs = _submitted_jobs(events)
        if jobs:
            found = {job["jobId"]: job for job in
                     self.batch.describe_jobs(jobs=[job.job_id for job in jobs[-100:]])["jobs"]}
            for job in jobs:
                if job.job_id in found:
                    self._fill(job, found[job.job_id])
        return Snapshot(described["status"], described["startDate"], _visits(events), jobs)

    def _fill(self, job: JobView, described: dict[str, Any]) -> None:
        job.status = described.get("status", job.status)
        job.attempts = len(described.get("attempts") or []) + (1 if job.status in ("STARTING", "RUNNING") else 0)
        job.reason = described.get("statusReason") or ""
        queue_arn = described.get("jobQueue", "")
        job.queue = queue_arn.rsplit("/", 1)[-1]
        job.capacity = self._queue_capacity(queue_arn)
        nodes = (described.get("nodeProperties") or {}).get("numNodes")
        job.nodes = int(nodes) if nodes else self._definition_nodes(described.get("jobDefinition", ""))
        prefix = (described.get("parameters") or {}).get("partials_prefix", "")
        if self.s3 is not None and job.status == "RUNNING" and prefix:
            job.progress = analysis_progress(self.s3, prefix, job.job_id, job.nodes)

    def _queue_capacity(self, queue_arn: str) -> str:
        if queue_arn and queue_arn not in self._capacity:
            capacity = ""
            queues = self.batch.describe_job_queues(jobQueues=[queue_arn]).get("jobQueues", [])
            order = sorted((queues[0].get("computeEnvironmentOrder") or []) if queues else [],
                           key=lambda entry: entry.get("order", 0))
            if order:
                environments = self.batch.describe_compute_environments(
                    computeEnvironments=[order[0]["computeEnvironment"]]).get("computeEnvironments", [])
                if environments:
                    capacity = (environments[0].get("computeResources") or {}).get("type", "")
            self._capacity[queue_arn] = capacity
        return self._capacity.get(queue_arn, "")

    def _definition_nodes(self, definition: str) -> int:
        if definition and definition not in self._nodes:
            found = self.batch.describe_job_definitions(jobDefinitions=[definition]).get("jobDefinitions", [])
            nodes = ((found[0].get("nodeProperties") or {}).get("numNodes") if found else None) or 1
            self._nodes[definition] = int(nodes)
        return self._nodes.get(definition, 1)


def analysis_progress(s3: Any, partials_prefix: str, job_id: str, nodes: int) -> str:
    """The blocks done of all of the job's nodes that shipped progress; "" when none did or S3 cannot say."""
    bucket, _, key = partials_prefix.removeprefix("s3://").partition("/")
    done = total = reporting = 0
    try:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{key}progress/")
        for item in listed.get("Contents", []):
            document = json.loads(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            if str(document.get("job_id", "")).split("#")[0] != job_id:
                continue  # another job's (an earlier run's, or the job this one falls back from)
            done += int(document["blocks_done"])
            total += int(document["blocks_total"])
            reporting += 1
    except (BotoCoreError, ClientError, ValueError, KeyError, TypeError, AttributeError):
        return ""
    if not reporting:
        return ""
    share = f" ({100 * done // total}%)" if total else ""
    partly = f", {reporting} of {nodes} nodes" if reporting < nodes else ""
    return f"analysis {done}/{total} blocks{share}{partly}"


def _submitted_jobs(events: list[dict[str, Any]]) -> list[JobView]:
    """The Batch jobs the execution submitted, each with the state it was submitted from."""
    jobs: list[JobView] = []
    state = ""
    for event in events:
        if event["type"].endswith("StateEntered"):
            state = event["stateEnteredEventDetails"]["name"]
        details = event.get("taskSubmittedEventDetails")
        if event["type"] == "TaskSubmitted" and details and details.get("resourceType") == "batch":
            try:
                output = json.loads(details.get("output") or "{}")
            except ValueError:
                continue
            if output.get("JobId"):
                jobs.append(JobView(state, output["JobId"], output.get("JobName", "")))
    return jobs
