"""Rerun the input of a run: a new execution of the same object version, resumed from the lineage graph.

An object version names its run deterministically (`threadline_common.naming`),
so a rerun needs a name of its own: `<run id>-r<UTC time to the millisecond>`.
With `resume` the execution input carries `"resume": true` and the state
machine asks the graph which leading steps an earlier run already did
(`PlanResume`). The same calls work against AWS and the twin.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from .lineage_view import layer_modules

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
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"].startswith(prefixes):
                return str(machine["stateMachineArn"])
    raise LookupError(f"no state machine named {prefixes[0]}*; is the stack name right?")


def stack_output(cloudformation: Any, stack: str, key: str) -> str | None:
    """One output of a deployed stack, or None when there is no such stack or output."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except (ClientError, BotoCoreError):
        return None
    for item in stacks[0].get("Outputs", []) if stacks else []:
        if item.get("OutputKey") == key:
            return str(item["OutputValue"])
    return None


def source_of_run(sfn: Any, machine_arn: str, run_id: str) -> dict[str, Any]:
    """The input object of an earlier run (its execution's input)."""
    execution_arn = machine_arn.replace(":stateMachine:", ":execution:") + f":{run_id}"
    described = sfn.describe_execution(executionArn=execution_arn)
    return dict(json.loads(described["input"])["source"])


def rerun(sfn: Any, machine_arn: str, source: dict[str, Any], *, resume: bool = True,
          base_run_id: str | None = None) -> tuple[str, str]:
    """Start a new execution for `source`; (run id, execution ARN)."""
    layer_modules()
    from threadline_common.naming import run_id_for
    from threadline_common.run_input import utc_timestamp

    base = base_run_id or run_id_for(source["bucket"], source["key"], source.get("version_id"), source.get("etag"))
    run_id = resumed_run_id(_RERUN_SUFFIX.sub("", base))  # a rerun of a rerun is named after the original
    payload = {"run_id": run_id, "source": source, "received_at": utc_timestamp(), "resume": resume}
    response = sfn.start_execution(stateMachineArn=machine_arn, name=run_id, input=json.dumps(payload))
    return run_id, str(response["executionArn"])
