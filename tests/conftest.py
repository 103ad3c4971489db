"""How `pytest -n` shares the tests out: tests that share a set-up in one process run on one worker.

Three folders share in-process set-ups across their modules and rely on running
in collection order around them: the pipeline tests share one twin for the
session, the lineage tests one moto server, and the job tests' moto server and
`mock_aws` fixtures share moto's process-wide state. Each folder is one unit of
work for xdist. So is each module below whose tests share a module-scoped
fixture (built once per worker that runs any of its tests), and the restart
story (twin/restart_story.py), told once per session under a file lock: a
second worker that asked for it sat idle until the first had told it. Every
other test is a unit of its own, handed out as workers come free.

xdist's own `--dist loadgroup` would read `xdist_group` marks instead, but with
pytest 9.2 it loses the groups (pytest-xdist issue 1386), so the units are named
here.

The twins the tests start (in this process and in the commands they run) keep
their start cache in the checkout's own `.cache/threadline`, not in the user's
home folder, unless THREADLINE_CACHE_DIR names another.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

from threadline.twin.template_cache import CACHE_DIR_ENV

os.environ.setdefault(CACHE_DIR_ENV, str(Path(__file__).resolve().parents[1] / ".cache" / "threadline"))

SHARED_FOLDERS = ("tests/jobs/", "tests/lineage/", "tests/pipeline/")  # one unit each
SHARED_SETUPS = {  # test module -> the set-up its tests share
    "tests/browser/test_execution_graph_page.py": "a recorded execution",
    "tests/cli/test_readme_commands.py": "the README's commands",
    "tests/twin/test_in_process.py": "a twin",
    "tests/twin/test_job_launcher.py": "a job launcher",
    "tests/twin/test_moto_fixes.py": "the scenario runner",
    "tests/twin/test_restart_continuity.py": "the restart story",
    "tests/twin/test_restored_executions.py": "the restart story",
    "tests/twin/test_twin_state.py": "the restart story",
}


def unit_of(nodeid: str) -> str:
    """The unit of work a test belongs to: its folder's, its module's set-up's, or its own."""
    path = nodeid.split("::", 1)[0]
    folder = next((folder for folder in SHARED_FOLDERS if path.startswith(folder)), None)
    return folder or SHARED_SETUPS.get(path, nodeid)


class SharedSetupScheduling(LoadScopeScheduling):
    """xdist's scope scheduling, where a scope is a unit of work (`unit_of`)."""

    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadScopeScheduling:
    return SharedSetupScheduling(config, log)
