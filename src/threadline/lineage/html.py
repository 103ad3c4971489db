"""A run's lineage graph as one self-contained HTML page (inline SVG and CSS, no scripts, no fetches).

Columns run left to right in pipeline order: what a step read, the step's
attempts (retries and fallbacks stacked), what it wrote. Hovering a box shows
its details (image, parameters, cache key, reason); the table below lists the
attempts in order.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from ..text import short

BOX_W, BOX_H, COL_GAP, ROW_GAP, MARGIN = 250, 46, 70, 16, 24
LABEL_CHARS = 34  # what a box's line holds
STATUS_COLOURS = {"SUCCEEDED": "#2e7d32", "FAILED": "#c62828", "REUSED": "#6a1b9a", "RUNNING": "#1565c0"}
EDGE_STYLES = {
    "CONSUMED": ("#607d8b", ""), "PRODUCED": ("#2e7d32", ""), "CONTAINS": ("#9e9e9e", "2,3"),
    "RETRY_OF": ("#ef6c00", "6,3"), "FALLBACK_OF": ("#c62828", "6,3"), "FOLLOWED_BY": ("#455a64", "1,3"),
    "REUSED": ("#6a1b9a", "6,3"),
}


def render(report: dict[str, Any]) -> str:
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
    run = report["run"]
    title = f"lineage of run {run['run_id']}"
    return "\n".join([
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{escape(title)}</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:24px;color:#263238}"
        "table{border-collapse:collapse;margin-top:16px}td,th{border:1px solid #cfd8dc;padding:4px 8px;"
        "text-align:left;vertical-align:top}th{background:#eceff1}.box text{font:12px system-ui,sans-serif}"
        ".legend span{display:inline-block;margin-right:14px}.graph{overflow:auto;border:1px solid #eceff1}"
        "code{font-size:12px}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>status <b>{escape(str(run.get('status')))}</b>, started {escape(str(run.get('started_at')))}, "
        f"ended {escape(str(run.get('ended_at')))}"
        + (f", error <b>{escape(str(run.get('error')))}</b>" if run.get("error") else "") + "</p>",
        '<p class="legend">' + "".join(
            f'<span style="color:{colour}">&#9632; {escape(status.lower())}</span>'
            for status, colour in STATUS_COLOURS.items()) + "".join(
            f'<span style="color:{colour}">&#8594; {escape(rel.lower().replace("_", " "))}</span>'
            for rel, (colour, _) in EDGE_STYLES.items()) + "</p>",
        '<div class="graph">', *svg, "</div>",
        _attempt_table(report["attempts"]),
        "</body></html>",
    ])


def _graph(report: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str, str]]]:
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[tuple[str, str, str]] = []
    for attempt in report["attempts"]:
        nodes[attempt["attempt_id"]] = {"kind": "attempt", **attempt}
    for row in report["datasets"]:
        dataset_id = row["dataset_id"]
        nodes.setdefault(dataset_id, {"kind": "dataset", **row})
        node = row["node"]
        if row["rel"] == "CONSUMED":
            edges.append((dataset_id, "CONSUMED", node))
        elif row["rel"] == "PRODUCED":
            edges.append((node, "PRODUCED", dataset_id))
    produced = {dst for _, rel, dst in edges if rel == "PRODUCED"}
    for row in report["datasets"]:
        if row["rel"] == "CONTAINS":
            holder = next((p for p in produced if row["uri"].startswith(nodes[p]["uri"])), None)
            if holder is not None:
                edges.append((holder, "CONTAINS", row["dataset_id"]))
    for link in report["links"]:
        edges.append((link["src"], link["rel"], link["dst"]))
    for attempt in report["attempts"]:
        if attempt.get("reused_attempt"):
            nodes.setdefault(attempt["reused_attempt"], {
                "kind": "attempt", "attempt_id": attempt["reused_attempt"], "step": attempt["step"],
                "status": "SUCCEEDED", "run_id": attempt.get("reused_run"), "external": True})
            edges.append((attempt["attempt_id"], "REUSED", attempt["reused_attempt"]))
    run_id = report["run"]["run_id"]
    nodes = {k: v for k, v in nodes.items() if k != run_id}
    edges = [e for e in edges if e[0] != run_id and e[2] != run_id]
    return nodes, edges


def _columns(nodes: dict[str, dict[str, Any]], edges: list[tuple[str, str, str]]) -> list[list[str]]:
    """Attempts in odd columns by step order; datasets one column before their first reader or after their writer."""
    steps: list[str] = []
    for node in nodes.values():
        if node["kind"] == "attempt" and node.get("step") not in steps:
            steps.append(node["step"])
    order = {"preprocess": 0, "analysis": 1, "postprocess": 2}
    steps.sort(key=lambda s: (order.get(s, 99), s))
    rank: dict[str, int] = {}
    for node_id, node in nodes.items():
        if node["kind"] == "attempt":
            rank[node_id] = 2 * steps.index(node["step"]) + 1
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
    for node_id in sorted(nodes, key=lambda n: (nodes[n].get("seq") or 0, nodes[n].get("uri") or n)):
        columns[rank[node_id]].append(node_id)
    return [c for c in columns if c]


def _layout(columns: list[list[str]]) -> dict[str, tuple[int, int]]:
    positions = {}
    for x, column in enumerate(columns):
        for y, node_id in enumerate(column):
            positions[node_id] = (MARGIN + x * (BOX_W + COL_GAP), MARGIN + y * (BOX_H + ROW_GAP))
    return positions


def _box(position: tuple[int, int], node: dict[str, Any]) -> str:
    x, y = position
    if node["kind"] == "attempt":
        colour = STATUS_COLOURS.get(str(node.get("status")), "#546e7a")
        first = f"{node.get('step')} #{node.get('attempt') or 1} · {node.get('status')}"
        second = node.get("capacity") or ""
        if node.get("external"):
            second = f"in run {node.get('run_id')}"
        elif node.get("status") == "REUSED":
            second = f"not run: reused from {node.get('reused_run')}"
        elif node.get("status") == "FAILED":
            second = f"{second} · {node.get('status_reason') or ''}"
        details = {k: node.get(k) for k in ("attempt_id", "run_id", "image", "job_definition", "cache_key",
                                             "exit_code", "status_reason", "started_at", "ended_at")
                   if node.get(k) is not None}
        if node.get("parameters"):
            details["parameters"] = node["parameters"]
        fill = "#ffffff"
    else:
        colour = "#37474f"
        uri = str(node.get("uri") or "")
        first = uri.rstrip("/").rsplit("/", 1)[-1] + ("/" if uri.endswith("/") else "")
        facts = [f"{node['row_count']} rows" if node.get("row_count") is not None else "",
                 f"{node['size']} B" if node.get("size") is not None else "",
                 f"etag {str(node['etag'])[:8]}" if node.get("etag") else ""]
        second = " · ".join(f for f in facts if f) or node.get("kind") or ""
        details = {k: node.get(k) for k in ("uri", "version", "etag", "size", "row_count", "schema_hash")
                   if node.get(k) is not None}
        fill = "#f5f7f8"
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


def _attempt_table(attempts: list[dict[str, Any]]) -> str:
    rows = ["<table><tr><th>#</th><th>step</th><th>job</th><th>attempt</th><th>capacity</th><th>status</th>"
            "<th>exit</th><th>reason</th><th>image</th><th>cache key</th></tr>"]
    for a in attempts:
        reason = a.get("status_reason") if a.get("status") != "SUCCEEDED" else ""
        rows.append("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in (
            a.get("seq"), a.get("step"), a.get("job_key"), a.get("attempt"), a.get("capacity"), a.get("status"),
            "" if a.get("exit_code") is None else a.get("exit_code"), reason or "", a.get("image") or "",
            (a.get("cache_key") or "")[:12])) + "</tr>")
    rows.append("</table>")
    return "".join(rows)
