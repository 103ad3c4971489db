"""Fixtures shared by the twin tests."""

from __future__ import annotations

import pytest

from restart_story import Story, StoryFailed, told


@pytest.fixture(scope="session")
def restart_story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    """One workdir through three twins (restart_story.py), told once per session for the restart tests."""
    try:
        return told(tmp_path_factory)
    except StoryFailed as exc:
        pytest.fail(str(exc), pytrace=False)
