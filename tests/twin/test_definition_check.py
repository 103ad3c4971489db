"""A state machine definition is grammar-checked at its first creation only, and parsed ahead once the twin is ready."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from threadline.twin.provisioning.definitions import create_checked_once, definition_key, warm

GOOD = {"StartAt": "Send", "States": {"Send": {
    "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
    "Parameters": {"QueueUrl": "http://127.0.0.1:{port}/123456789012/lineage", "MessageBody": "hi"},
    "End": True}}}
BROKEN = '{"StartAt": "Missing", "States": {"Done": {"Type": "NoSuchType"}}}'
ROLE = "arn:aws:iam::123456789012:role/states"


def good(port: int) -> str:
    return json.dumps(GOOD).replace("{port}", str(port))


@pytest.fixture
def sfn() -> Iterator[Any]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):  # moto's ASL parser backend
        yield boto3.client("stepfunctions", region_name="us-east-1")


def create(sfn: Any, name: str, definition: str, cache: Path) -> tuple[str, bool]:
    return create_checked_once(sfn, {"name": name, "definition": definition, "roleArn": ROLE}, cache)


def test_the_key_ignores_the_local_port_only() -> None:
    assert definition_key(good(5000)) == definition_key(good(61234))
    assert definition_key(good(5000)) != definition_key(good(5000).replace("lineage", "other"))


def test_a_new_definition_is_checked_and_then_remembered(sfn: Any, tmp_path: Path) -> None:
    arn, unparsed = create(sfn, "first", good(5000), tmp_path)
    assert not unparsed and arn.endswith(":first")
    assert (tmp_path / f"asl-{definition_key(good(5000))}.ok").exists()
    _, unparsed = create(sfn, "again", good(6000), tmp_path)  # the next start: another port
    assert unparsed


def test_a_broken_definition_fails_its_creation_and_is_not_remembered(sfn: Any, tmp_path: Path) -> None:
    for _ in range(2):
        with pytest.raises(ClientError, match="NoSuchType"):
            create(sfn, "broken", BROKEN, tmp_path)
    assert not list(tmp_path.glob("asl-*"))


def test_only_a_remembered_definition_skips_the_check(sfn: Any, tmp_path: Path) -> None:
    """Proof that the parse is left out: a remembered (here planted) marker lets even a broken text through."""
    (tmp_path / f"asl-{definition_key(BROKEN)}.ok").touch()
    _, unparsed = create(sfn, "planted", BROKEN, tmp_path)
    assert unparsed
    with pytest.raises(ClientError, match="NoSuchType"):
        create(sfn, "other", BROKEN.replace("Missing", "Elsewhere"), tmp_path)
    (tmp_path / f"asl-{definition_key(BROKEN)}.ok").unlink()
    with pytest.raises(ClientError, match="NoSuchType"):  # the skip ended with the creation it was for
        create(sfn, "planted-again", BROKEN, tmp_path)


def test_warming_a_definition_that_no_longer_parses_logs_instead_of_raising(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="threadline.twin"):
        warm(BROKEN)
    assert "no longer parses" in caplog.text
    warm(good(5000))  # a good one parses quietly
