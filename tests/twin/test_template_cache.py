"""The SAM translation kept between starts: the same as translating afresh, and taken again when its inputs change."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from threadline.twin import template_cache
from threadline.twin.template import load_yaml, translate
from threadline.twin.template_cache import CACHE_DIR_ENV, cache_dir, translated_template

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION, ACCOUNT = "us-east-1", "123456789012"
SMALL_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Handler:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/handler/
      Handler: app.handler
      Runtime: python3.13
  Inbox:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: !Ref TimeoutSeconds
Parameters:
  TimeoutSeconds:
    Type: Number
    Default: 30
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "template.yaml").write_text(SMALL_TEMPLATE)
    return root


@pytest.fixture
def translations(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Counts the real translations made (the roots translated), leaving them as they are."""
    made: list[Path] = []

    def counting(sam_template: dict[str, Any], root: Path, **kwargs: Any) -> Any:
        made.append(root)
        return translate(sam_template, root, **kwargs)

    monkeypatch.setattr(template_cache, "translate", counting)
    return made


def test_the_project_template_from_the_cache_is_its_fresh_translation(tmp_path: Path,
                                                                      translations: list[Path]) -> None:
    fresh, fresh_artifacts = translate(load_yaml(REPO_ROOT / "template.yaml"), REPO_ROOT)
    first = translated_template(REPO_ROOT, REGION, ACCOUNT, tmp_path)
    second, second_artifacts = translated_template(REPO_ROOT, REGION, ACCOUNT, tmp_path)
    assert translations == [REPO_ROOT]  # the second came from disk
    assert first[0] == fresh and second == fresh
    assert second_artifacts == fresh_artifacts
    assert second_artifacts.definitions["PipelineStateMachine"] == REPO_ROOT / "statemachines" / "pipeline.asl.json"


def test_a_changed_template_is_translated_again(project: Path, tmp_path: Path, translations: list[Path]) -> None:
    cache = tmp_path / "cache"
    before, _ = translated_template(project, REGION, ACCOUNT, cache)
    assert "Outbox" not in before["Resources"]
    (project / "template.yaml").write_text(
        SMALL_TEMPLATE.replace("  Inbox:", "  Outbox:\n    Type: AWS::SQS::Queue\n  Inbox:"))
    after, _ = translated_template(project, REGION, ACCOUNT, cache)
    assert "Outbox" in after["Resources"]
    assert len(translations) == 2
    assert len(list(cache.glob("sam-*.json"))) == 2  # one entry per version of the template


def test_the_same_template_elsewhere_names_its_own_folders(project: Path, tmp_path: Path,
                                                          translations: list[Path]) -> None:
    cache = tmp_path / "cache"
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "template.yaml").write_bytes((project / "template.yaml").read_bytes())
    _, here = translated_template(project, REGION, ACCOUNT, cache)
    _, there = translated_template(copy, REGION, ACCOUNT, cache)
    assert here.code_dirs["Handler"] == (project / "functions" / "handler").resolve()
    assert there.code_dirs["Handler"] == (copy / "functions" / "handler").resolve()
    assert translations == [project, copy]


def test_an_unreadable_entry_is_translated_again_and_replaced(project: Path, tmp_path: Path,
                                                              translations: list[Path],
                                                              caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "cache"
    expected, _ = translated_template(project, REGION, ACCOUNT, cache)
    entry, = cache.glob("sam-*.json")
    entry.write_text('{"template": {"Resources": {}}')  # cut short, as by a full disk
    with caplog.at_level(logging.WARNING, logger="threadline.twin"):
        again, _ = translated_template(project, REGION, ACCOUNT, cache)
    assert again == expected
    assert "unreadable template cache entry" in caplog.text
    assert json.loads(entry.read_text())["template"] == expected  # whole again
    assert len(translations) == 2


def test_a_cache_that_cannot_be_written_still_translates(project: Path, tmp_path: Path,
                                                         translations: list[Path]) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be")
    first, _ = translated_template(project, REGION, ACCOUNT, blocked / "cache")
    second, _ = translated_template(project, REGION, ACCOUNT, blocked / "cache")
    assert first == second and "Inbox" in first["Resources"]
    assert len(translations) == 2


def test_the_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv(CACHE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "threadline"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "threadline"


def test_only_the_newest_entries_are_kept(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    for age in range(5):
        old = cache / f"sam-old{age}.json"
        old.write_text("{}")
        os.utime(old, (1_000_000 + age, 1_000_000 + age))
    translated_template(project, REGION, ACCOUNT, cache)  # writes one entry, then prunes
    template_cache.keep_newest(cache, "sam-*.json", count=3)
    kept = sorted(path.name for path in cache.glob("sam-*.json"))
    assert len(kept) == 3 and "sam-old4.json" in kept and "sam-old3.json" in kept
    assert not {"sam-old0.json", "sam-old1.json", "sam-old2.json"} & set(kept)
