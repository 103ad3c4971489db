"""What the execution-graph page shows, read from an execution's own records.

Input: DescribeExecution's output, GetExecutionHistory's events and the state
machine definition, as a live endpoint returns them (datetimes) or as the twin
persists them (ISO strings). Output: plain JSON-able data: the states and
transitions of the definition (Parallel branches and Map iterators as nested
groups), each state's outcome and visits (input, output, error, cause,
duration), the Batch attempts its task outputs carry, and the events table.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from threadline_common import pipeline
from threadline_common.lineage.batch import derive_capacity

START, END = "__start__", "__end__"  # the console's Start and End circles; no state may be called so
FAILED_SUFFIXES = ("Failed", "TimedOut", "Aborted")  # a task's (or a Map's, a Parallel's) failure events
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
DETAIL_CHARS = 400  # what the events table shows of an event's details


def model(execution: dict[str, Any], events: list[dict[str, Any]], definition: dict[str, Any]) -> dict[str, Any]:
    """The page's data for one execution."""
    nodes, edges = graph(definition)
    visits = _visits(events)
    running = execution.get("status") not in TERMINAL
    for node in nodes:
        node["visits"] = visits.get(node["id"], [])
        node["outcome"] = _outcome(node, running)
        node["attempts"] = [attempt for visit in node["visits"] for attempt in visit.pop("attempts")]
    _mark_taken(edges, events, {node["id"]: node["outcome"] for node in nodes})
    return {"execution": _execution(execution), "nodes": nodes, "edges": edges, "events": _event_rows(events)}


def graph(definition: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Nodes (Start, End, every state; `parent` names a branch group) and edges (next, choice, default, catch)."""
    nodes: list[dict[str, Any]] = [{"id": START, "name": "Start", "type": "Start", "parent": None},
                                   {"id": END, "name": "End", "type": "End", "parent": None}]
    edges: list[dict[str, Any]] = [_edge(START, definition["StartAt"], "next")]
    _add_states(definition, None, END, nodes, edges)
    unique = {(edge["source"], edge["target"], edge["kind"]): edge for edge in reversed(edges)}
    return nodes, [edge for edge in edges if unique[edge["source"], edge["target"], edge["kind"]] is edge]


def _add_states(machine: dict[str, Any], parent: str | None, end: str,
                nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> None:
    """The states of one (sub-)machine; `end` is where its terminal states lead."""
    for name, state in machine["States"].items():
        nodes.append({"id": name, "name": name, "type": state["Type"], "parent": parent,
                      "resource": state.get("Resource"), "comment": state.get("Comment")})
        branches = state.get("Branches") or [state[key] for key in ("ItemProcessor", "Iterator") if key in state]
        leaves = name
        if branches:  # the branches run between the state and its join, as the console draws them
            leaves = f"{name} (end)"
            nodes.append({"id": leaves, "name": "", "type": "Join", "parent": parent})
            for index, branch in enumerate(branches):
                group = f"{name} branch {index + 1}" if len(branches) > 1 else f"{name} iteration"
                nodes.append({"id": group, "name": group, "type": "Group", "parent": parent})
                edges.append(_edge(name, branch["StartAt"], "branch"))
                _add_states(branch, group, leaves, nodes, edges)
        if "Next" in state:
            edges.append(_edge(leaves, state["Next"], "next"))
        for choice in state.get("Choices", []):
            edges.append(_edge(name, choice["Next"], "choice"))
        if "Default" in state:
            edges.append(_edge(name, state["Default"], "default"))
        for catch in state.get("Catch", []):
            edges.append(_edge(leaves, catch["Next"], "catch", ", ".join(catch.get("ErrorEquals", []))))
        if state.get("End") or state["Type"] in ("Succeed", "Fail"):
            edges.append(_edge(leaves, end, "end"))


def _edge(source: str, target: str, kind: str, label: str = "") -> dict[str, Any]:
    return {"source": source, "target": target, "kind": kind, "label": label, "taken": False}


def _visits(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each state's visits, with the events between its StateEntered and StateExited attributed to it.

    An event belongs to the state of the event it follows (`previousEventId`),
    so interleaved Parallel branches keep apart; a history without those links
    falls back to the latest state entered and not yet left.
    """
    start = _moment(events[0]["timestamp"]) if events else None
    owner: dict[int, dict[str, Any] | None] = {}
    by_state: dict[str, list[dict[str, Any]]] = {}
    open_visits: list[dict[str, Any]] = []
    for event in events:
        kind, details = event["type"], _details(event)
        if kind.endswith("StateEntered"):
            entered = _new_visit(event, details, start)
            by_state.setdefault(details["name"], []).append(entered)
            open_visits.append(entered)
            owner[event["id"]] = entered
            continue
        previous = event.get("previousEventId")
        visit = owner.get(previous) if previous in owner else (open_visits[-1] if open_visits else None)
        if kind.startswith("Execution"):
            visit = None
        owner[event["id"]] = visit
        if visit is None:
            continue
        if kind.endswith("StateExited"):
            visit["exited"] = _iso(event["timestamp"])
            visit["seconds"] = _seconds(visit["entered"], event["timestamp"])
            visit["output"] = details.get("output")
            owner[event["id"]] = None  # what follows a state's exit belongs to the next state
            open_visits = [other for other in open_visits if other is not visit]
        elif kind.endswith(FAILED_SUFFIXES):
            visit.update(failed=True, error=details.get("error"), cause=details.get("cause"))
            _batch_job(visit, details.get("resourceType"), details.get("cause"))
        elif kind.endswith("Succeeded"):
            visit["failed"] = False
            _batch_job(visit, details.get("resourceType"), details.get("output"))
        elif kind.endswith("Submitted"):
            _batch_job(visit, details.get("resourceType"), details.get("output"))
        elif kind.endswith("Scheduled"):
            visit["tries"] += 1
            if details.get("resourceType") == "batch":  # the queue, before any job description names it
                visit["_queue"] = _json(details.get("parameters")).get("JobQueue")
    for visits in by_state.values():
        for visit in visits:
            queue = visit.pop("_queue")
            visit["attempts"] = [attempt for job in visit.pop("_jobs").values()
                                 for attempt in _attempts({"JobQueue": queue, **job})]
    return by_state


def _new_visit(event: dict[str, Any], details: dict[str, Any], start: datetime | None) -> dict[str, Any]:
    """A visit that begins at a StateEntered event; `_jobs` and `_queue` collect its Batch jobs meanwhile."""
    return {"entered": _iso(event["timestamp"]), "exited": None, "seconds": None,
            "elapsed": _elapsed(start, event["timestamp"]), "input": details.get("input"), "output": None,
            "error": None, "cause": None, "failed": False, "tries": 0, "attempts": [], "_jobs": {}, "_queue": None}


def _batch_job(visit: dict[str, Any], resource_type: str | None, text: str | None) -> None:
    """Keep the latest description of each Batch job the state's task outputs (or failure cause) carry."""
    job = _json(text) if resource_type == "batch" else {}
    if job.get("JobId"):
        known = visit["_jobs"].setdefault(job["JobId"], {})
        known.update(job)


def _json(text: str | None) -> dict[str, Any]:
    """The JSON object in `text`; {} for none, for other JSON, or for a cause that is plain text."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _attempts(job: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per attempt of a Batch job (a job not yet started is one row with its status)."""
    queue = str(job.get("JobQueue") or "")
    multinode = bool(job.get("NodeProperties"))
    fallback = any(item.fallback for _, item in pipeline.jobs()
                   if str(job.get("JobName", "")).startswith(f"{item.job_name}-"))
    common = {"job_id": job.get("JobId"), "job_name": job.get("JobName"), "queue": queue.rsplit("/", 1)[-1] or None,
              "capacity": derive_capacity(queue, fallback=fallback, multinode=multinode) if queue else None,
              "nodes": (job.get("NodeProperties") or {}).get("NumNodes"), "job_status": job.get("Status")}
    attempts = job.get("Attempts") or []
    if not attempts:
        return [{**common, "attempt": None, "status_reason": job.get("StatusReason"), "exit_code": None,
                 "seconds": _ms_seconds(job.get("StartedAt"), job.get("StoppedAt"))}]
    return [{**common, "attempt": number, "status_reason": attempt.get("StatusReason"),
             "exit_code": (attempt.get("Container") or {}).get("ExitCode"),
             "seconds": _ms_seconds(attempt.get("StartedAt"), attempt.get("StoppedAt"))}
            for number, attempt in enumerate(attempts, 1)]


def _outcome(node: dict[str, Any], running: bool) -> str:
    """succeeded, caught (failed, and a Catch went on), failed (the run failed here), in-progress or not-entered."""
    if node["type"] in ("Start", "End", "Group", "Join"):
        return "structure"
    if not node["visits"]:
        return "not-entered"
    last = node["visits"][-1]
    if last["exited"] is None:
        return "in-progress" if running else "failed"
    if node["type"] == "Fail":
        return "failed"
    return "caught" if last["failed"] else "succeeded"


def _mark_taken(edges: list[dict[str, Any]], events: list[dict[str, Any]], outcomes: dict[str, str]) -> None:
    """Mark each transition the execution took, through the Catch edge where the state it left failed."""
    entered = [_details(event)["name"] for event in events if event["type"].endswith("StateEntered")]
    if not entered:
        return
    pairs = _transitions(events)
    for edge in edges:
        source, target = edge["source"], edge["target"]
        if (source, target) in pairs:
            caught = outcomes.get(source) == "caught"
            edge["taken"] = (edge["kind"] == "catch") == caught or not any(
                other["kind"] == "catch" and (other["source"], other["target"]) == (source, target) for other in edges)
        elif target == END and outcomes.get(source) in ("succeeded", "failed") and source == entered[-1]:
            edge["taken"] = True


def _transitions(events: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(from, to) for each state entered: from the state whose exit (or, into a branch, whose entry) the
    entry follows by `previousEventId`, else from the state entered before it (Start for the first)."""
    by_id = {event["id"]: event for event in events}
    pairs, last = set(), START
    for event in events:
        if not event["type"].endswith("StateEntered"):
            continue
        before = by_id.get(event.get("previousEventId"))
        linked = before is not None and before["type"].endswith(("StateExited", "StateEntered"))
        name = _details(event)["name"]
        pairs.add((_details(before)["name"] if before is not None and linked else last, name))
        last = name
    return pairs


def _execution(execution: dict[str, Any]) -> dict[str, Any]:
    return {"name": execution.get("name"), "arn": execution.get("executionArn"), "status": execution.get("status"),
            "started": _iso(execution.get("startDate")), "stopped": _iso(execution.get("stopDate")),
            "seconds": _seconds(execution.get("startDate"), execution.get("stopDate")),
            "input": execution.get("input"), "output": execution.get("output"),
            "error": execution.get("error"), "cause": execution.get("cause")}


def _event_rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events table: id, type, state, time, seconds since the first event, a short detail."""
    start = _moment(events[0]["timestamp"]) if events else None
    rows, current = [], None
    for event in events:
        details = _details(event)
        if event["type"].endswith("StateEntered"):
            current = details.get("name")
        state = details.get("name") or (None if event["type"].startswith("Execution") else current)
        shown = {key: value for key, value in details.items() if key not in ("name", "input", "output")}
        rows.append({"id": event["id"], "type": event["type"], "state": state, "time": _iso(event["timestamp"]),
                     "elapsed": _elapsed(start, event["timestamp"]),
                     "detail": json.dumps(shown, default=str)[:DETAIL_CHARS] if shown else ""})
        if event["type"].endswith("StateExited"):
            current = None
    return rows


def _details(event: dict[str, Any]) -> dict[str, Any]:
    """The event's `...EventDetails` object (every history event has at most one)."""
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def _moment(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _iso(value: datetime | str | None) -> str | None:
    return None if value is None else _moment(value).isoformat()


def _seconds(start: datetime | str | None, stop: datetime | str | None) -> float | None:
    if start is None or stop is None:
        return None
    return round((_moment(stop) - _moment(start)).total_seconds(), 3)


def _elapsed(start: datetime | None, value: datetime | str) -> float:
    return 0.0 if start is None else round((_moment(value) - start).total_seconds(), 3)


def _ms_seconds(started: Any, stopped: Any) -> float | None:
    """Seconds between two Batch timestamps (epoch milliseconds)."""
    if not isinstance(started, int | float) or not isinstance(stopped, int | float):
        return None
    return round((stopped - started) / 1000, 3)
