"""The twin stopped mid-run (`threadline up` ended with SIGTERM or Ctrl-C): no run is left silently open.

The running execution is stopped as a person would stop it; the finaliser marks the
run ABORTED in the lineage graph (which outlives the twin) and tells Slack.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3

SAMPLE = (Path(__file__).resolve().parents[2] / "src" / "threadline" / "data" / "sample-positions.csv").read_bytes()


def _read_until(process: subprocess.Popen[str], pattern: str, timeout: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    seen = []
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        found = re.search(pattern, line)
        if found:
            return found
    raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(seen)}")


def test_stopping_the_twin_mid_run_closes_the_run(tmp_path: Path) -> None:
    workdir = tmp_path / "twin"
    process = subprocess.Popen(
        [sys.executable, "-m", "threadline.cli", "up", "--port", "0", "--workdir", str(workdir),
         "--fault", "analysis:hang"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        url = _read_until(process, r"serving AWS APIs on (http://\S+)", 120).group(1)
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
        s3.put_object(Bucket="threadline-incomingbucket", Key="incoming/stopped.csv", Body=SAMPLE)
        sfn = boto3.client("stepfunctions", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        machine = "arn:aws:states:us-east-1:123456789012:stateMachine:threadline-PipelineStateMachine"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # until the run hangs in its analysis
            executions = sfn.list_executions(stateMachineArn=machine)["executions"]
            if executions:
                history = sfn.get_execution_history(executionArn=executions[0]["executionArn"])["events"]
                if any(e.get("stateEnteredEventDetails", {}).get("name") == "Analysis" for e in history):
                    break
            time.sleep(0.5)
        else:
            raise AssertionError("the run never reached its analysis")
        run_id = executions[0]["name"]
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert "Traceback" not in output

    shown = subprocess.run([sys.executable, "-m", "threadline.cli", "lineage", "run", run_id, "--workdir",
                            str(workdir), "--json"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["run"]["status"] == "ABORTED"
    notices = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((workdir / "slack-outbox").glob("*.json"))]
    assert [n["kind"] for n in notices if n.get("run_id") == run_id] == ["run_started", "run_failed"]
