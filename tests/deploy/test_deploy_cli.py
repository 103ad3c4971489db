"""`threadline deploy` on the command line: the dry run from a clone, and the builder choice."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from threadline.cli.app import app
from threadline.deploy import engine


def test_a_dry_run_of_prod_needs_no_account_and_lists_every_step(project: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(project / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(project / "no-credentials"))

    result = CliRunner().invoke(app, ["deploy", "--env", "prod", "--dry-run", "--builder", "codebuild",
                                      "--project", str(project)])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("threadline deploy: stack threadline-prod (prod), images built by CodeBuild (dry run")
    assert sum(line.startswith("[") for line in lines) == 8
    assert "aws cloudformation CreateStack StackName=threadline-prod" in result.output
    assert result.output.count("aws codebuild StartBuild") == 4
    deploy_line = next(line for line in lines if " deploy --config-env prod " in line)
    for parameter in ("PreprocessImageDigest", "AnalysisImageDigest", "PostprocessImageDigest", "Environment=prod"):
        assert parameter in deploy_line
    assert "smoke test: aws s3 cp src/threadline/data/sample-positions.csv" in lines[-1]


def test_the_local_builder_without_an_engine_is_refused(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "answering_engine", lambda: None)
    result = CliRunner().invoke(app, ["deploy", "--env", "dev", "--dry-run", "--builder", "local",
                                      "--project", str(project)])
    assert result.exit_code == 2
    assert "no container engine answers" in result.output


def test_auto_takes_the_engine_that_answers(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.shutil, "which", lambda name: f"/usr/bin/{name}" if name == "podman" else None)
    probes: list[list[str]] = []
    monkeypatch.setattr(engine, "probe_process", lambda argv, stdin: probes.append(list(argv)) or 0)
    result = CliRunner().invoke(app, ["deploy", "--env", "dev", "--dry-run", "--project", str(project)])
    assert result.exit_code == 0, result.output
    assert probes == [["podman", "info"]]
    assert "images built with podman" in result.output.splitlines()[0]
    assert "$ podman build --platform linux/amd64" in result.output
