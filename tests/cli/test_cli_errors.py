"""Expected trouble at the `threadline` command: a clear message, a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from threadline.cli import app
from threadline.cli.lineage import app as lineage_app
from threadline.twin.graph_store import graph_path

AWS_VARIABLES = ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                 "AWS_SESSION_TOKEN")


def no_aws_environment(tmp_path: Path) -> dict[str, str]:
    """The environment with no AWS region, profile or credentials anywhere."""
    env = {k: v for k, v in os.environ.items() if k not in AWS_VARIABLES}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-creds"),
               AWS_EC2_METADATA_DISABLED="true", PYTHONUNBUFFERED="1")
    return env


def threadline(*args: str, cwd: Path, env: dict[str, str] | None = None,
               timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "threadline.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False, env=env)
    return done, time.monotonic() - started


def said(done: subprocess.CompletedProcess[str]) -> str:
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output[-4000:]
    return output


def twin_ready_seconds(output: str) -> float:
    found = re.search(r"ready in ([0-9.]+)s", output)
    assert found, output[-2000:]
    return float(found.group(1))


# -- runs that start no run, or are interrupted ------------------------------------------------------


def test_run_of_an_empty_file_says_at_once_that_the_start_function_skipped_it(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")

    done, seconds = threadline("run", str(empty), "--workdir", str(tmp_path / "twin"), cwd=tmp_path)

    output = said(done)
    assert done.returncode == 1, output[-3000:]
    assert "no run started for s3://threadline-incomingbucket/incoming/empty.csv" in done.stderr
    assert "the start function skipped it: object s3://threadline-incomingbucket/incoming/empty.csv is empty" \
        in done.stderr
    assert "StartRunFunction" in done.stderr  # where its log is
    assert seconds - twin_ready_seconds(output) < 15  # no 30 s wait for a run that will never start


def test_run_of_a_key_no_run_starts_for_is_refused_before_the_twin_starts(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("position_id\n")

    done, _ = threadline("run", str(notes), "--workdir", str(tmp_path / "twin"), cwd=tmp_path, timeout=60)

    said(done)
    assert done.returncode == 2
    assert "the key incoming/notes.txt starts no run" in done.stderr and "--key incoming/NAME.csv" in done.stderr
    assert not (tmp_path / "twin").exists()


def test_ctrl_c_during_a_run_says_the_run_stopped_with_the_twin(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "threadline.cli", "demo", "--workdir", str(tmp_path / "twin")],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    try:
        seen = []
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line)
            if "RUNNING in" in line:  # the progress line: the run is under way
                os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
                break
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    output = "".join(seen) + out + err
    assert "Traceback" not in output, output[-4000:]
    assert process.returncode == 130, output[-3000:]
    assert re.search(r"interrupted: run sample-positions-\w+ was RUNNING in \w+ after", err), err
    assert "the run stopped with it" in err and "logs so far are under" in err


# -- a twin already serving: its workdir, its port, the lineage commands against it ---------------------


@dataclass
class Serving:
    process: subprocess.Popen[str]
    workdir: Path
    endpoint_url: str = ""
    lines: list[str] = field(default_factory=list)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = re.search(pattern, line)
                if found:
                    return found
            assert self.process.poll() is None, "".join(self.lines)[-3000:]
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} from threadline up: {''.join(self.lines)[-3000:]}")


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serving]:
    """`threadline up --port 0` in its own workdir, its output collected as it comes."""
    workdir = tmp_path_factory.mktemp("serving") / "twin"
    process = subprocess.Popen([sys.executable, "-m", "threadline.cli", "up", "--port", "0", "--workdir", str(workdir)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    twin = Serving(process, workdir)
    assert process.stdout is not None
    threading.Thread(target=lambda: twin.lines.extend(iter(process.stdout.readline, "")), daemon=True).start()
    try:
        twin.endpoint_url = twin.wait_for(r"serving AWS APIs on (http://\S+)").group(1)
        yield twin
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_a_second_twin_on_a_workdir_in_use_is_refused_naming_the_holder(serving, tmp_path):
    done, seconds = threadline("demo", "--workdir", str(serving.workdir), cwd=tmp_path, timeout=60)

    said(done)
    assert done.returncode == 2
    assert f"the workdir {serving.workdir} is in use by another threadline process (pid {serving.process.pid})" \
        in done.stderr
    assert "pass --workdir DIR" in done.stderr
    assert seconds < 15  # refused before a twin starts


def test_a_workdir_whose_graph_another_process_holds_is_refused_naming_it(tmp_path):
    """A process that took no lock file (a script's own Twin) holds the graph: the database's lock error says who."""
    workdir = tmp_path / "twin"
    workdir.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom threadline.twin.graph_store import GraphStore\n"
                               f"store = GraphStore({str(graph_path(workdir))!r})\nprint('open', flush=True)\n"
                               "sys.stdin.read()\nstore.close()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        done, _ = threadline("demo", "--workdir", str(workdir), cwd=tmp_path, timeout=90)
    finally:
        holder.communicate(timeout=30)

    said(done)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"is in use by another threadline process (pid {holder.pid})" in done.stderr


def test_up_on_a_port_in_use_says_so_at_once(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        done, seconds = threadline("up", "--port", str(port), "--workdir", str(tmp_path / "twin"), cwd=tmp_path,
                                   timeout=60)

    said(done)
    assert done.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr and "--port N" in done.stderr
    assert seconds < 15


def test_up_reports_an_upload_that_started_no_run(serving):
    s3 = boto3.client("s3", endpoint_url=serving.endpoint_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.put_object(Bucket="threadline-incomingbucket", Key="incoming/nothing-in-it.csv", Body=b"")

    serving.wait_for(r"no run started: the start function skipped "
                     r"s3://threadline-incomingbucket/incoming/nothing-in-it\.csv: .*is empty", timeout=30)


def test_lineage_redrive_against_the_local_twin_needs_no_region_or_credentials(serving, tmp_path):
    done, _ = threadline("lineage", "redrive", "--endpoint-url", serving.endpoint_url, cwd=tmp_path,
                         env=no_aws_environment(tmp_path), timeout=60)

    said(done)
    assert done.returncode == 0, done.stderr
    assert "no dead letters in arn:aws:sqs:us-east-1:" in done.stdout


def test_lineage_rerun_of_an_unknown_run_says_so(serving, tmp_path):
    done, _ = threadline("lineage", "rerun", "no-such-run", "--endpoint-url", serving.endpoint_url, cwd=tmp_path,
                         env=no_aws_environment(tmp_path), timeout=60)

    said(done)
    assert done.returncode == 1
    assert "DescribeExecution failed: ExecutionDoesNotExist" in done.stderr


# -- without a twin ----------------------------------------------------------------------------------------


def test_lineage_redrive_against_aws_without_a_region_says_what_to_pass(tmp_path, monkeypatch):
    for name, value in no_aws_environment(tmp_path).items():
        monkeypatch.setenv(name, value)
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    result = CliRunner().invoke(lineage_app, ["redrive"])

    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "no AWS region configured: pass --region REGION or set AWS_DEFAULT_REGION" in result.output
    assert "Traceback" not in result.output


def test_lineage_redrive_of_an_unreachable_twin_says_so(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    done, _ = threadline("lineage", "redrive", "--endpoint-url", url, cwd=tmp_path, env=no_aws_environment(tmp_path),
                         timeout=120)

    said(done)
    assert done.returncode == 1
    assert f"cannot reach {url}; is `threadline up` running there?" in done.stderr


def test_sample_takes_its_options_as_the_readme_shows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(app, ["sample", "--rows", "1000", "--bad-share", "0.02", "--out", "positions.csv"])

    assert result.exit_code == 0, result.output
    lines = (tmp_path / "positions.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("position_id,asset,sector") and len(lines) == 1001
    shown = CliRunner().invoke(app, ["sample", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert "--out" in shown.output and "--output" not in shown.output


def test_sample_refuses_a_share_outside_0_to_1(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(app, ["sample", "--bad-share", "2", "--out", "positions.csv"])

    assert result.exit_code == 2
    assert "--bad-share" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "positions.csv").exists()
