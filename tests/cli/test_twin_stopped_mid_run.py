"""`threadline up`: what a serving twin refuses and reports, and the twin stopped mid-run (SIGTERM).

Stopped mid-run, no run is left silently open: the running execution is stopped as
a person would stop it; the finaliser marks the run ABORTED in the lineage graph
(which outlives the twin) and tells Slack.

One `threadline up` serves every check here, the stop last: a twin start is the
costly part, and none of the checks while it serves changes what another sees. The
run the stop interrupts is uploaded first, to get under way while the checks run;
a fault makes its pre-processing hang, so no Batch job runs before the stop.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from threadline.cli import app
from threadline.cli.lineage import app as lineage_app

SAMPLE = (Path(__file__).resolve().parents[2] / "src" / "threadline" / "data" / "sample-positions.csv").read_bytes()
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:threadline-PipelineStateMachine"


@dataclass
class Serving:
    """`threadline up --port 0` in its own process group, its output collected as it comes."""

    process: subprocess.Popen[str]
    workdir: Path
    endpoint_url: str = ""
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def wait_for(self, pattern: str, timeout: float = 120) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = re.search(pattern, line)
                if found:
                    return found
            assert self.process.poll() is None, self.output()[-3000:]
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} from threadline up: {self.output()[-3000:]}")

    def output(self) -> str:
        return "".join(self.lines)

    def ended(self, timeout: float) -> str:
        """Wait for the process to end and its output to be read to the end; that output."""
        self.process.wait(timeout=timeout)
        if self.reader is not None:
            self.reader.join(timeout=timeout)
        return self.output()

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[Serving]:
    """`threadline up` with the pre-processing made to hang, so that a run is under way when the twin is stopped."""
    workdir = tmp_path / "twin"
    process = subprocess.Popen([sys.executable, "-m", "threadline.cli", "up", "--port", "0", "--workdir", str(workdir),
                                "--fault", "preprocess:hang"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    twin = Serving(process, workdir)
    stdout = process.stdout
    assert stdout is not None
    twin.reader = threading.Thread(target=lambda: twin.lines.extend(iter(stdout.readline, "")), daemon=True)
    twin.reader.start()
    try:
        twin.endpoint_url = twin.wait_for(r"serving AWS APIs on (http://\S+)").group(1)
        yield twin
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        twin.ended(timeout=30)


def check_a_second_twin_on_its_workdir_is_refused_naming_the_holder(serving: Serving) -> None:
    started = time.monotonic()
    result = CliRunner().invoke(app, ["demo", "--workdir", str(serving.workdir)])

    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert f"the workdir {serving.workdir} is in use by another threadline process (pid {serving.process.pid})" \
        in result.stderr
    assert "pass --workdir DIR" in result.stderr
    assert time.monotonic() - started < 15  # refused before a twin starts


def check_up_reports_an_upload_that_started_no_run(serving: Serving) -> None:
    serving.client("s3").put_object(Bucket="threadline-incomingbucket", Key="incoming/nothing-in-it.csv", Body=b"")

    serving.wait_for(r"no run started: the start function skipped "
                     r"s3://threadline-incomingbucket/incoming/nothing-in-it\.csv: .*is empty", timeout=60)


def check_lineage_redrive_against_the_twin_needs_no_region_or_credentials(serving: Serving) -> None:
    result = CliRunner().invoke(lineage_app, ["redrive", "--endpoint-url", serving.endpoint_url])

    assert result.exit_code == 0, result.output
    assert result.exception is None, repr(result.exception)
    assert "no dead letters in arn:aws:sqs:us-east-1:" in result.stdout
    assert "Traceback" not in result.output


def check_lineage_rerun_of_an_unknown_run_says_so(serving: Serving) -> None:
    result = CliRunner().invoke(lineage_app, ["rerun", "no-such-run", "--endpoint-url", serving.endpoint_url])

    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "DescribeExecution failed: ExecutionDoesNotExist" in result.stderr
    assert "Traceback" not in result.output


def upload_a_run_that_hangs(serving: Serving) -> None:
    """Upload the sample: its run hangs in the pre-processing the fault makes hang."""
    serving.client("s3").put_object(Bucket="threadline-incomingbucket", Key="incoming/stopped.csv", Body=SAMPLE)


def hanging_run(serving: Serving) -> str:
    """Wait until the uploaded run is in its hanging pre-processing; its run id."""
    sfn = serving.client("stepfunctions")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for execution in sfn.list_executions(stateMachineArn=MACHINE)["executions"]:
            if not execution["name"].startswith("stopped-"):
                continue
            history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
            if any(e.get("stateEnteredEventDetails", {}).get("name") == "Preprocess" for e in history):
                return str(execution["name"])
        time.sleep(0.1)
    raise AssertionError(f"the run never reached its pre-processing: {serving.output()[-3000:]}")


@pytest.mark.usefixtures("no_twin_starts", "no_aws_environment")
def test_a_serving_twin_refuses_reports_and_closes_its_run_when_stopped(serving: Serving,
                                                                         subtests: pytest.Subtests) -> None:
    upload_a_run_that_hangs(serving)
    for check in (check_a_second_twin_on_its_workdir_is_refused_naming_the_holder,
                  check_up_reports_an_upload_that_started_no_run,
                  check_lineage_redrive_against_the_twin_needs_no_region_or_credentials,
                  check_lineage_rerun_of_an_unknown_run_says_so):
        with subtests.test(check.__name__.removeprefix("check_")):
            check(serving)

    run_id = hanging_run(serving)
    serving.process.send_signal(signal.SIGTERM)  # as `kill` or a CI runner's cancel sends it
    output = serving.ended(timeout=120)
    assert serving.process.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]

    shown = CliRunner().invoke(lineage_app, ["run", run_id, "--workdir", str(serving.workdir), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["run"]["status"] == "ABORTED"
    notices = [json.loads(p.read_text(encoding="utf-8"))
               for p in sorted((serving.workdir / "slack-outbox").glob("*.json"))]
    assert [n["kind"] for n in notices if n.get("run_id") == run_id] == ["run_started", "run_failed"]
