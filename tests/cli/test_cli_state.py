"""The workdir remembers: `run --json`, a resumed run after a restart, `runs`, `open`, and SIGTERM mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "threadline" / "data" / "sample-positions.csv"


def threadline(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER")}
    return subprocess.run([sys.executable, "-m", "threadline.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=240, check=False, env=env)


def test_a_run_then_a_resumed_run_in_a_new_twin_then_runs_and_open(tmp_path: Path) -> None:
    workdir = tmp_path / "twin"
    first = threadline("run", str(SAMPLE), "--workdir", str(workdir), "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    result = json.loads(first.stdout)  # stdout is the one JSON result, nothing else
    assert result["status"] == "SUCCEEDED" and result["path"][-1] == "RunSucceeded"
    assert result["seconds"]["twin_start"] > 0 and result["seconds"]["run"] >= result["seconds"]["execution"] > 0
    labelled = {output["label"]: output for output in result["outputs"] if output["label"]}
    assert set(labelled) == {"report", "validation report"}
    for output in result["outputs"]:
        assert output["s3"].startswith("s3://") and Path(output["local"]).is_file(), output
    report = Path(labelled["report"]["local"])
    assert report.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")

    # A new twin: the file is still in the incoming bucket, so --resume starts only the resumed run.
    resumed = threadline("run", str(SAMPLE), "--workdir", str(workdir), "--resume", "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again = json.loads(resumed.stdout)
    assert again["status"] == "SUCCEEDED" and "first_run" not in again
    assert again["run_id"].startswith(result["run_id"] + "-r")
    # Every step is reused: the first twin's outputs are still there for the planner to find.
    assert "MarkRunReused" in again["path"] and not {"Preprocess", "Analysis", "Postprocess"} & set(again["path"])
    saved = {name: json.loads((workdir / "state" / "executions" / f"{name}.json").read_text(encoding="utf-8"))
             for name in (result["run_id"], again["run_id"])}
    sources = [json.loads(record["execution"]["input"])["source"] for record in saved.values()]
    assert sources[0] == sources[1]  # the same object version, as the start function described it
    reused = {output["label"]: output for output in again["outputs"] if output["label"]}
    assert reused["report"]["local"] == str(report) and report.is_file()  # the report it reused is the first's

    listed = threadline("runs", "--workdir", str(workdir), "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert [(run["run_id"], run["status"]) for run in runs] == [(result["run_id"], "SUCCEEDED"),
                                                                (again["run_id"], "SUCCEEDED")]
    assert runs[0]["input"] == "s3://threadline-incomingbucket/incoming/sample-positions.csv"
    assert runs[0]["seconds"] > 0 and runs[0]["report"] == str(report)

    table = threadline("runs", "--workdir", str(workdir), cwd=tmp_path)
    assert result["run_id"] in table.stdout and "SUCCEEDED" in table.stdout

    opened = threadline("open", result["run_id"], "--workdir", str(workdir), cwd=tmp_path)  # no browser here
    assert opened.returncode == 0 and opened.stdout.strip() == str(report)
    latest = threadline("open", "--workdir", str(workdir), "--print", cwd=tmp_path)  # the resumed run's
    assert latest.returncode == 0 and latest.stdout.strip() == str(report)
    unknown = threadline("open", "no-such-run", "--workdir", str(workdir), cwd=tmp_path)
    assert unknown.returncode == 1 and "no run no-such-run" in unknown.stderr and "Traceback" not in unknown.stderr


def test_sigterm_mid_run_stops_promptly_and_leaves_the_workdir_reusable(tmp_path: Path) -> None:
    workdir = tmp_path / "twin"
    process = subprocess.Popen([sys.executable, "-m", "threadline.cli", "demo", "--workdir", str(workdir)],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "RUNNING in Preprocess" in line:
                process.send_signal(signal.SIGTERM)  # as `kill` or a CI runner's cancel sends it
                signalled = time.monotonic()
                break
        out, err = process.communicate(timeout=60)
        took = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert "Traceback" not in out + err, err[-3000:]
    assert process.returncode == 130 and "the run stopped with it" in err
    assert took < 20, took

    listed = threadline("runs", "--workdir", str(workdir), "--json", cwd=tmp_path)
    assert [run["status"] for run in json.loads(listed.stdout)] == ["ABORTED"]
    assert (workdir / "s3" / "threadline-incomingbucket" / "incoming" / "sample-positions.csv").is_file()
    # The workdir is free again: the next command takes it at once.
    from threadline.twin.workdir_lock import WorkdirLock

    WorkdirLock(workdir).acquire().release()
