"""tests/conftest.py's units of work name test modules that exist, and every reader of the restart story."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _scheduling() -> ModuleType:
    spec = importlib.util.spec_from_file_location("test_scheduling", ROOT / "tests" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_shared_set_up_names_a_test_module():
    for path in _scheduling().SHARED_SETUPS:
        assert (ROOT / path).is_file(), path


def test_every_module_that_reads_the_restart_story_is_in_its_unit():
    readers = {str(path.relative_to(ROOT)) for path in (ROOT / "tests").rglob("test_*.py")
               if "(restart_story: Story)" in path.read_text(encoding="utf-8") and path != Path(__file__)}
    shared = _scheduling().SHARED_SETUPS
    assert readers, "no test reads the restart story any more: drop its unit from tests/conftest.py"
    assert {path: shared.get(path) for path in readers} == {path: "the restart story" for path in readers}
