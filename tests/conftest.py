"""How `pytest -n` shares the tests out: the tests that share an expensive set-up run on one worker.

A module-scoped fixture is built once per worker that runs the module's tests:
a module's tests split over two workers ran its twin runs twice. The restart
story (twin/restart_story.py) is told once per session under a file lock: a
second worker that asked for it sat idle until the first had told it. Each
entry below is one unit of work for xdist; every other test is a unit of its own,
handed out as workers come free (as `--dist load` does).

xdist's own `--dist loadgroup` would read `xdist_group` marks instead, but with
pytest 9.2 it loses the groups (pytest-xdist issue 1386), so the units are named
here, by module.
"""

from __future__ import annotations

from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

SHARED_SETUPS = {  # test module -> the set-up its tests share
    "tests/browser/test_execution_graph_page.py": "a recorded execution",
    "tests/cli/test_readme_commands.py": "the README's commands",
    "tests/jobs/test_jobs_subprocess.py": "a moto server",
    "tests/jobs/test_usage.py": "a moto server and job runs",
    "tests/jobs/test_analysis_sidecar.py": "a moto server",
    "tests/pipeline/test_batch_alarms_pipeline.py": "the alarm runs",
    "tests/pipeline/test_multi_container_pipeline.py": "the multi-container runs",
    "tests/pipeline/test_resume.py": "the earlier runs",
    "tests/twin/test_in_process.py": "a twin",
    "tests/twin/test_job_launcher.py": "a job launcher",
    "tests/twin/test_moto_fixes.py": "the scenario runner",
    "tests/twin/test_restart_continuity.py": "the restart story",
    "tests/twin/test_restored_executions.py": "the restart story",
    "tests/twin/test_twin_state.py": "the restart story",
}


class SharedSetupScheduling(LoadScopeScheduling):
    """xdist's scope scheduling, where a scope is a shared set-up (`SHARED_SETUPS`) or else one test."""

    def _split_scope(self, nodeid: str) -> str:
        return SHARED_SETUPS.get(nodeid.split("::", 1)[0], nodeid)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadScopeScheduling:
    return SharedSetupScheduling(config, log)
