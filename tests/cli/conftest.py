"""What the command-line tests share: in-process commands that must not start a twin, and an AWS-less environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

AWS_VARIABLES = ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                 "AWS_SESSION_TOKEN")


@pytest.fixture
def no_twin_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command run in this process that should stop before its twin starts fails the test if it gets that far.

    Error paths are tested in process (no interpreter to start, no twin to wait
    for); without this, a command that wrongly went on would start a twin here
    and end the whole test process when it exits.
    """
    from threadline.twin.server import Twin

    def refuse(self: Any) -> Any:
        raise AssertionError("the command started a twin")

    monkeypatch.setattr(Twin, "start", refuse)


@pytest.fixture
def no_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS region, profile or credentials anywhere (each command makes its own session, which reads these)."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-creds"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
