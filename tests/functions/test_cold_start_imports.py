"""The functions' cold start stays small and quick (issue #16; numbers in bench/README.md).

Structural guards, not timings: a handler module imported as Lambda imports it
pulls in none of the packages that cost most of a cold start, and no function
packages a dependency of its own: boto3, Powertools and slack_sdk are one pinned
copy in the layer, the same versions the twin and these tests run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(p.parent.name for p in (REPO / "functions").glob("*/app.py"))
LAYER = REPO / "layers" / "common"

# Imported on first use instead (threadline_common.aws, threadline_common.slack, record_lineage's
# OpenLineage sender): boto3 and botocore's session and client machinery, Powertools' parameters
# (boto3 underneath), slack_sdk (its package imports the whole Web API client) and urllib.request.
# botocore.exceptions alone is cheap and allowed, for `except ClientError`.
DEFERRED = ("boto3", "botocore.session", "botocore.client", "aws_lambda_powertools.utilities.parameters",
            "slack_sdk", "urllib.request")
# Powertools' event data classes: one import loads every event type; the handlers read the dicts.
UNUSED = ("aws_lambda_powertools.utilities.data_classes",)


def _modules_after_import(function: str) -> set[str]:
    """sys.modules after importing the handler in a fresh interpreter, with the function's folder and the layer
    first on the path as on Lambda (the packages come from this environment, as in the twin)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "functions" / function), str(LAYER)])}
    done = subprocess.run([sys.executable, "-P", "-c", "import sys, json, app; print(json.dumps(sorted(sys.modules)))"],
                          cwd=REPO / "functions" / function, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("function", FUNCTIONS)
def test_handler_import_defers_what_it_does_not_need_yet(function: str) -> None:
    modules = _modules_after_import(function)
    assert "app" in modules and "threadline_common" in modules  # the handler and the layer were imported
    loaded = sorted(m for m in modules if any(m == name or m.startswith(name + ".") for name in DEFERRED + UNUSED))
    assert loaded == [], f"{function}'s init imports {loaded}"


def _requirements(path: Path) -> dict[str, str]:
    """name -> pinned version of each `name==version` line (comments and blanks skipped)."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.relative_to(REPO)}: {line!r} is not pinned"
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


@pytest.mark.parametrize("function", FUNCTIONS)
def test_functions_package_no_dependencies_of_their_own(function: str) -> None:
    assert _requirements(REPO / "functions" / function / "requirements.txt") == {}


def test_layer_pins_the_sdk_the_twin_and_tests_run() -> None:
    layer = _requirements(LAYER / "requirements.txt")
    constraints = _requirements(REPO / "constraints.txt")
    for name in ("boto3", "botocore", "aws-lambda-powertools", "slack-sdk"):
        assert name in layer, f"the layer does not pin {name}"
        assert layer[name] == constraints[name], f"{name}: layer {layer[name]}, constraints.txt {constraints[name]}"
