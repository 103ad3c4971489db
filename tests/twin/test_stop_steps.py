"""A twin's stop shuts its independent parts down at once, and every part even when one fails."""

from __future__ import annotations

import threading

import pytest

from threadline.twin.server import _all_at_once


def test_the_steps_run_at_once() -> None:
    first, second = threading.Event(), threading.Event()

    def one() -> None:
        first.set()
        assert second.wait(5), "the other step never ran beside this one"

    def other() -> None:
        second.set()
        assert first.wait(5), "the other step never ran beside this one"

    _all_at_once([one, None, other])


def test_a_failed_step_leaves_the_others_to_finish_and_its_error_is_raised() -> None:
    finished: list[str] = []

    def fails() -> None:
        raise OSError("port still held")

    def slow() -> None:
        threading.Event().wait(0.2)
        finished.append("slow")

    with pytest.raises(OSError, match="port still held"):
        _all_at_once([fails, slow])
    assert finished == ["slow"]
