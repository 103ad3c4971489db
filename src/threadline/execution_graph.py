"""Draw an execution as the Step Functions console does: the state graph, the path taken in colour.

Writes one self-contained HTML file (inline SVG, no scripts or external assets).
States are laid out top to bottom by their distance from StartAt; green states
succeeded, orange ones failed and were caught, red is where the run failed, grey
was not visited. Catch transitions are dashed; the transitions taken are bold.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Protocol

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 210, 34, 28, 46, 24


class Visit(Protocol):
    name: str
    failed: bool


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str  # next | choice | default | catch


def edges(definition: dict[str, Any]) -> list[Edge]:
    found: list[Edge] = []
    for name, state in definition["States"].items():
        if "Next" in state:
            found.append(Edge(name, state["Next"], "next"))
        for choice in state.get("Choices", []):
            found.append(Edge(name, choice["Next"], "choice"))
        if "Default" in state:
            found.append(Edge(name, state["Default"], "default"))
        for catch in state.get("Catch", []):
            found.append(Edge(name, catch["Next"], "catch"))
    return list(dict.fromkeys(found))


def layout(definition: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """(rank, column) per state, like a layered drawing of the graph.

    A state's rank is its longest distance from StartAt (loops ignored), so the
    failure tail sits below the steps that lead to it; the chain of `Next` from
    StartAt (the happy path) keeps column 0 and every other state sits near the
    states that lead to it.
    """
    states = definition["States"]
    successors: dict[str, list[str]] = {name: [] for name in states}
    for edge in edges(definition):
        successors[edge.source].append(edge.target)
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:  # depth-first post-order gives a topological order of the DAG part
        seen.add(name)
        for target in successors[name]:
            if target not in seen:
                visit(target)
        order.append(name)

    for name in [definition["StartAt"], *states]:
        if name not in seen:
            visit(name)
    order.reverse()
    position = {name: index for index, name in enumerate(order)}
    rank = {name: 0 for name in states}
    for name in order:
        for target in successors[name]:
            if position[target] > position[name]:  # forward edge; a loop back is not a rank constraint
                rank[target] = max(rank[target], rank[name] + 1)
    main_path, current = [], definition["StartAt"]
    while current in states and current not in main_path:
        main_path.append(current)
        current = states[current].get("Next")
    predecessors: dict[str, list[str]] = {name: [] for name in states}
    for name, targets in successors.items():
        for target in targets:
            predecessors[target].append(name)
    columns: dict[str, int] = {}
    for row in sorted(set(rank.values())):
        members = [name for name in order if rank[name] == row]

        def weight(name: str) -> tuple[int, float]:
            placed = [columns[p] for p in predecessors[name] if p in columns]
            return (0 if name in main_path else 1, sum(placed) / len(placed) if placed else 0.0)

        for column, name in enumerate(sorted(members, key=weight)):
            columns[name] = column
    return {name: (rank[name], columns[name]) for name in states}


def render(definition: dict[str, Any], visits: Sequence[Visit], title: str, status: str) -> str:
    positions = layout(definition)
    widest = max(col for _, col in positions.values()) + 1
    rows = max(row for row, _ in positions.values()) + 1
    width = MARGIN * 2 + widest * (BOX_W + GAP_X)
    height = MARGIN * 2 + rows * (BOX_H + GAP_Y)

    def centre(name: str) -> tuple[float, float]:
        row, col = positions[name]
        return MARGIN + col * (BOX_W + GAP_X) + BOX_W / 2, MARGIN + row * (BOX_H + GAP_Y) + BOX_H / 2

    visited = [visit.name for visit in visits]
    taken = set(pairwise(visited))
    failed = {visit.name for visit in visits if visit.failed}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
             'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>']
    drawn_taken: set[tuple[str, str]] = set()
    for edge in sorted(edges(definition), key=lambda e: (e.kind == "catch") != (e.source in failed)):
        (x1, y1), (x2, y2) = centre(edge.source), centre(edge.target)
        y1 += BOX_H / 2 if y2 > y1 else -BOX_H / 2
        y2 -= BOX_H / 2 if y2 > y1 else -BOX_H / 2
        # One arrow per transition taken: the Catch arrow when the state failed, else the other one.
        bold = (edge.source, edge.target) in taken and (edge.source, edge.target) not in drawn_taken
        if bold:
            drawn_taken.add((edge.source, edge.target))
        style = ' stroke-dasharray="5,4"' if edge.kind == "catch" else ""
        parts.append(f'<path d="M{x1:.0f},{y1:.0f} C{x1:.0f},{(y1 + y2) / 2:.0f} {x2:.0f},{(y1 + y2) / 2:.0f} '
                     f'{x2:.0f},{y2:.0f}" fill="none" stroke="{"#222" if bold else "#bbb"}" '
                     f'stroke-width="{2.5 if bold else 1}"{style} marker-end="url(#arrow)" '
                     f'class="edge {edge.kind}{" taken" if bold else ""}"/>')
    for name, state in definition["States"].items():
        x, y = centre(name)
        css = _state_class(name, state, visited, failed)
        fill = {"succeeded": "#d7f5dd", "caught": "#ffe3bf", "failed": "#ffc9c9", "not-visited": "#f2f2f2"}[css]
        stroke = {"succeeded": "#2e8540", "caught": "#d9822b", "failed": "#c23030", "not-visited": "#aaa"}[css]
        parts.append(f'<g class="state {css}" data-state="{html.escape(name)}">'
                     f'<rect x="{x - BOX_W / 2:.0f}" y="{y - BOX_H / 2:.0f}" width="{BOX_W}" height="{BOX_H}" '
                     f'rx="{BOX_H / 2 if state["Type"] in ("Succeed", "Fail") else 6}" fill="{fill}" '
                     f'stroke="{stroke}" stroke-width="1.5"/>'
                     f'<text x="{x:.0f}" y="{y + 4:.0f}" text-anchor="middle">{html.escape(name)}</text>'
                     f'<title>{html.escape(state["Type"])}: {css}</title></g>')
    parts.append("</svg>")
    legend = ("<p><span class='key succeeded'>succeeded</span> <span class='key caught'>failed, caught</span> "
              "<span class='key failed'>run failed here</span> <span class='key not-visited'>not visited</span> "
              "— bold arrows: transitions taken; dashed: Catch</p>")
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:24px}}"
            ".key{padding:2px 8px;border-radius:4px;border:1px solid #999}.key.succeeded{background:#d7f5dd}"
            ".key.caught{background:#ffe3bf}.key.failed{background:#ffc9c9}.key.not-visited{background:#f2f2f2}"
            f"</style></head><body><h1>{html.escape(title)}</h1><p>status: <b>{html.escape(status)}</b>, "
            f"{len(visited)} states visited of {len(definition['States'])}</p>{legend}{''.join(parts)}"
            "</body></html>")


def _state_class(name: str, state: dict[str, Any], visited: list[str], failed: set[str]) -> str:
    if name not in visited:
        return "not-visited"
    if state["Type"] == "Fail":
        return "failed"
    if name in failed:
        return "caught"
    return "succeeded"
