"""Headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) for the page tests and the screenshot.

scripts/setup --with-sam installs chromium where it is missing. Without it a
test skips, saying why, except in CI (CI=true), where it fails: the browser
test must run there.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FIXTURE = Path(__file__).with_name("execution.json")


def recorded() -> dict[str, Any]:
    """The recorded twin run (`record_execution.py`): execution, events, definition."""
    return dict(json.loads(FIXTURE.read_text(encoding="utf-8")))


def require_chromium() -> None:
    """Skip (fail in CI) when the browser or its driver is missing."""
    missing = None
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} is missing (scripts/setup --with-sam installs Debian's chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright package is missing (scripts/setup installs requirements-dev.txt)"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser test must run in CI: {missing}")
        pytest.skip(missing)


@contextmanager
def browser_page(width: int = 1500, height: int = 1000) -> Iterator[Any]:
    """A page of a fresh headless Chromium with an empty profile of its own."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver, tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        context = driver.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=FLAGS,
            viewport={"width": width, "height": height})
        try:
            yield context.new_page()
        finally:
            context.close()
