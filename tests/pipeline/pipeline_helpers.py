"""Small helpers the pipeline tests share."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest

from threadline.lineage.rerun import rerun, source_of_run
from threadline.twin.faults import Fault
from threadline.twin.runs import RunResult, collect, find_execution, upload, wait

# The states of a run that succeeds, in order, and the last states of one that fails (statemachines/pipeline.asl.json).
HAPPY_PATH = [
    "InitialiseRun", "RecordRunStart", "CreateRunRecord", "NotifyRunStarted", "ChooseFirstStep",
    "Preprocess", "Analysis", "Postprocess", "RecordRunSucceeded", "NotifyRunSucceeded", "RunSucceeded",
]
FAILURE_TAIL = ["MarkRunFailed", "RecordRunFailed", "NotifyRunFailed", "RunFailed"]
SAMPLE_RUN = "sample-run.csv"  # the input of the suite's shared plain run (conftest.py, `sample_run`)


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


def run_together(twin: Any, files: Mapping[str, tuple[bytes, tuple[str, ...]]],
                 timeout: float | None = None) -> dict[str, RunResult]:
    """Upload every file (name -> body and faults) as incoming/<name> at once and wait for all the runs.

    Runs started together overlap their waits (polls, Batch's scheduling, retries) and take less time
    than one after another. Each file's faults are scoped to its run (the name's stem), cleared afterwards.
    """
    stems = [name.split(".")[0] for name in files]
    try:
        uploads = {}
        for (name, (body, faults)), stem in zip(files.items(), stems, strict=True):
            for spec in faults:
                twin.faults.add(Fault.parse(spec, run_id=stem))
            uploads[name] = upload(twin, body, f"incoming/{name}")
        executions = {name: find_execution(twin, u["bucket"], u["key"], u["version_id"], since=u["uploaded_at"])
                      for name, u in uploads.items()}
        return finish_together(twin, executions, timeout)
    finally:
        for stem in stems:
            twin.faults.clear(run_id=stem)


def finish_together(twin: Any, executions: Mapping[str, str], timeout: float | None = None) -> dict[str, RunResult]:
    """Wait for every execution (name -> ARN) to end, then collect what each did (read through the APIs:
    the workdir's state files are not needed, so not written)."""
    ended = {name: wait(twin, arn, timeout) for name, arn in executions.items()}
    return {name: collect(twin, result, save=False) for name, result in ended.items()}


def start_resume(twin: Any, earlier: RunResult) -> str:
    """Start a rerun of `earlier`'s input, resumed from the lineage graph (which must hold the earlier
    run's lineage by then: the event sources idle); its execution ARN."""
    sfn = twin.client("stepfunctions")
    source = source_of_run(sfn, twin.state_machine_arn, earlier.run_id)
    return rerun(sfn, twin.state_machine_arn, source, base_run_id=earlier.run_id)[1]
