"""Rerun the input of a run: a new execution of the same object version, resumed from the lineage graph.

An object version names its run deterministically (`threadline_common.naming`),
so a rerun needs a name of its own: `<run id>-r<UTC time to the millisecond>`.
With `resume` the execution input carries `"resume": true` and the state
machine asks the graph which leading steps an earlier run already did
(`PlanResume`). The same calls work against AWS and the twin.

Each function takes a boto3 client or the matching client of `clients.py`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from threadline_common.naming import run_id_for
from threadline_common.run_input import utc_timestamp

from .clients import CloudFormationClient, StepFunctionsClient

MAX_EXECUTION_NAME = 80
_RERUN_SUFFIX = re.compile(r"-r\d{17}$")


def resumed_run_id(base_run_id: str, moment: datetime | None = None) -> str:
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    suffix = "-r" + moment.strftime("%Y%m%d%H%M%S") + f"{moment.microsecond // 1000:03d}"
    return base_run_id[: MAX_EXECUTION_NAME - len(suffix)] + suffix


def state_machine_arn(sfn: Any, stack: str, cloudformation: Any | None = None) -> str:
    """The stack's pipeline: its `PipelineStateMachineArn` output, else the state machine named
    `<stack>-PipelineStateMachine*` or `PipelineStateMachine-*` (the twin has no stack to ask)."""
    output = stack_output(cloudformation, stack, "PipelineStateMachineArn") if cloudformation else None
    if output:
        return output
    prefixes = (f"{stack}-PipelineStateMachine", "PipelineStateMachine-")
    for machine in StepFunctionsClient.of(sfn).state_machines():
        if machine["name"].startswith(prefixes):
            return str(machine["stateMachineArn"])
    raise LookupError(f"no state machine named {prefixes[0]}*; is the stack name right?")


def stack_output(cloudformation: Any, stack: str, key: str) -> str | None:
    """One output of a deployed stack, or None when there is no such stack or output."""
    return CloudFormationClient.of(cloudformation).stack_output(stack, key)


def source_of_run(sfn: Any, machine_arn: str, run_id: str) -> dict[str, Any]:
    """The input object of an earlier run (its execution's input)."""
    execution_arn = machine_arn.replace(":stateMachine:", ":execution:") + f":{run_id}"
    return dict(StepFunctionsClient.of(sfn).execution_input(execution_arn)["source"])


def rerun(sfn: Any, machine_arn: str, source: dict[str, Any], *, resume: bool = True,
          base_run_id: str | None = None) -> tuple[str, str]:
    """Start a new execution for `source`; (run id, execution ARN)."""
    base = base_run_id or run_id_for(source["bucket"], source["key"], source.get("version_id"), source.get("etag"))
    run_id = resumed_run_id(_RERUN_SUFFIX.sub("", base))  # a rerun of a rerun is named after the original
    payload = {"run_id": run_id, "source": source, "received_at": utc_timestamp(), "resume": resume}
    return run_id, StepFunctionsClient.of(sfn).start(machine_arn, run_id, payload)
