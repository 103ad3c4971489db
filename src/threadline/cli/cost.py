"""`threadline cost`: what the runs of a time window cost, by step, by team and by capacity type.

It reads the `cost` each finished run's record holds (docs/design.md, "Cost per
run"): from the twin's workdir by default, like `threadline runs`, or from the
run table of a deployed stack with `--table`.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..cost_report import CostSummary, saved_records, summarise, table_records
from ..rightsizing_report import summarise_rightsizing
from .console import console

BAR_WIDTH = 30


SinceOption = Annotated[str, typer.Option(help="How far back: 7d, 24h, 30m, 2w or an ISO date.")]
WorkdirOption = Annotated[Path, typer.Option(help="The twin's folder, read when no --table is given.")]
TableOption = Annotated[str | None, typer.Option(help="The RunTable of a deployed stack (read with AWS credentials).")]
RegionOption = Annotated[str | None, typer.Option(help="The AWS region of --table.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the totals as one JSON object.")]


def cost(since: SinceOption = "7d", workdir: WorkdirOption = Path(".threadline"), table: TableOption = None,
         region: RegionOption = None, as_json: JsonOption = False) -> None:
    """Compute cost of the runs finished since a moment: by step, team and capacity, with Spot savings."""
    from threadline_common.lineage.reader import parse_since

    try:
        moment = datetime.fromisoformat(parse_since(since).replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if table:
        import boto3

        records = table_records(boto3.client("dynamodb", region_name=region), table)
    else:
        records = saved_records(workdir)
    summary = summarise(records, moment)
    sizing = summarise_rightsizing(records, moment)
    if as_json:
        sys.stdout.write(json.dumps({**summary.to_dict(), "rightsizing": sizing}, indent=2) + "\n")
        return
    show(console, summary)
    if sizing:
        console.print(rightsizing_table(sizing))
        for line in rightsizing_reasons(sizing):
            console.print(line, highlight=False)


def show(out: Console, summary: CostSummary) -> None:
    """The totals, then one bar chart per grouping."""
    if not summary.runs:
        out.print(f"no priced runs since {summary.since}")
        return
    if summary.runs_without_savings == summary.runs:
        savings = "Spot savings unknown: no Spot price pinned"
    else:
        savings = f"Spot saved {usd(summary.spot_savings)}"
        if summary.runs_without_savings:
            savings += f" (unknown for {summary.runs_without_savings} run(s): no Spot price pinned)"
    out.print(f"{summary.runs} run(s) since {summary.since}: {usd(summary.total)} "
              f"(all On-Demand: {usd(summary.on_demand)}; {savings})", highlight=False)
    if summary.unpriced_attempts:
        out.print(f"[yellow]{summary.unpriced_attempts} attempt(s) could not be priced[/]")
    for title, totals in (("by step", summary.by_step), ("by team", summary.by_team),
                          ("by capacity", summary.by_capacity)):
        out.print(bar_chart(title, totals))


def bar_chart(title: str, totals: dict[str, float]) -> Table:
    """A table of name, USD and a bar as long as the value's share of the largest."""
    chart = Table(title=title, title_justify="left", show_edge=False, box=None, pad_edge=False)
    chart.add_column("", no_wrap=True)
    chart.add_column("USD", justify="right", no_wrap=True)
    chart.add_column("", no_wrap=True)
    largest = max(totals.values(), default=0.0)
    for name, value in sorted(totals.items(), key=lambda item: -item[1]):
        length = round(BAR_WIDTH * value / largest) if largest > 0 else 0
        chart.add_row(name, f"{value:.6f}", "█" * length)
    return chart


def rightsizing_table(sizing: dict[str, dict[str, Any]]) -> Table:
    """Per step: the request, the window's peak memory and median CPU use, and the suggested request."""
    table = Table(title="Right-sizing", title_justify="left", show_edge=False, box=None, pad_edge=False)
    for column in ("step", "runs", "request", "peak MiB", "median vCPUs", "suggest"):
        table.add_column(column, no_wrap=True)
    for step, entry in sizing.items():
        request = entry["request"] or {}
        asked = f"{request['vcpus']:g} vCPU, {request['memory_mib']} MiB" if request else "-"
        changes = [f"{entry['suggested_vcpus']} vCPU" if entry["suggested_vcpus"] else "",
                   f"{entry['suggested_memory_mib']} MiB" if entry["suggested_memory_mib"] else ""]
        table.add_row(step, str(entry["runs"]), asked, _figure(entry["peak_memory_mib"], ".0f"),
                      _figure(entry["median_cpu_vcpus"], ".2f"), ", ".join(c for c in changes if c) or "keep")
    return table


def rightsizing_reasons(sizing: dict[str, dict[str, Any]]) -> list[str]:
    """Why each suggestion, a line each under the table (a column of sentences would not fit a terminal)."""
    return [f"  {step}: {note}" for step, entry in sizing.items() for note in entry["notes"]]


def _figure(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def usd(value: float) -> str:
    return f"${value:.6f}"
