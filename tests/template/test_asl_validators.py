"""The state machine passes two ASL validators nobody here wrote: asl-validator and @wmfs/statelint (npm).

`scripts/setup --with-sam` (run by `make test`) installs them into `.tools/asl`. The
definition is checked as SAM deploys it: every `${Substitution}` replaced by a value
of its kind (an ARN, a URL, a name, a number). Both run in the background from the moment
the tests are collected (`background_checks.py`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from background_checks import Check, register, shared_folder

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".tools" / "asl" / "node_modules" / ".bin"
NUMBERS = {"JobTaskTimeoutSeconds": "12600", "AnalysisTaskTimeoutSeconds": "45000"}


def _value(name: str) -> str:
    if name in NUMBERS:
        return NUMBERS[name]
    if name.endswith("FunctionArn"):
        return f"arn:aws:lambda:us-east-1:123456789012:function:threadline-{name}"
    if name.endswith("JobQueueArn"):
        return f"arn:aws:batch:us-east-1:123456789012:job-queue/threadline-{name}"
    if name.endswith("JobDefinitionArn"):
        return f"arn:aws:batch:us-east-1:123456789012:job-definition/threadline-{name}:1"
    if name.endswith("Url"):
        return f"https://sqs.us-east-1.amazonaws.com/123456789012/threadline-{name}"
    return f"threadline-{name.lower()}"


def _deployed_definition(path: Path) -> Path:
    text = (REPO / "statemachines" / "pipeline.asl.json").read_text(encoding="utf-8")
    substituted = re.sub(r"\$\{([A-Za-z0-9]+)\}", lambda m: _value(m.group(1)), text)
    json.loads(substituted)  # still JSON, as Step Functions receives it
    path.write_text(substituted, encoding="utf-8")
    return path


def _validator(name: str, *options: str) -> Check:
    """`name` on the deployed definition, written into the shared folder for it alone."""
    tool = BIN / name
    return register(Check(name, __name__, tool, lambda folder: [
        str(tool), *options, str(_deployed_definition(folder / f"{name}-pipeline.json"))], cwd=REPO, timeout_s=120))


VALIDATORS = {"asl-validator": _validator("asl-validator", "--json-path"), "statelint": _validator("statelint")}


@pytest.mark.parametrize("name", VALIDATORS)
def test_the_state_machine_passes_an_independent_validator(tmp_path_factory: pytest.TempPathFactory,
                                                           name: str) -> None:
    if not (BIN / name).exists():
        pytest.skip(f"{name} is not installed: run scripts/setup --with-sam (make test does)")
    done = VALIDATORS[name].result(shared_folder(tmp_path_factory))
    assert done.returncode == 0, done.stdout + done.stderr
