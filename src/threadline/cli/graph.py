"""`threadline graph RUN`: the execution-graph page of a run, from a running twin or the twin's workdir.

A twin that serves (`threadline up`, or AWS itself with `--endpoint-url` of a
region) is asked first: its execution is the freshest, running ones included.
When nothing answers there, or it holds no such run, the execution the twin
saved under `<workdir>/state/executions/` draws the page, with the state
machine as deployed where a twin still answers, else as the project's ASL
file has it (the template's `DefinitionUri`; substitutions change no state or
transition).
"""

from __future__ import annotations

import json
import webbrowser
from pathlib import Path
from typing import Annotated, Any

import typer

from .console import console, fail

PIPELINE_ASL = Path(__file__).resolve().parents[3] / "statemachines" / "pipeline.asl.json"
TWIN_ENDPOINT = "http://127.0.0.1:4566"


def graph(run: Annotated[str, typer.Argument(help="The run id (the execution's name).")],
          endpoint_url: Annotated[str, typer.Option(
              help="Step Functions endpoint: the twin of `threadline up`, or an AWS region's.")] = TWIN_ENDPOINT,
          workdir: Annotated[Path, typer.Option(
              help="The twin's folder, whose saved executions are read when the endpoint has no such run.")]
          = Path(".threadline"),
          stack: Annotated[str, typer.Option(help="Stack name (finds <stack>-PipelineStateMachine*).")]
          = "threadline",
          out: Annotated[Path | None, typer.Option(
              help="HTML file to write (default: <workdir>/executions/RUN.html).")] = None,
          open_page: Annotated[bool, typer.Option("--open", help="Open the page in a web browser.")] = False) -> None:
    """Write the execution-graph page of RUN: states by outcome, each state's input, output and Batch attempts."""
    from ..execution_graph import render
    from ..twin.execution_store import load_execution

    sfn = _client(endpoint_url)
    record = _live(sfn, stack, run)
    where = endpoint_url
    if record is None:
        record = load_execution(workdir, run)
        where = str(workdir)
        if record is None:
            fail(f"no run {run} at {endpoint_url} (is `threadline up` running there?) nor saved under {workdir}", 1)
    execution, events = record["execution"], record["events"]
    definition = _definition(sfn, execution.get("stateMachineArn"))
    path = out or workdir / "executions" / f"{run}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(execution, events, definition, f"threadline run {run}"), encoding="utf-8")
    console.print(f"wrote {path} (run {run}, {execution.get('status')}, from {where})")
    if open_page and not webbrowser.open(path.resolve().as_uri()):
        console.print("no web browser found here: open the file above in one")


def _client(endpoint_url: str) -> Any:
    """A Step Functions client that gives up at once when nothing answers (then the workdir is read)."""
    from botocore.config import Config

    from ..lineage.clients import aws_session

    config = Config(connect_timeout=2, read_timeout=30, retries={"max_attempts": 1})
    return aws_session(endpoint_url).client("stepfunctions", endpoint_url=endpoint_url, config=config)


def _live(sfn: Any, stack: str, run: str) -> dict[str, Any] | None:
    """`{"execution", "events"}` of the run from the endpoint; None when it is unreachable or has no such run."""
    from botocore.exceptions import BotoCoreError, ClientError

    from ..lineage.rerun import state_machine_arn

    try:
        machine = state_machine_arn(sfn, stack)
        execution = sfn.describe_execution(executionArn=machine.replace(":stateMachine:", ":execution:") + f":{run}")
        events: list[dict[str, Any]] = []
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution["executionArn"]):
            events.extend(page["events"])
    except (BotoCoreError, ClientError, LookupError):
        return None
    return {"execution": execution, "events": events}


def _definition(sfn: Any, machine_arn: str | None) -> dict[str, Any]:
    """The state machine as deployed when the endpoint answers, else the project's ASL file."""
    from botocore.exceptions import BotoCoreError, ClientError

    if machine_arn:
        try:
            return dict(json.loads(sfn.describe_state_machine(stateMachineArn=machine_arn)["definition"]))
        except (BotoCoreError, ClientError):
            pass
    return dict(json.loads(PIPELINE_ASL.read_text(encoding="utf-8")))
