"""A run's lineage in a running twin, read through the same neptunedata client code the cloud uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .clients import GraphClient

if TYPE_CHECKING:
    from threadline_common.lineage.neptune import NeptuneCypher
    from threadline_common.lineage.reader import Attempt, DatasetLink, Run

    from ..twin.server import Twin


def twin_graph(twin: Twin) -> NeptuneCypher:
    """The production lineage client (`NeptuneCypher` over boto3 neptunedata), pointed at the twin's endpoint."""
    return GraphClient.of_twin(twin).cypher()


@dataclass(frozen=True)
class RunLineage:
    """What the graph holds about one run: the run, its step attempts in order, its dataset links."""

    run_id: str
    run: Run
    attempts: tuple[Attempt, ...]
    datasets: tuple[DatasetLink, ...]


def run_lineage(twin: Twin, run_id: str) -> RunLineage | None:
    """The run's lineage once the twin has written it (lineage events travel through a queue); None if none."""
    from threadline_common.lineage.reader import run_datasets, run_summary

    if twin.event_sources is not None:
        twin.event_sources.wait_idle(timeout=30)
    graph = twin_graph(twin)
    summary = run_summary(graph, run_id)
    if summary is None:
        return None
    return RunLineage(run_id, summary.run, summary.attempts, tuple(run_datasets(graph, run_id)))
