"""One twin per test process; each test starts runs by uploading a uniquely named file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import SAMPLE_RUN, start_resume

from threadline.lineage.view import twin_graph
from threadline.twin.faults import Fault
from threadline.twin.runs import RunResult, collect, run_file, wait
from threadline.twin.server import Twin, TwinConfig

ASL = Path(__file__).resolve().parents[2] / "statemachines" / "pipeline.asl.json"
SAMPLE = Path(__file__).resolve().parents[2] / "src" / "threadline" / "data" / "sample-positions.csv"
_visited: set[str] = set()


# Task time limits: far above what a real step takes here, so that a run stuck by a twin bug fails
# in seconds rather than hours. The fault matrix's `hang` cases deploy a shorter limit for their run.
TASK_LIMIT_S = 30
# Lambda's async retries wait 1/600 of AWS's minutes: the tests check that they happen, not how long apart.
ASYNC_RETRY_DELAYS_S = (0.1, 0.2)
# A queue's RUNNABLE alarm threshold below the 0.9 s a capacity-starved job waits in the twin before its
# queue cancels it (RunnableTimeoutSeconds x 0.001), so that the alarm can fire here at all.
RUNNABLE_ALARM_S = 0.5
# The Slack function's backoff between webhook retries, 1/100 of production's: a Slack outage costs each
# notice fractions of a second; the tests count the attempts, not the waits between them.
SLACK_BACKOFF_SCALE = 0.01


@pytest.fixture(scope="session")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    config = TwinConfig(workdir=tmp_path_factory.mktemp("twin"),
                        parameters={"JobTaskTimeoutSeconds": TASK_LIMIT_S, "AnalysisTaskTimeoutSeconds": TASK_LIMIT_S,
                                    "RunnableAlarmSeconds": RUNNABLE_ALARM_S},
                        async_retry_delays_s=ASYNC_RETRY_DELAYS_S, slack_backoff_scale=SLACK_BACKOFF_SCALE)
    # Event-source visibility timeouts stay at the twin's default (1/30): the graph-down tests keep Neptune
    # down for a whole run, and five receives must outlast it on a loaded machine (at 1/180 they did not).
    with Twin(config) as running:
        yield running


@pytest.fixture(scope="session")
def visited() -> set[str]:
    """The states this process's runs took, for the state-machine coverage line of the summary."""
    return _visited


@pytest.fixture
def graph(twin: Twin) -> Any:
    """The production lineage client, pointed at the twin's neptunedata endpoint."""
    return twin_graph(twin)


@pytest.fixture(scope="session")
def sample_run(twin: Twin) -> RunResult:
    """One plain run of the sample, its lineage written, shared by the tests that only read what it did."""
    result = run_file(twin, SAMPLE.read_bytes(), f"incoming/{SAMPLE_RUN}")
    _visited.update(result.path)
    assert twin.event_sources is not None and twin.event_sources.wait_idle(60)
    return result


@pytest.fixture
def run_pipeline(twin: Twin):
    """Upload `body` as incoming/<name>, with faults scoped to that run; return the finished run."""
    added: list[str] = []

    def start(name: str, body: bytes, faults: tuple[str, ...] = ()) -> RunResult:
        stem = name.split(".")[0]
        for spec in faults:
            twin.faults.add(Fault.parse(spec, run_id=stem))
        added.append(stem)
        result = run_file(twin, body, f"incoming/{name}")
        _visited.update(result.path)
        return result

    yield start
    for stem in added:
        twin.faults.clear(run_id=stem)


@pytest.fixture
def resume_pipeline(twin: Twin):
    """Rerun the input of an earlier run, resumed from the lineage graph (once the graph has its lineage)."""

    def resume(earlier: RunResult) -> RunResult:
        assert twin.event_sources is not None and twin.event_sources.wait_idle(60)
        result = collect(twin, wait(twin, start_resume(twin, earlier)))
        _visited.update(result.path)
        assert twin.event_sources.wait_idle(60)
        return result

    return resume


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _visited:
        return
    total = set(json.loads(ASL.read_text())["States"])
    terminalreporter.write_line(
        f"state-machine coverage (this process): {len(_visited & total)}/{len(total)} states visited; "
        f"not visited: {', '.join(sorted(total - _visited)) or 'none'}")
