"""Record one real twin run as the execution-graph tests' fixture.

    .venv/bin/python tests/browser/record_execution.py

Starts a twin, uploads the bundled sample with a Spot reclamation injected into
pre-processing (so the run takes a Catch and the On-Demand fallback), and writes
the execution's DescribeExecution output, its history events and the state
machine definition as deployed to `execution.json` beside this file, datetimes
as ISO strings: the same shape as a persisted execution in the twin's workdir.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from threadline.cli.app import SAMPLE
from threadline.twin.faults import Fault
from threadline.twin.runs import run_file
from threadline.twin.server import Twin, TwinConfig

FIXTURE = Path(__file__).with_name("execution.json")
FAULT = "preprocess@SpotJobQueue:spot"


def record(target: Path = FIXTURE) -> Path:
    with tempfile.TemporaryDirectory() as workdir, Twin(TwinConfig(workdir=Path(workdir))) as twin:
        twin.faults.add(Fault.parse(FAULT))
        result = run_file(twin, SAMPLE, "incoming/sample-positions.csv")
        sfn = twin.client("stepfunctions")
        execution = sfn.describe_execution(executionArn=result.execution_arn)
        events: list[dict[str, Any]] = []
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=result.execution_arn):
            events.extend(page["events"])
        definition = json.loads(sfn.describe_state_machine(stateMachineArn=twin.state_machine_arn)["definition"])
    execution.pop("ResponseMetadata", None)
    payload = {"execution": execution, "events": events, "definition": definition}
    target.write_text(json.dumps(payload, indent=1, default=_iso) + "\n", encoding="utf-8")
    return target


def _iso(value: Any) -> str:
    return value.isoformat()


if __name__ == "__main__":
    print(record(Path(sys.argv[1]) if len(sys.argv) > 1 else FIXTURE))
