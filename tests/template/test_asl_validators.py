"""The state machine passes two ASL validators nobody here wrote: asl-validator and @wmfs/statelint (npm).

`scripts/setup --with-sam` (run by `make test`) installs them into `.tools/asl`. The
definition is checked as SAM deploys it: every `${Substitution}` replaced by a value
of its kind (an ARN, a URL, a name, a number).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def deployed_definition(tmp_path_factory: pytest.TempPathFactory) -> Path:
    text = (REPO / "statemachines" / "pipeline.asl.json").read_text(encoding="utf-8")
    substituted = re.sub(r"\$\{([A-Za-z0-9]+)\}", lambda m: _value(m.group(1)), text)
    json.loads(substituted)  # still JSON, as Step Functions receives it
    path = tmp_path_factory.mktemp("asl") / "pipeline.json"
    path.write_text(substituted, encoding="utf-8")
    return path


@pytest.mark.parametrize("command", [["asl-validator", "--json-path"], ["statelint"]],
                         ids=["asl-validator", "statelint"])
def test_the_state_machine_passes_an_independent_validator(deployed_definition: Path, command: list[str]) -> None:
    tool = BIN / command[0]
    if not tool.exists():
        pytest.skip(f"{command[0]} is not installed: run scripts/setup --with-sam (make test does)")
    done = subprocess.run([str(tool), *command[1:], str(deployed_definition)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
