"""Lineage read from the graph through the same neptunedata client code the cloud uses."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

LAYER = Path(__file__).resolve().parents[2] / "layers" / "common"


def layer_modules() -> None:
    """Make the shared layer importable, as Lambda does from /opt/python."""
    if str(LAYER) not in sys.path:
        sys.path.insert(0, str(LAYER))


def twin_graph(twin: Any) -> Any:
    """The production lineage client (`NeptuneCypher` over boto3 neptunedata), pointed at the twin's endpoint."""
    layer_modules()
    from threadline_common.lineage.neptune import NeptuneCypher

    return NeptuneCypher(twin.session.client("neptunedata", endpoint_url=twin.neptune.url))


def lineage_summary(twin: Any, run_id: str) -> list[str]:
    """A few lines about the run's lineage: its attempts in order and what they read and wrote."""
    layer_modules()
    if getattr(twin, "event_sources", None) is not None:
        twin.event_sources.wait_idle(timeout=30)  # lineage events travel through a queue
    from threadline_common.lineage.reader import run_datasets, run_summary

    runner = twin_graph(twin)
    summary = run_summary(runner, run_id)
    if summary is None:
        return [f"no lineage recorded for {run_id}"]
    run = summary["run"]
    lines = [f"run {run_id}: {run.get('status')} ({len(summary['attempts'])} step attempts)"]
    for attempt in summary["attempts"]:
        if attempt.get("status") == "REUSED":
            lines.append(f"  {attempt.get('step')}: REUSED (not run) - {attempt.get('status_reason')}")
            continue
        reason = "" if attempt.get("status") == "SUCCEEDED" else (attempt.get("status_reason") or "")
        lines.append(f"  {attempt.get('step')}#{attempt.get('attempt')} on {attempt.get('capacity')}: "
                     f"{attempt.get('status')} {reason}".rstrip())
    datasets = run_datasets(runner, run_id)
    lines.append(f"  {sum(1 for d in datasets if d['rel'] == 'CONSUMED')} consumed / "
                 f"{sum(1 for d in datasets if d['rel'] == 'PRODUCED')} produced dataset links")
    return lines
