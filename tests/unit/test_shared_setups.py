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


def test_every_shared_set_up_names_a_test_module_or_folder():
    scheduling = _scheduling()
    for path in scheduling.SHARED_SETUPS:
        assert (ROOT / path).is_file(), path
    for folder in scheduling.SHARED_FOLDERS:
        assert (ROOT / folder).is_dir() and any((ROOT / folder).glob("test_*.py")), folder


def test_a_shared_folder_is_one_unit_and_other_tests_are_their_own():
    unit_of = _scheduling().unit_of
    assert unit_of("tests/pipeline/test_paths.py::test_a") == unit_of("tests/pipeline/test_resume.py::test_b")
    assert unit_of("tests/unit/test_x.py::test_a") != unit_of("tests/unit/test_x.py::test_b")


def test_every_module_that_reads_the_restart_story_is_in_its_unit():
    readers = {str(path.relative_to(ROOT)) for path in (ROOT / "tests").rglob("test_*.py")
               if "(restart_story: Story)" in path.read_text(encoding="utf-8") and path != Path(__file__)}
    unit_of = _scheduling().unit_of
    assert readers, "no test reads the restart story any more: drop its unit from tests/conftest.py"
    assert {unit_of(f"{path}::test") for path in readers} == {"the restart story"}
