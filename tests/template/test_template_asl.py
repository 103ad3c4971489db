"""The state machine file and the template agree: substitutions and the role's permissions."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = REPO_ROOT / "statemachines" / "pipeline.asl.json"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
# Optimized integrations whose IAM action is not service:CapitalizedApi.
ACTION_OF_INTEGRATION = {"lambda:invoke": "lambda:InvokeFunction"}
# What `.sync` needs on top of the API call (Step Functions polls and listens for events).
SYNC_EXTRAS = {
    "batch": {"batch:DescribeJobs", "batch:TerminateJob", "events:PutTargets", "events:PutRule", "events:DescribeRule"},
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def asl_text() -> str:
    if not ASL_PATH.exists():
        pytest.skip("statemachines/pipeline.asl.json is not written yet")
    return ASL_PATH.read_text()


def _task_resources(node: Any) -> set[str]:
    """The Resource of every Task state, at any depth (Parallel branches, Map processors)."""
    found: set[str] = set()
    if isinstance(node, dict):
        if node.get("Type") == "Task" and isinstance(node.get("Resource"), str):
            found.add(node["Resource"])
        for value in node.values():
            found |= _task_resources(value)
    elif isinstance(node, list):
        for value in node:
            found |= _task_resources(value)
    return found


def _required_actions(resource: str) -> set[str]:
    """IAM actions a Task resource needs, for arn:aws:states::: service integrations."""
    match = re.fullmatch(
        r"arn:aws:states:::(aws-sdk:)?([a-z0-9-]+):([A-Za-z0-9]+)(\.sync(?::2)?|\.waitForTaskToken)?", resource)
    if not match:
        return set()
    _, service, api, suffix = match.groups()
    action = ACTION_OF_INTEGRATION.get(f"{service}:{api}", f"{service}:{api[0].upper()}{api[1:]}")
    needed = {action}
    if suffix and suffix.startswith(".sync"):
        needed |= SYNC_EXTRAS.get(service, set())
    return needed


def test_every_placeholder_is_a_substitution(asl_text: str, resources: dict[str, Any]) -> None:
    used = set(PLACEHOLDER.findall(asl_text))
    keys = set(resources["PipelineStateMachine"]["Properties"]["DefinitionSubstitutions"])
    assert used - keys == set(), f"placeholders with no substitution: {sorted(used - keys)}"


def test_every_substitution_is_used(asl_text: str, resources: dict[str, Any]) -> None:
    used = set(PLACEHOLDER.findall(asl_text))
    keys = set(resources["PipelineStateMachine"]["Properties"]["DefinitionSubstitutions"])
    assert keys - used == set(), f"substitutions the state machine never uses: {sorted(keys - used)}"


def test_required_actions_mapping() -> None:
    assert _required_actions("arn:aws:states:::lambda:invoke") == {"lambda:InvokeFunction"}
    assert _required_actions("arn:aws:states:::aws-sdk:s3:getObject") == {"s3:GetObject"}
    assert "events:PutRule" in _required_actions("arn:aws:states:::batch:submitJob.sync")


def test_role_allows_every_task_integration(asl_text: str, resources: dict[str, Any]) -> None:
    statements = [
        s
        for policy in _as_list(resources["PipelineStateMachine"]["Properties"]["Policies"])
        for s in policy["Statement"]
        if s["Effect"] == "Allow"
    ]
    granted = {action for s in statements for action in _as_list(s["Action"])}
    tasks = _task_resources(json.loads(asl_text))
    assert tasks, "the state machine has no Task states"
    missing = {f"{task} -> {action}" for task in tasks for action in _required_actions(task) if action not in granted}
    assert not missing, "state machine role lacks:\n" + "\n".join(sorted(missing))
