"""The read API over the lineage graph: what the CLI prints and scripts call.

Every function takes a CypherRunner (Neptune through boto3 `neptunedata`, the
twin's local endpoint, or the embedded graph itself) and returns plain dicts and
lists, ready for `json.dumps`. Traversals walk one level per query (upstream:
the attempts that produced a dataset and what they read; downstream: the
attempts that read it and what they wrote), so each query stays a short,
bounded pattern that Neptune and the embedded graph both run.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from . import queries
from .neptune import CypherRunner

MAX_LEVELS = 12
_SINCE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
# Parts of a failure reason that name one instance, not a kind of failure.
_INSTANCE_IDS = re.compile(r"\bi-[0-9a-f]{8,17}\b")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


# --- one run ------------------------------------------------------------------------

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
    """What the run and its attempts consumed and produced: {node, rel, dataset_id, uri, kind, ...}.

    `rel` is CONSUMED, PRODUCED, or CONTAINS for an object inside a produced prefix.
    """
    rows = runner.run(queries.RUN_DATASETS, {"run_id": run_id})
    return sorted(rows, key=lambda row: (row["node"], row["rel"], row["dataset_id"]))


def run_report(runner: CypherRunner, run_id: str) -> dict[str, Any] | None:
    """Everything about one run: its steps and attempts in order (retries, fallbacks, reuse,
    failure reasons), the links between them and the datasets they read and wrote."""
    summary = run_summary(runner, run_id)
    if summary is None:
        return None
    attempts = [_attempt(a) for a in summary["attempts"]]
    links = attempt_links(runner, run_id)
    retried = {link["dst"] for link in links if link["rel"] == "RETRY_OF"}
    fallback_of = {link["src"]: link["dst"] for link in links if link["rel"] == "FALLBACK_OF"}
    for attempt in attempts:
        attempt["retried"] = attempt["attempt_id"] in retried
        attempt["fallback_of"] = fallback_of.get(attempt["attempt_id"])
    return {"run": summary["run"], "attempts": attempts, "links": links,
            "datasets": run_datasets(runner, run_id)}


def attempt_history(runner: CypherRunner, attempt_id: str) -> list[dict[str, Any]]:
    """The attempts an attempt retried or fell back from, earliest first."""
    return runner.run(queries.ATTEMPT_HISTORY, {"attempt_id": attempt_id})


def runs_for_input(runner: CypherRunner, uri: str) -> list[dict[str, Any]]:
    """Every run that read the object at `uri` (any version)."""
    return runner.run(queries.RUNS_FOR_INPUT, {"uri": uri})


# --- lineage of an object --------------------------------------------------------------

def resolve(runner: CypherRunner, uri: str) -> list[dict[str, Any]]:
    """The datasets a URI names: the exact version (`...?versionId=`), every version of the
    object, or else the deepest recorded prefix that holds it."""
    by_id = runner.run(queries.DATASET_BY_ID, {"dataset_id": uri})  # prefixes and unversioned objects: a key lookup
    if by_id or "?versionId=" in uri:
        return by_id
    exact = runner.run(queries.DATASETS_BY_URI, {"uri": uri})
    if exact:
        return sorted(exact, key=lambda d: d["dataset_id"])
    holders = runner.run(queries.PREFIXES_HOLDING_URI, {"uri": uri})
    if not holders:
        return []
    deepest = max(len(d["uri"]) for d in holders)
    return [d for d in holders if len(d["uri"]) == deepest]


def upstream(runner: CypherRunner, uri: str, max_levels: int = MAX_LEVELS) -> dict[str, Any]:
    """The tree of steps and datasets behind `uri`: who produced it, with which image and
    parameters, from which inputs, back to the incoming file."""
    return _walk(runner, uri, queries.PRODUCERS_OF, "produced_by", "consumed", max_levels)


def downstream(runner: CypherRunner, uri: str, max_levels: int = MAX_LEVELS) -> dict[str, Any]:
    """The tree of steps and datasets after `uri`: every attempt that read it (failed ones
    too) and what they wrote, onward; plus every run that took it as input."""
    tree = _walk(runner, uri, queries.CONSUMERS_OF, "consumed_by", "produced", max_levels)
    runs = [row for d in tree["roots"] for row in runner.run(queries.RUNS_CONSUMING, {"id": d["dataset_id"]})]
    tree["runs"] = sorted({r["run_id"]: r for r in runs}.values(), key=lambda r: (r["started_at"] or "", r["run_id"]))
    return tree


def _walk(runner: CypherRunner, uri: str, level_query: str, steps_key: str, datasets_key: str,
          max_levels: int) -> dict[str, Any]:
    roots = resolve(runner, uri)
    found: dict[str, dict[str, Any]] = {d["dataset_id"]: d for d in roots}
    edges: dict[str, dict[str, dict[str, Any]]] = {}  # dataset id -> attempt id -> attempt
    reached: dict[str, list[str]] = {}  # attempt id -> dataset ids on its far side
    frontier = [d["dataset_id"] for d in roots]
    seen = set(frontier)
    levels = 0
    while frontier and levels < max_levels:
        levels += 1
        rows = [(via, row) for via in frontier for row in runner.run(level_query, {"id": via})]
        next_frontier: list[str] = []
        for via, row in rows:
            attempt = _attempt(row)
            edges.setdefault(via, {})[attempt["attempt_id"]] = attempt
            far = reached.setdefault(attempt["attempt_id"], [])
            if row.get("dataset_id") is None:
                continue
            dataset = _dataset(row)
            found.setdefault(dataset["dataset_id"], dataset)
            if dataset["dataset_id"] not in far:
                far.append(dataset["dataset_id"])
            if dataset["dataset_id"] not in seen:
                seen.add(dataset["dataset_id"])
                next_frontier.append(dataset["dataset_id"])
        frontier = next_frontier

    expanded: set[str] = set()

    def node(dataset_id: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"dataset": found[dataset_id], steps_key: []}
        if dataset_id in expanded:
            entry["repeated"] = True  # shown in full where it first appears
            return entry
        expanded.add(dataset_id)
        for attempt_id, attempt in sorted(edges.get(dataset_id, {}).items(),
                                          key=lambda item: (item[1].get("started_at") or "", item[0])):
            entry[steps_key].append({"attempt": attempt,
                                     datasets_key: [node(i) for i in sorted(reached.get(attempt_id, []))]})
        return entry

    tree = [node(d["dataset_id"]) for d in roots]
    attempts = {a["attempt_id"]: a for by in edges.values() for a in by.values()}
    return {"uri": uri, "roots": roots, "tree": tree, "levels": levels,
            "datasets": list(found.values()),
            "attempts": sorted(attempts.values(), key=lambda a: (a.get("started_at") or "", a["attempt_id"]))}


# --- failures ------------------------------------------------------------------------

def parse_since(text: str, now: datetime | None = None) -> str:
    """`7d`, `24h`, `30m`, `2w` before now, or an ISO date/time, as an ISO-8601 UTC string."""
    now = now or datetime.now(UTC)
    match = _SINCE.match(text)
    if match:
        moment = now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    else:
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"--since {text!r}: expected e.g. 7d, 24h, 30m or an ISO date") from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def failures(runner: CypherRunner, since: str) -> dict[str, Any]:
    """Failed step attempts since `since` grouped by step and reason, and the failed runs with
    the step they failed at and why."""
    groups = _merge_reasons(runner.run(queries.FAILED_ATTEMPTS_SINCE, {"since": since}))
    runs: dict[str, dict[str, Any]] = {}
    for row in runner.run(queries.FAILED_RUNS_SINCE, {"since": since}):
        run = runs.setdefault(row["run_id"], {
            "run_id": row["run_id"], "started_at": row["started_at"], "ended_at": row["ended_at"],
            "error": row["error"], "cause": _short(row["cause"]), "step": None, "reason": None,
            "exit_code": None, "_seq": -1})
        if row.get("seq") is not None and row["seq"] > run["_seq"]:
            run.update(_seq=row["seq"], step=row["step"], reason=row["reason"], exit_code=row["exit_code"])
    failed_runs = sorted(runs.values(), key=lambda r: (r["ended_at"] or r["started_at"] or ""), reverse=True)
    for run in failed_runs:
        run.pop("_seq")
    return {"since": since, "by_reason": groups, "runs": failed_runs}


def reason_class(reason: str | None) -> str | None:
    """A failure reason without what names one occurrence: `Host EC2 (instance i-…) terminated.`"""
    return _INSTANCE_IDS.sub("i-…", reason) if reason else reason


def _merge_reasons(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = (row["step"], reason_class(row["reason"]), row["exit_code"])
        group = merged.setdefault(key, {"step": key[0], "reason": key[1], "exit_code": key[2], "attempts": 0,
                                        "run_ids": set(), "last_at": None})
        group["attempts"] += row["attempts"]
        group["run_ids"].update(row.get("run_ids") or [])
        group["last_at"] = max(filter(None, (group["last_at"], row.get("last_at"))), default=None)
    groups = []
    for group in merged.values():
        group["run_ids"] = sorted(group["run_ids"])
        group["runs"] = len(group["run_ids"])
        groups.append(group)
    return sorted(groups, key=lambda g: (-g["attempts"], g["step"] or "", g["reason"] or ""))


# --- shaping -------------------------------------------------------------------------

def _attempt(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("attempt_id", "run_id", "step", "job_key", "attempt", "seq", "status", "status_reason",
            "exit_code", "capacity", "queue", "job_definition", "image", "node_count", "started_at",
            "ended_at", "cache_key", "reused_attempt", "reused_run", "job_id", "log_stream")
    attempt = {key: row[key] for key in keys if key in row}
    try:
        attempt["parameters"] = json.loads(row.get("parameters_json") or "{}")
    except json.JSONDecodeError:
        attempt["parameters"] = {}
    return attempt


def _dataset(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("dataset_id", "uri", "kind", "version", "etag", "size", "row_count", "schema_hash")
    return {key: row.get(key) for key in keys}


def _short(text: str | None, limit: int = 500) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"
