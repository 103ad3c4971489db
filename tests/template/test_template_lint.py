"""The template passes `sam validate --lint` (pinned SAM CLI) and cfn-lint."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from cfnlint.api import lint_file

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
SAM_BIN = REPO_ROOT / ".tools" / "sam" / "bin" / "sam"
SAM_REQUIREMENTS = REPO_ROOT / "requirements-sam.txt"
SETUP_HINT = (
    "the pinned SAM CLI is missing at .tools/sam/bin/sam: run `scripts/setup --with-sam` "
    "(it installs requirements-sam.txt into its own virtualenv)"
)


def _sam() -> Path:
    if not SAM_BIN.exists():
        pytest.fail(SETUP_HINT)
    return SAM_BIN


def _run_sam(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    return subprocess.run(
        [str(_sam()), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_sam_cli_matches_the_pin() -> None:
    pins = dict(
        line.split("==", 1)
        for line in SAM_REQUIREMENTS.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    assert "aws-sam-cli" in pins, "requirements-sam.txt must pin aws-sam-cli"
    result = _run_sam("--version")
    assert result.returncode == 0, result.stderr
    found = re.search(r"version (\S+)", result.stdout)
    assert found and found.group(1) == pins["aws-sam-cli"].strip(), result.stdout


def test_sam_validate_lint_passes() -> None:
    result = _run_sam("validate", "--lint", "--template", str(TEMPLATE_PATH), "--region", "us-east-1")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "is a valid SAM Template" in output, output


def test_cfn_lint_reports_nothing() -> None:
    """No errors and no warnings (informational checks stay off, as in the CLI default)."""
    matches = lint_file(Path(TEMPLATE_PATH))
    assert not matches, "\n".join(str(m) for m in matches)
