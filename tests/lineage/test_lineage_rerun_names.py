"""Rerun names and finding the stack's pieces, in AWS (stack outputs) and in the twin (names)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from threadline.lineage.redrive import dead_letter_queue
from threadline.lineage.rerun import resumed_run_id, stack_output, state_machine_arn


class Stacks:
    def __init__(self, outputs: dict[str, str] | None) -> None:
        self.outputs = outputs

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803 (boto3's spelling)
        if self.outputs is None:
            raise ClientError({"Error": {"Code": "ValidationError", "Message": "does not exist"}}, "DescribeStacks")
        return {"Stacks": [{"Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()]}]}


class Machines:
    def get_paginator(self, name: str) -> Any:
        machines = [{"name": "other", "stateMachineArn": "arn:other"},
                    {"name": "threadline-PipelineStateMachine", "stateMachineArn": "arn:twin"}]
        return type("P", (), {"paginate": lambda self: [{"stateMachines": machines}]})()


def test_a_rerun_is_named_after_the_run_and_fits_an_execution_name() -> None:
    base = "a" * 40 + "-" + "0123456789abcdef"
    name = resumed_run_id(base, datetime(2026, 11, 21, 19, 40, 0, 123000, tzinfo=UTC))
    assert name == base + "-r20261121194000123" and len(name) <= 80


def test_the_stack_outputs_name_the_pieces_and_the_twin_falls_back_to_names() -> None:
    stacks = Stacks({"PipelineStateMachineArn": "arn:aws"})
    assert stack_output(stacks, "threadline", "PipelineStateMachineArn") == "arn:aws"
    assert state_machine_arn(Machines(), "threadline", stacks) == "arn:aws"
    assert state_machine_arn(Machines(), "threadline", Stacks(None)) == "arn:twin"


def test_the_dead_letter_queue_comes_from_the_stack_output_when_there_is_one() -> None:
    class Sqs:
        def get_queue_url(self, QueueName: str) -> dict[str, str]:  # noqa: N803
            return {"QueueUrl": f"https://sqs/{QueueName}"}

    arn = "arn:aws:sqs:us-east-1:1:threadline-LineageDeadLetterQueue-AbC"
    assert dead_letter_queue(Sqs(), "threadline", cloudformation=Stacks({"LineageDeadLetterQueueArn": arn})) == (
        "https://sqs/threadline-LineageDeadLetterQueue-AbC", arn)
