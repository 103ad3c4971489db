"""A run's lineage graph as one self-contained HTML page (inline SVG and CSS, no scripts, no fetches).

Columns run left to right in pipeline order: what a step read, the step's
attempts (retries and fallbacks stacked), what it wrote. Hovering a box shows
its details (image, parameters, cache key, reason); the table below lists the
attempts in order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from typing import Any

from threadline_common import pipeline
from threadline_common.lineage.reader import DatasetLink, ReportAttempt, RunReport

from ..text import short

BOX_W, BOX_H, COL_GAP, ROW_GAP, MARGIN = 250, 46, 70, 16, 24
LABEL_CHARS = 34  # what a box's line holds
STATUS_COLOURS = {"SUCCEEDED": "#2e7d32", "FAILED": "#c62828", "REUSED": "#6a1b9a", "RUNNING": "#1565c0"}
EDGE_STYLES = {
    "CONSUMED": ("#607d8b", ""), "PRODUCED": ("#2e7d32", ""), "CONTAINS": ("#9e9e9e", "2,3"),
    "RETRY_OF": ("#ef6c00", "6,3"), "FALLBACK_OF": ("#c62828", "6,3"), "FOLLOWED_BY": ("#455a64", "1,3"),
    "REUSED": ("#6a1b9a", "6,3"),
}


@dataclass(frozen=True)
class _Elsewhere:
    """The attempt of an earlier run whose outputs a REUSED attempt stands for."""

    attempt_id: str
    step: str | None
    run_id: str | None
    status: str = "SUCCEEDED"


type Node = ReportAttempt | DatasetLink | _Elsewhere  # a box: an attempt of the run, a dataset, an earlier attempt


def render(report: RunReport) -> str:
    """The page for a `reader.run_report` result."""
    nodes, edges = _graph(report)
    columns = _columns(nodes, edges)
    positions = _layout(columns)
    width = MARGIN * 2 + max(1, len(columns)) * (BOX_W + COL_GAP) - COL_GAP
    height = MARGIN * 2 + max([len(c) for c in columns] or [1]) * (BOX_H + ROW_GAP)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="lineage graph">',
           '<defs>' + "".join(
               f'<marker id="arrow-{rel}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
               f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
               for rel, (colour, _) in EDGE_STYLES.items()) + '</defs>']
    for src, rel, dst in edges:
        if src in positions and dst in positions:
            svg.append(_edge(positions[src], positions[dst], rel))
    for node_id, node in nodes.items():
        if node_id in positions:
            svg.append(_box(positions[node_id], node))
    svg.append("</svg>")
    run = report.run
    title = f"lineage of run {run.run_id}"
    return "\n".join([
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{escape(title)}</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:24px;color:#263238}"
        "table{border-collapse:collapse;margin-top:16px}td,th{border:1px solid #cfd8dc;padding:4px 8px;"
        "text-align:left;vertical-align:top}th{background:#eceff1}.box text{font:12px system-ui,sans-serif}"
        ".legend span{display:inline-block;margin-right:14px}.graph{overflow:auto;border:1px solid #eceff1}"
        "code{font-size:12px}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>status <b>{escape(str(run.status))}</b>, started {escape(str(run.started_at))}, "
        f"ended {escape(str(run.ended_at))}"
        + (f", error <b>{escape(str(run.error))}</b>" if run.error else "") + "</p>",
        '<p class="legend">' + "".join(
            f'<span style="color:{colour}">&#9632; {escape(status.lower())}</span>'
            for status, colour in STATUS_COLOURS.items()) + "".join(
            f'<span style="color:{colour}">&#8594; {escape(rel.lower().replace("_", " "))}</span>'
            for rel, (colour, _) in EDGE_STYLES.items()) + "</p>",
        '<div class="graph">', *svg, "</div>",
        _attempt_table(report.attempts),
        "</body></html>",
    ])


def _graph(report: RunReport) -> tuple[dict[str, Node], list[tuple[str, str, str]]]:
    nodes: dict[str, Node] = {}
    edges: list[tuple[str, str, str]] = []
    for attempt in report.attempts:
        nodes[attempt.attempt_id] = attempt
    datasets: dict[str, DatasetLink] = {}
    for row in report.datasets:
        datasets.setdefault(row.dataset_id, row)
        nodes.setdefault(row.dataset_id, row)
        if row.rel == "CONSUMED":
            edges.append((row.dataset_id, "CONSUMED", row.node))
        elif row.rel == "PRODUCED":
            edges.append((row.node, "PRODUCED", row.dataset_id))
    produced = {dst for _, rel, dst in edges if rel == "PRODUCED"}
    for row in report.datasets:
        if row.rel == "CONTAINS":
            holder = next((p for p in produced if row.uri.startswith(datasets[p].uri)), None)
            if holder is not None:
                edges.append((holder, "CONTAINS", row.dataset_id))
    for link in report.links:
        edges.append((link.src, link.rel, link.dst))
    for attempt in report.attempts:
        if attempt.reused_attempt:
            elsewhere = _Elsewhere(attempt.reused_attempt, attempt.step, attempt.reused_run)
            nodes.setdefault(attempt.reused_attempt, elsewhere)
            edges.append((attempt.attempt_id, "REUSED", attempt.reused_attempt))
    run_id = report.run.run_id
    nodes = {k: v for k, v in nodes.items() if k != run_id}
    edges = [e for e in edges if e[0] != run_id and e[2] != run_id]
    return nodes, edges


def _columns(nodes: dict[str, Node], edges: list[tuple[str, str, str]]) -> list[list[str]]:
    """Attempts in odd columns by step order; datasets one column before their first reader or after their writer."""
    steps: list[str | None] = []
    for node in nodes.values():
        if not isinstance(node, DatasetLink) and node.step not in steps:
            steps.append(node.step)
    steps.sort(key=lambda s: (_step_position(s), s or ""))
    rank: dict[str, int] = {}
    for node_id, node in nodes.items():
        if not isinstance(node, DatasetLink):
            rank[node_id] = 2 * steps.index(node.step) + 1
    for src, rel, dst in edges:
        if rel == "PRODUCED" and src in rank:
            rank[dst] = max(rank.get(dst, 0), rank[src] + 1)
    for src, rel, dst in edges:
        if rel == "CONTAINS" and src in rank:
            rank.setdefault(dst, rank[src])
    for src, rel, dst in edges:
        if rel == "CONSUMED" and dst in rank and src not in rank:
            rank[src] = rank[dst] - 1
    for node_id in nodes:
        rank.setdefault(node_id, 0)
    width = max(rank.values(), default=0) + 1
    columns: list[list[str]] = [[] for _ in range(width)]
    for node_id in sorted(nodes, key=lambda n: _place(n, nodes[n])):
        columns[rank[node_id]].append(node_id)
    return [c for c in columns if c]


def _place(node_id: str, node: Node) -> tuple[int, str]:
    """Where a node goes in its column: the run's attempts in pipeline order, datasets by URI."""
    seq = node.seq if isinstance(node, ReportAttempt) else None
    uri = node.uri if isinstance(node, DatasetLink) else None
    return seq or 0, uri or node_id


def _layout(columns: list[list[str]]) -> dict[str, tuple[int, int]]:
    positions = {}
    for x, column in enumerate(columns):
        for y, node_id in enumerate(column):
            positions[node_id] = (MARGIN + x * (BOX_W + COL_GAP), MARGIN + y * (BOX_H + ROW_GAP))
    return positions


def _box(position: tuple[int, int], node: Node) -> str:
    x, y = position
    details: dict[str, Any]
    if isinstance(node, DatasetLink):
        colour = "#37474f"
        uri = str(node.uri or "")
        first = uri.rstrip("/").rsplit("/", 1)[-1] + ("/" if uri.endswith("/") else "")
        facts = [f"{node.row_count} rows" if node.row_count is not None else "",
                 f"{node.size} B" if node.size is not None else "",
                 f"etag {str(node.etag)[:8]}" if node.etag else ""]
        second = " · ".join(f for f in facts if f) or node.kind or ""
        details = _known(uri=node.uri, version=node.version, etag=node.etag, size=node.size,
                         row_count=node.row_count, schema_hash=node.schema_hash)
        fill = "#f5f7f8"
    else:
        colour = STATUS_COLOURS.get(str(node.status), "#546e7a")
        if isinstance(node, _Elsewhere):
            first = f"{node.step} #1 · {node.status}"
            second = f"in run {node.run_id}"
            details = _known(attempt_id=node.attempt_id, run_id=node.run_id)
        else:
            first = f"{node.step} #{node.attempt or 1} · {node.status}"
            second = node.capacity or ""
            if node.status == "REUSED":
                second = f"not run: reused from {node.reused_run}"
            elif node.status == "FAILED":
                second = f"{second} · {node.status_reason or ''}"
            details = _known(attempt_id=node.attempt_id, image=node.image, job_definition=node.job_definition,
                             cache_key=node.cache_key, exit_code=node.exit_code, status_reason=node.status_reason,
                             started_at=node.started_at, ended_at=node.ended_at)
            if node.parameters:
                details["parameters"] = node.parameters
        fill = "#ffffff"
    tooltip = escape(json.dumps(details, indent=1, default=str))
    return (f'<g class="box"><title>{tooltip}</title>'
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8" fill="{fill}" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<text x="{x + 10}" y="{y + 19}" fill="{colour}" font-weight="600">'
            f'{escape(short(first, LABEL_CHARS))}</text>'
            f'<text x="{x + 10}" y="{y + 36}" fill="#546e7a">{escape(short(second, LABEL_CHARS))}</text></g>')


def _edge(src: tuple[int, int], dst: tuple[int, int], rel: str) -> str:
    colour, dash = EDGE_STYLES.get(rel, ("#90a4ae", ""))
    (x1, y1), (x2, y2) = src, dst
    if x1 == x2:  # same column (retries, fallbacks, contents): an arc on the right
        sx, sy, ex, ey = x1 + BOX_W, y1 + BOX_H / 2, x2 + BOX_W, y2 + BOX_H / 2
        bend = sx + 40
        path = f"M{sx},{sy} C{bend},{sy} {bend},{ey} {ex},{ey}"
    else:
        forward = x2 > x1
        sx, ex = (x1 + BOX_W, x2) if forward else (x1, x2 + BOX_W)
        sy, ey = y1 + BOX_H / 2, y2 + BOX_H / 2
        mid = (sx + ex) / 2
        path = f"M{sx},{sy} C{mid},{sy} {mid},{ey} {ex},{ey}"
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    return (f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.5"{dash_attr} '
            f'marker-end="url(#arrow-{rel})"><title>{escape(rel)}</title></path>')


def _known(**details: Any) -> dict[str, Any]:
    """A box's details for its tooltip: those known."""
    return {k: v for k, v in details.items() if v is not None}


def _attempt_table(attempts: tuple[ReportAttempt, ...]) -> str:
    rows = ["<table><tr><th>#</th><th>step</th><th>job</th><th>attempt</th><th>capacity</th><th>status</th>"
            "<th>exit</th><th>reason</th><th>image</th><th>cache key</th></tr>"]
    for a in attempts:
        reason = a.status_reason if a.status != "SUCCEEDED" else ""
        rows.append("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in (
            a.seq, a.step, a.job_key, a.attempt, a.capacity, a.status, "" if a.exit_code is None else a.exit_code,
            reason or "", a.image or "", (a.cache_key or "")[:12])) + "</tr>")
    rows.append("</table>")
    return "".join(rows)


def _step_position(step: str | None) -> int:
    """The step's place in the pipeline manifest; steps it does not know come last."""
    place = pipeline.position(step or "")
    return 99 if place is None else place
