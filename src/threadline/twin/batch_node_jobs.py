"""The nodes of a multi-node Batch job as Batch shows them: child jobs `<jobId>#<N>`.

On AWS a multi-node parallel job is described by its own id with what its main
node reported (`startedAt`, `stoppedAt`, `statusReason`, the exit code), and
each node is a child job `<jobId>#<N>` that DescribeJobs answers separately
and that sends its own "Batch Job State Change" events. A child carries
`nodeDetails {nodeIndex, isMainNode}` and its own `attempts[]`: each attempt of
the parent reruns every node, so a node's attempt N is the parent's attempt N.
A node that runs a task of several containers (`ecsProperties`) lists that task
in its attempts' `taskProperties[].containers[]`; the parent's attempts do not.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

# The parent's fields that every node shares (the rest is the node's own).
SHARED_FIELDS = ("jobName", "jobQueue", "jobDefinition", "parameters", "createdAt", "dependsOn", "tags",
                 "platformCapabilities", "retryStrategy", "timeout", "shareIdentifier", "schedulingPriority")


@dataclass
class NodeJob:
    """One node of a multi-node job: what DescribeJobs and the job state events say of `<jobId>#<index>`."""

    parent: Any  # the moto Batch job
    index: int
    main: bool
    ecs_properties: dict[str, Any] | None  # the node range's task of several containers, if it has one
    status: str = "PENDING"
    status_reason: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    started_at: int | None = None  # epoch milliseconds, as Batch gives them
    stopped_at: int | None = None

    @property
    def job_id(self) -> str:
        return f"{self.parent.job_id}#{self.index}"

    @property
    def arn(self) -> str:
        return f"{self.parent.arn}#{self.index}"

    @property
    def backend(self) -> Any:
        return self.parent.backend

    def describe(self) -> dict[str, Any]:
        """The node's DescribeJobs description (camelCase, as the API and its events give it)."""
        parent = self.parent.describe()
        result: dict[str, Any] = {key: parent[key] for key in SHARED_FIELDS if key in parent}
        result.update({
            "jobArn": self.arn, "jobId": self.job_id, "status": self.status,
            "attempts": copy.deepcopy(self.attempts),
            "nodeDetails": {"nodeIndex": self.index, "isMainNode": self.main},
        })
        for key, value in (("statusReason", self.status_reason), ("startedAt", self.started_at),
                           ("stoppedAt", self.stopped_at)):
            if value is not None:
                result[key] = value
        last = self.attempts[-1] if self.attempts else {}
        if self.ecs_properties is not None:
            result["ecsProperties"] = described_ecs_properties(self.ecs_properties, last.get("taskProperties"))
        else:
            result["container"] = copy.deepcopy(last.get("container") or {})
        return result


def described_ecs_properties(ecs_properties: dict[str, Any], tasks: list[dict[str, Any]] | None) -> dict[str, Any]:
    """A job's declared `ecsProperties` with each container's exit code, reason and log stream from `tasks`."""
    described = copy.deepcopy(ecs_properties)
    ran = {container["name"]: container for container in ((tasks or [{}])[0].get("containers") or [])}
    for container in described.get("taskProperties", [{}])[0].get("containers", []):
        container.update({key: value for key, value in ran.get(container["name"], {}).items()
                          if key in ("exitCode", "reason", "logStreamName")})
    return described


def describe_node(job: Any, node_job_id: str) -> dict[str, Any] | None:
    """DescribeJobs of `<jobId>#<N>` for the twin's multi-node `job` (None: no such node)."""
    _, _, index = node_job_id.rpartition("#")
    nodes: list[NodeJob] = getattr(job, "twin_nodes", None) or []
    node = next((n for n in nodes if str(n.index) == index), None)
    return node.describe() if node is not None else None


def node_ranges(node_properties: dict[str, Any]) -> list[dict[str, Any]]:
    """The node range that covers each node, in node order (a later range overrides an earlier one)."""
    count = int(node_properties["numNodes"])
    ranges: list[dict[str, Any] | None] = [None] * count
    for node_range in node_properties["nodeRangeProperties"]:
        start, sep, end = node_range["targetNodes"].partition(":")
        first = int(start or 0)
        last = (int(end) if end else count - 1) if sep else first
        for index in range(first, last + 1):
            ranges[index] = node_range
    missing = [i for i, node_range in enumerate(ranges) if node_range is None]
    if missing:
        raise RuntimeError(f"nodes {missing} are not covered by any nodeRangeProperties")
    return [node_range for node_range in ranges if node_range is not None]
