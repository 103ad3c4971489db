"""A small read API over the lineage graph, for the CLI and the tests."""

from __future__ import annotations

from typing import Any

from . import queries
from .neptune import CypherRunner


def run_summary(runner: CypherRunner, run_id: str) -> dict[str, Any] | None:
    """The run and its step attempts in pipeline order (None when the run is unknown)."""
    rows = runner.run(queries.RUN, {"run_id": run_id})
    if not rows:
        return None
    return {"run": rows[0], "attempts": runner.run(queries.RUN_ATTEMPTS, {"run_id": run_id})}


def attempt_links(runner: CypherRunner, run_id: str) -> list[dict[str, Any]]:
    """RETRY_OF / FALLBACK_OF / FOLLOWED_BY edges between the run's attempts: {src, rel, dst}."""
    rows = runner.run(queries.RUN_ATTEMPT_LINKS, {"run_id": run_id})
    return sorted(rows, key=lambda row: (row["rel"], row["src"], row["dst"]))


def run_datasets(runner: CypherRunner, run_id: str) -> list[dict[str, Any]]:
    """What the run and its attempts consumed and produced: {node, rel, dataset_id, uri, kind, ...}."""
    rows = runner.run(queries.RUN_DATASETS, {"run_id": run_id})
    return sorted(rows, key=lambda row: (row["node"], row["rel"], row["dataset_id"]))


def attempt_history(runner: CypherRunner, attempt_id: str) -> list[dict[str, Any]]:
    """The attempts an attempt retried or fell back from, earliest first."""
    return runner.run(queries.ATTEMPT_HISTORY, {"attempt_id": attempt_id})


def runs_for_input(runner: CypherRunner, uri: str) -> list[dict[str, Any]]:
    """Every run that read the object at `uri` (any version)."""
    return runner.run(queries.RUNS_FOR_INPUT, {"uri": uri})
