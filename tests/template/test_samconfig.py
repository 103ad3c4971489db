"""samconfig.toml: three environments whose overrides name real template parameters."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
STACKS = {"default": "threadline", "dev": "threadline-dev", "prod": "threadline-prod"}


@pytest.fixture(scope="module")
def samconfig() -> dict[str, Any]:
    with (REPO_ROOT / "samconfig.toml").open("rb") as handle:
        return tomllib.load(handle)


def _overrides(deploy: dict[str, Any]) -> dict[str, str]:
    raw = deploy["parameter_overrides"]
    items = raw if isinstance(raw, list) else shlex.split(raw)
    return dict(item.split("=", 1) for item in items)


@pytest.mark.parametrize("env", sorted(STACKS))
def test_environment(samconfig: dict[str, Any], template: dict[str, Any], env: str) -> None:
    section = samconfig[env]
    assert section["global"]["parameters"]["stack_name"] == STACKS[env]
    deploy = section["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is (env == "prod")
    overrides = _overrides(deploy)
    unknown = set(overrides) - set(template["Parameters"])
    assert not unknown, f"{env}: overrides for parameters the template lacks: {sorted(unknown)}"
    assert overrides["Environment"] == ("prod" if env == "prod" else "dev")
    assert "SlackWebhookUrl" not in overrides, "the webhook is a secret: pass it at deploy time"


def test_prod_pins_an_image_version(samconfig: dict[str, Any]) -> None:
    """Prod repositories are tag-immutable, so prod cannot deploy the mutable 'latest'."""
    overrides = _overrides(samconfig["prod"]["deploy"]["parameters"])
    assert overrides.get("ImageTag", "latest") != "latest"
