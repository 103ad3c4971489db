"""Small helpers the pipeline tests share."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


def until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """`condition()`'s first truthy value, polled every 0.1 s; the test fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    value = condition()  # one last look, however slow the machine
    if not value:
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
    return value
