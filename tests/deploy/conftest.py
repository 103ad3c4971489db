"""Fixtures for the deploy tests: moto in process and a copy of the project to change."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from deploy_fakes import REGION

from threadline.deploy.context import context_files

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    """moto in process; yields the session the deploy uses."""
    from moto import mock_aws

    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield boto3.Session(region_name=REGION)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The files a deploy reads (template, samconfig, the jobs' build context), copied so tests can edit them."""
    for name in ("template.yaml", "samconfig.toml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    context = REPO_ROOT / "jobs"
    for relative in context_files(context):
        target = tmp_path / "jobs" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(context / relative, target)
    return tmp_path
