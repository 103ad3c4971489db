"""Small helpers the pipeline tests share."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

# The states of a run that succeeds, in order, and the last states of one that fails (statemachines/pipeline.asl.json).
HAPPY_PATH = [
    "InitialiseRun", "RecordRunStart", "CreateRunRecord", "NotifyRunStarted", "ChooseFirstStep",
    "Preprocess", "Analysis", "Postprocess", "RecordRunSucceeded", "NotifyRunSucceeded", "RunSucceeded",
]
FAILURE_TAIL = ["MarkRunFailed", "RecordRunFailed", "NotifyRunFailed", "RunFailed"]


def until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """`condition()`'s first truthy value, polled every 0.1 s; the test fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    value = condition()  # one last look, however slow the machine
    if not value:
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
    return value


@contextmanager
def definition_changed(twin: Any, change: Callable[[str], str]) -> Iterator[None]:
    """Deploy the state machine as `change` rewrites its definition (as `sam deploy` with a new parameter or
    image would); the original comes back afterwards. Executions started meanwhile run the changed one."""
    sfn = twin.client("stepfunctions")
    original = sfn.describe_state_machine(stateMachineArn=twin.state_machine_arn)["definition"]
    changed = change(original)
    assert changed != original, "the change left the definition as it was"
    sfn.update_state_machine(stateMachineArn=twin.state_machine_arn, definition=changed)
    try:
        yield
    finally:
        sfn.update_state_machine(stateMachineArn=twin.state_machine_arn, definition=original)
