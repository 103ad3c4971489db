"""The template passes `sam validate --lint` (pinned SAM CLI): SAM's checks, then cfn-lint with its defaults.

It runs in the background from the moment the tests are collected (`background_checks.py`). Its
cfn-lint is the one pinned in requirements-sam.txt, the version the template tests read the template
with; it fails on any match, error or warning, so a separate cfn-lint run would check nothing more.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from background_checks import Check, register, shared_folder

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


SAM_ENV = {"SAM_CLI_TELEMETRY": "0"}

SAM_VALIDATE = register(Check(
    "sam-validate-lint", __name__, SAM_BIN,
    lambda _: [str(SAM_BIN), "validate", "--lint", "--template", str(TEMPLATE_PATH), "--region", "us-east-1"],
    cwd=REPO_ROOT, env=SAM_ENV, timeout_s=300))



def _run_sam(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **SAM_ENV}
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


def test_sam_validate_lint_passes(tmp_path_factory: pytest.TempPathFactory) -> None:
    _sam()
    result = SAM_VALIDATE.result(shared_folder(tmp_path_factory))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "is a valid SAM Template" in output, output


def test_sam_lints_with_the_cfn_lint_the_tests_pin() -> None:
    def pin(requirements: Path) -> str | None:
        found = re.search(r"^cfn-lint==(\S+)", requirements.read_text(), re.MULTILINE)
        return found.group(1) if found else None

    assert pin(SAM_REQUIREMENTS) is not None, "requirements-sam.txt must pin cfn-lint"
    assert pin(SAM_REQUIREMENTS) == pin(REPO_ROOT / "tests" / "requirements.txt")
