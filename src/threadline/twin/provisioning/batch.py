"""Batch compute environments, scheduling policies, job queues and job definitions.

Jobs run in the twin's Batch runtime; each compute environment's capacity and
each queue's order (FIFO, or the fair-share policy) go to its scheduler.
"""

from __future__ import annotations

import json
from typing import Any

from ..batch_capacity import environment_capacity
from ..batch_runtime import QueueSpec
from ..batch_scheduler import SharePolicy
from ..template import TemplateError
from .core import Provisioner, _lower_keys, handles


@handles("AWS::Batch::ComputeEnvironment")
def _compute_environment(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("ComputeEnvironmentName") or f"{p.stack_name}-{logical_id}"
    service_role = props.get("ServiceRole") or _batch_service_linked_role(p)
    args: dict[str, Any] = {"computeEnvironmentName": name, "type": props["Type"],
                            "state": props.get("State", "ENABLED"), "serviceRole": service_role}
    if "ComputeResources" in props:
        resources = _lower_keys(props["ComputeResources"])
        resources["minvCpus"] = 0  # the twin starts no instances; jobs run as local processes
        for key in ("maxvCpus", "desiredvCpus", "bidPercentage"):
            if key in resources:
                resources[key] = int(resources[key])
        resources.pop("desiredvCpus", None)
        args["computeResources"] = resources
    arn = p.client("batch").create_compute_environment(**args)["computeEnvironmentArn"]
    if "computeResources" in args:
        capacity = environment_capacity(args["computeResources"], p.batch_runtime.capacity_scale)
        p.batch_runtime.scheduler.add_environment(name, capacity)
    return arn, {"ComputeEnvironmentArn": arn}


def _batch_service_linked_role(p: Provisioner) -> str:
    """AWS uses Batch's service-linked role when ServiceRole is omitted; moto insists on one.

    Looked for by listing rather than GetRole: moto answers a missing role with
    an error whose shape it finds in a table of IAM's errors that it builds at
    its first IAM error, about 0.2 s of the start.
    """
    iam = p.client("iam")
    name, path = "AWSServiceRoleForBatch", "/aws-service-role/batch.amazonaws.com/"
    for page in iam.get_paginator("list_roles").paginate(PathPrefix=path):
        for role in page["Roles"]:
            if role["RoleName"] == name:
                return str(role["Arn"])
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "batch.amazonaws.com"}}]}
    return str(iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])


@handles("AWS::Batch::SchedulingPolicy")
def _scheduling_policy(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("Name") or f"{p.stack_name}-{logical_id}"
    policy = _lower_keys(props.get("FairsharePolicy", {}))
    for key in ("computeReservation", "shareDecaySeconds"):
        if key in policy:
            policy[key] = int(policy[key])
    for share in policy.get("shareDistribution", []):
        if "weightFactor" in share:
            share["weightFactor"] = float(share["weightFactor"])
    arn = p.client("batch").create_scheduling_policy(name=name, fairsharePolicy=policy)["arn"]
    return arn, {"Arn": arn}


@handles("AWS::Batch::JobQueue")
def _job_queue(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("JobQueueName") or f"{p.stack_name}-{logical_id}"
    order = [{"order": int(item["Order"]), "computeEnvironment": item["ComputeEnvironment"]}
             for item in props["ComputeEnvironmentOrder"]]
    batch = p.client("batch")
    policy_arn = props.get("SchedulingPolicyArn")
    priority = int(props.get("Priority", 1))
    arn = batch.create_job_queue(
        jobQueueName=name, state=props.get("State", "ENABLED"), priority=priority,
        computeEnvironmentOrder=order, **({"schedulingPolicyArn": policy_arn} if policy_arn else {}))["jobQueueArn"]
    actions = _lower_keys(props.get("JobStateTimeLimitActions", []))
    environments = [item["computeEnvironment"].split("/")[-1] for item in sorted(order, key=lambda i: i["order"])]
    p.batch_runtime.queues[name] = QueueSpec(logical_id, name, environments, actions)
    policy = None
    if policy_arn:  # the share decay runs on the twin's clock, scaled as the time-limit actions are
        described = batch.describe_scheduling_policies(arns=[policy_arn])["schedulingPolicies"][0]
        policy = SharePolicy.from_api(described["fairsharePolicy"], p.batch_runtime.time_limit_scale)
    p.batch_runtime.scheduler.add_queue(name, environments, priority, policy)
    return arn, {"JobQueueArn": arn}


@handles("AWS::Batch::JobDefinition")
def _job_definition(p: Provisioner, logical_id: str, props: dict, resource: dict) -> tuple[Any, dict]:
    name = props.get("JobDefinitionName") or f"{p.stack_name}-{logical_id}"
    context = resource.get("Metadata", {}).get("DockerContext")
    if not context:
        raise TemplateError(f"{logical_id} needs Metadata.DockerContext: the twin runs the job's code from there")
    args: dict[str, Any] = {"jobDefinitionName": name, "type": props["Type"]}
    for cfn_key, api_key in (("ContainerProperties", "containerProperties"), ("EcsProperties", "ecsProperties"),
                             ("NodeProperties", "nodeProperties"), ("RetryStrategy", "retryStrategy"),
                             ("Timeout", "timeout"), ("Parameters", "parameters"),
                             ("PlatformCapabilities", "platformCapabilities")):
        if cfn_key in props:
            args[api_key] = props[cfn_key] if cfn_key == "Parameters" else _lower_keys(props[cfn_key])
    _normalise_job_definition_numbers(args)
    arn = p.client("batch").register_job_definition(**args)["jobDefinitionArn"]
    p.batch_runtime.definition_dirs[name] = (p.root / context).resolve()
    return arn, {"JobDefinitionArn": arn}


def _normalise_job_definition_numbers(args: dict[str, Any]) -> None:
    """CloudFormation accepts numbers as strings; the Batch API wants integers."""
    def fix(container: dict[str, Any]) -> None:
        for item in container.get("resourceRequirements", []):
            item["value"] = str(item["value"])
        for key in ("vcpus", "memory"):
            if key in container:
                container[key] = int(container[key])
        for item in container.get("environment", []):
            item["value"] = str(item["value"])
        container.pop("ephemeralStorage", None)  # Fargate-only in the API; EC2 jobs use volumes

    def fix_task(ecs_properties: dict[str, Any]) -> None:
        for task in ecs_properties.get("taskProperties", []):
            for container in task.get("containers", []):
                fix(container)
                container["essential"] = str(container.get("essential", True)).lower() == "true"
                if "stopTimeout" in container:
                    container["stopTimeout"] = int(container["stopTimeout"])

    if "containerProperties" in args:
        fix(args["containerProperties"])
    if "ecsProperties" in args:
        fix_task(args["ecsProperties"])
    if "nodeProperties" in args:
        node = args["nodeProperties"]
        node["numNodes"] = int(node["numNodes"])
        node["mainNode"] = int(node["mainNode"])
        for node_range in node.get("nodeRangeProperties", []):
            fix(node_range.get("container", {}))
            fix_task(node_range.get("ecsProperties", {}))
    if "retryStrategy" in args and "attempts" in args["retryStrategy"]:
        args["retryStrategy"]["attempts"] = int(args["retryStrategy"]["attempts"])
    if "timeout" in args:
        args["timeout"]["attemptDurationSeconds"] = int(args["timeout"]["attemptDurationSeconds"])
