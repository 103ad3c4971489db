"""The `threadline` command as a user runs it: exit status and what it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def threadline(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "threadline.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=180, check=False)


def test_demo_succeeds_and_reports_path_outputs_record_slack_and_lineage(tmp_path):
    done = threadline("demo", "--workdir", str(tmp_path / "twin"), cwd=tmp_path)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for expected in ("SUCCEEDED", "Preprocess", "Analysis", "Postprocess", "report.html",
                     "DynamoDB run record", "Slack (2 messages", "lineage", "execution graph"):
        assert expected in out, expected
    assert list((tmp_path / "twin" / "executions").glob("*.html"))
    # Watched as it ran (no terminal here: one line per change).
    for expected in ("RUNNING in Preprocess (Task)", "left Preprocess after", "RUNNING in Analysis (Task)"):
        assert expected in out, expected
    assert re.search(r"batch preprocess-\S+ SUCCEEDED on threadline-SpotJobQueue \(SPOT\), attempt 1", out), out
    assert re.search(r"batch analysis-\S+ \w+ on threadline-GpuJobQueue \(EC2\)\S*( attempt 1,)? 2 nodes", out), out
    # The report and the validation report open as local files.
    for label, name in (("report", "report.html"), ("validation report", "validation.json")):
        found = re.search(rf"^{label}: s3://\S+/{name}\n  open: (\S+)$", out, re.MULTILINE)
        assert found, label
        assert Path(found.group(1)).is_file() and Path(found.group(1)).stat().st_size > 0


def test_run_of_a_malformed_file_exits_non_zero_with_the_validation_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("position_id,asset,colour\n1,ACME,blue\n")
    done = threadline("run", str(bad), "--workdir", str(tmp_path / "twin"), cwd=tmp_path)

    assert done.returncode == 1
    assert "FAILED" in done.stdout and "ValidationFailed" in done.stdout


def test_a_bad_fault_spec_is_a_usage_error(tmp_path):
    done = threadline("demo", "--fault", "preprocess", "--workdir", str(tmp_path / "twin"), cwd=tmp_path)

    assert done.returncode == 2
    assert "expected JOB[@QUEUE]:KIND[:ATTEMPTS]" in done.stdout + done.stderr
