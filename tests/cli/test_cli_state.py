"""`demo`, then what the workdir remembers: a resumed run in a new twin, `runs`, `open`, and SIGTERM mid-run.

The commands that start a twin run as a user runs them, each in a process of its
own; `runs` and `open` only read the workdir's files, so they run in this process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from threadline.cli import app

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "threadline" / "data" / "sample-positions.csv"
NO_BROWSER = {"DISPLAY": None, "WAYLAND_DISPLAY": None, "BROWSER": None}


def threadline(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "threadline.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=240, check=False)


def assert_demo_output(out: str) -> tuple[str, Path]:
    """What the demo prints of its run as it goes and at the end; the run id and the report's local file."""
    for expected in ("SUCCEEDED", "Preprocess", "Analysis", "Postprocess", "report.html",
                     "DynamoDB run record", "Slack (2 messages", "lineage", "execution graph"):
        assert expected in out, expected
    # Watched as it ran (no terminal here: one line per change).
    for expected in ("RUNNING in Preprocess (Task)", "left Preprocess after", "RUNNING in Analysis (Task)"):
        assert expected in out, expected
    assert re.search(r"batch preprocess-\S+ SUCCEEDED on threadline-SpotJobQueue \(SPOT\), attempt 1", out), out
    assert re.search(r"batch analysis-\S+ \w+ on threadline-GpuJobQueue \(EC2\)\S*( attempt 1,)? 2 nodes", out), out
    # The report and the validation report open as local files.
    local = {}
    for label, name in (("report", "report.html"), ("validation report", "validation.json")):
        found = re.search(rf"^{label}: s3://\S+/{name}\n  open: (\S+)$", out, re.MULTILINE)
        assert found, label
        local[label] = Path(found.group(1))
        assert local[label].is_file() and local[label].stat().st_size > 0
    run = re.search(r"^run (\S+): SUCCEEDED in ", out, re.MULTILINE)
    assert run, out[-3000:]
    return run.group(1), local["report"]


def test_demo_then_a_resumed_run_in_a_new_twin_then_runs_and_open(tmp_path: Path) -> None:
    workdir = tmp_path / "twin"
    demo = threadline("demo", "--workdir", str(workdir), cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    run_id, report = assert_demo_output(demo.stdout)
    assert list((workdir / "executions").glob("*.html"))
    assert report.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")

    # A new twin: the file is still in the incoming bucket, so --resume starts only the resumed run.
    resumed = threadline("run", str(SAMPLE), "--workdir", str(workdir), "--resume", "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again = json.loads(resumed.stdout)  # stdout is the one JSON result, nothing else
    assert again["status"] == "SUCCEEDED" and again["path"][-1] == "RunSucceeded" and "first_run" not in again
    assert again["seconds"]["twin_start"] > 0 and again["seconds"]["run"] >= again["seconds"]["execution"] > 0
    assert again["run_id"].startswith(run_id + "-r")
    # Every step is reused: the first twin's outputs are still there for the planner to find.
    assert "MarkRunReused" in again["path"] and not {"Preprocess", "Analysis", "Postprocess"} & set(again["path"])
    saved = {name: json.loads((workdir / "state" / "executions" / f"{name}.json").read_text(encoding="utf-8"))
             for name in (run_id, again["run_id"])}
    sources = [json.loads(record["execution"]["input"])["source"] for record in saved.values()]
    assert sources[0] == sources[1]  # the same object version, as the start function described it
    for output in again["outputs"]:
        assert output["s3"].startswith("s3://") and Path(output["local"]).is_file(), output
    reused = {output["label"]: output for output in again["outputs"] if output["label"]}
    assert set(reused) == {"report"}  # the validation report is the first run's own, not a result it reuses
    assert reused["report"]["local"] == str(report) and report.is_file()  # the report it reused is the first's

    listed = CliRunner().invoke(app, ["runs", "--workdir", str(workdir), "--json"])
    assert listed.exit_code == 0, listed.output
    runs = json.loads(listed.stdout)
    assert [(run["run_id"], run["status"]) for run in runs] == [(run_id, "SUCCEEDED"), (again["run_id"], "SUCCEEDED")]
    assert runs[0]["input"] == "s3://threadline-incomingbucket/incoming/sample-positions.csv"
    assert runs[0]["seconds"] > 0 and runs[0]["report"] == str(report)

    table = CliRunner().invoke(app, ["runs", "--workdir", str(workdir)])
    assert table.exit_code == 0 and run_id in table.stdout and "SUCCEEDED" in table.stdout

    opened = CliRunner().invoke(app, ["open", run_id, "--workdir", str(workdir)], env=NO_BROWSER)
    assert opened.exit_code == 0 and opened.stdout.strip() == str(report), opened.output
    latest = CliRunner().invoke(app, ["open", "--workdir", str(workdir), "--print"])  # the resumed run's
    assert latest.exit_code == 0 and latest.stdout.strip() == str(report), latest.output
    unknown = CliRunner().invoke(app, ["open", "no-such-run", "--workdir", str(workdir)])
    assert unknown.exit_code == 1 and "no run no-such-run" in unknown.stderr and "Traceback" not in unknown.output


def test_sigterm_mid_run_stops_promptly_and_leaves_the_workdir_reusable(tmp_path: Path) -> None:
    workdir = tmp_path / "twin"
    # Pre-processing hangs, so the run is still under way when SIGTERM arrives, however fast the machine.
    process = subprocess.Popen([sys.executable, "-m", "threadline.cli", "demo", "--workdir", str(workdir),
                                "--fault", "preprocess:hang"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    try:
        assert process.stdout is not None
        signalled = None
        for line in process.stdout:
            if "RUNNING in Preprocess" in line:
                process.send_signal(signal.SIGTERM)  # as `kill` or a CI runner's cancel sends it
                signalled = time.monotonic()
                break
        out, err = process.communicate(timeout=60)
        assert signalled is not None, f"the run never reached its pre-processing: {err[-3000:]}"
        took = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert "Traceback" not in out + err, err[-3000:]
    assert process.returncode == 130 and "the run stopped with it" in err
    assert took < 20, took

    listed = CliRunner().invoke(app, ["runs", "--workdir", str(workdir), "--json"])
    assert [run["status"] for run in json.loads(listed.stdout)] == ["ABORTED"], listed.output
    assert (workdir / "s3" / "threadline-incomingbucket" / "incoming" / "sample-positions.csv").is_file()
    # The workdir is free again: the next command takes it at once.
    from threadline.twin.workdir_lock import WorkdirLock

    WorkdirLock(workdir).acquire().release()
