"""IAM: no wildcard grants anywhere, and every role's permissions are visible in the template."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

# AWS managed policies the template may attach: the ECS agent on Batch instances and the
# image pull/log role of Batch containers. SAM adds the Lambda basic/VPC/X-Ray ones itself.
ALLOWED_MANAGED_POLICIES = {
    "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role",
    "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
}
# The KMS keys' administration statement: kms:* to the account root is what lets IAM
# policies govern a key at all. It is a key policy, not a grant to any role.
KEY_ADMIN_SID = "AccountAdministersKeyThroughIam"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _policy_documents(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every policy document (a mapping with a Statement list) anywhere under `node`."""
    if isinstance(node, dict):
        statements = node.get("Statement")
        if isinstance(statements, list) and statements \
                and all(isinstance(s, dict) and "Effect" in s for s in statements):
            yield path, node
        for key, value in node.items():
            yield from _policy_documents(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _policy_documents(value, f"{path}[{index}]")


def _allow_statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (path, statement)
        for path, document in _policy_documents(template["Resources"], "Resources")
        for statement in document["Statement"]
        if statement["Effect"] == "Allow"
    ]


def _is_wildcard(action: Any) -> bool:
    return isinstance(action, str) and (action == "*" or action.endswith(":*"))


def test_wildcard_detector_catches_both_forms() -> None:
    assert _is_wildcard("*") and _is_wildcard("s3:*")
    assert not _is_wildcard("s3:GetObject") and not _is_wildcard("kms:GenerateDataKey*")


def test_policies_are_found(template: dict[str, Any]) -> None:
    """Guard against a vacuous wildcard check: every role's policy is collected."""
    paths = {path.split("/")[1] for path, _ in _allow_statements(template)}
    expected = {
        "StartRunFunction", "RecordLineageFunction", "NotifySlackFunction", "PipelineStateMachine",
        "PreprocessJobRole", "AnalysisJobRole", "PostprocessJobRole", "BatchExecutionRole",
        "BatchInstanceRole", "DataKey", "AlarmKey",
    }
    assert expected <= paths, f"missing policy documents for {sorted(expected - paths)}"


def test_no_allow_statement_grants_a_wildcard_action(template: dict[str, Any]) -> None:
    keys = {name for name, res in template["Resources"].items() if res["Type"] == "AWS::KMS::Key"}
    offenders = []
    for path, statement in _allow_statements(template):
        if path.split("/")[1] in keys and statement.get("Sid") == KEY_ADMIN_SID:
            continue
        if "NotAction" in statement:
            offenders.append(f"{path}: NotAction in an Allow statement")
        offenders.extend(f"{path}: {action}" for action in _as_list(statement.get("Action", []))
                         if _is_wildcard(action))
    assert not offenders, "\n".join(offenders)


def test_serverless_policies_are_inline_documents(resources: dict[str, Any]) -> None:
    """Named managed policies or SAM policy templates would hide their actions from the check above."""
    for name, res in resources.items():
        if res["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            policies = _as_list(res["Properties"].get("Policies", []))
            assert policies, f"{name} has no policies"
            for policy in policies:
                if isinstance(policy, dict) and "Fn::If" in policy:  # a policy only some deployments get
                    _, policy, otherwise = policy["Fn::If"]
                    assert otherwise == {"Ref": "AWS::NoValue"}, f"{name}: a conditional policy's other branch"
                assert isinstance(policy, dict) and "Statement" in policy, \
                    f"{name}: {policy!r} is not an inline document"


def test_managed_policies_are_the_known_service_roles(resources: dict[str, Any]) -> None:
    for name, res in resources.items():
        for arn in _as_list(res.get("Properties", {}).get("ManagedPolicyArns", [])):
            value = arn.get("Fn::Sub") if isinstance(arn, dict) else arn
            assert value in ALLOWED_MANAGED_POLICIES, f"{name}: unexpected managed policy {arn!r}"


@pytest.mark.parametrize("role", ["PreprocessJobRole", "AnalysisJobRole", "PostprocessJobRole", "BatchExecutionRole"])
def test_job_roles_trust_ecs_tasks_only(resources: dict[str, Any], role: str) -> None:
    trust = resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
