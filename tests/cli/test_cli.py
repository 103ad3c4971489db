"""The `threadline` command as a user runs it: exit status and what it prints.

The demo's own output is checked with the run it leaves for a resumed run (`test_cli_state.py`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from threadline.cli import app


def threadline(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "threadline.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=180, check=False)


def test_run_of_a_malformed_file_exits_non_zero_with_the_validation_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("position_id,asset,colour\n1,ACME,blue\n")
    done = threadline("run", str(bad), "--workdir", str(tmp_path / "twin"), cwd=tmp_path)

    assert done.returncode == 1
    assert "FAILED" in done.stdout and "ValidationFailed" in done.stdout


@pytest.mark.usefixtures("no_twin_starts")
def test_a_bad_fault_spec_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--fault", "preprocess", "--workdir", str(tmp_path / "twin")])

    assert result.exit_code == 2, result.output
    assert "expected JOB[@QUEUE]:KIND[:ATTEMPTS]" in result.output
    assert not (tmp_path / "twin").exists()
