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


@pytest.mark.parametrize("env", sorted(STACKS))
def test_image_digests_come_from_the_deploy_not_from_samconfig(samconfig: dict[str, Any], env: str) -> None:
    """`threadline deploy` adds the digests of the images it pushed; one written here would go stale."""
    overrides = _overrides(samconfig[env]["deploy"]["parameters"])
    assert not [name for name in overrides if name.endswith("ImageDigest")]
