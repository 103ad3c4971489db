"""Fixtures for the template tests: the repository root and the parsed SAM template.

The template is read with cfn-lint's decoder, which understands the CloudFormation
short-form tags (!Ref, !Sub, !GetAtt, !If, ...) and returns them in their long form
({"Ref": ...}, {"Fn::Sub": ...}), so tests compare plain dictionaries.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import background_checks
import pytest
from cfnlint.decode import decode

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML file into plain dicts and lists."""
    template, problems = decode(str(path))
    if problems or template is None:
        raise ValueError(f"{path.name} does not parse: {[str(p) for p in problems or []]}")
    # Round-trip through JSON to drop cfn-lint's node classes (line marks) for plain types.
    return json.loads(json.dumps(template))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="session")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the external checkers as soon as the tests to run are known (see background_checks.py)."""
    background_checks.start_collected(session)
