"""The read API over the lineage graph: what the CLI prints and scripts call.

Every function takes a CypherRunner (Neptune through boto3 `neptunedata`, the
twin's local endpoint, or the embedded graph itself) and returns frozen
dataclasses, defined below, one per kind of answer. Their fields are the
columns the queries of `queries.py` return; `to_dict()` gives the plain dicts
and lists that `--json` prints. Traversals walk level by level (upstream: the
attempts that produced the level's datasets and what they read; downstream: the
attempts that read them and what they wrote), two queries a level however many
datasets it holds, each a short, bounded pattern that Neptune and the embedded
graph both run from the datasets' `~id`s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Self

from ..run_input import utc_timestamp
from . import queries
from .ids import attempt_node, dataset_node, run_node
from .neptune import CypherRunner
from .times import stored_time

MAX_LEVELS = 12
_SINCE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
# Parts of a failure reason that name one instance, not a kind of failure.
_INSTANCE_IDS = re.compile(r"\bi-[0-9a-f]{8,17}\b")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

Direction = Literal["upstream", "downstream"]
# In a lineage tree's dicts: the key of a dataset's steps, and of a step's datasets.
_TREE_KEYS: dict[Direction, tuple[str, str]] = {"upstream": ("produced_by", "consumed"),
                                                 "downstream": ("consumed_by", "produced")}
# Per direction: a level's query, and the query for the datasets whose steps count as the dataset's own,
# asked for datasets of this kind (objects lie in prefixes; prefixes hold objects).
_LEVEL_QUERIES: dict[Direction, tuple[str, str, str]] = {
    "upstream": (queries.PRODUCERS_OF, queries.PREFIXES_OF, "object"),
    "downstream": (queries.CONSUMERS_OF, queries.OBJECTS_IN, "prefix"),
}


# --- the answers -----------------------------------------------------------------------

class _Model:
    """What every answer shares: built from a query row by field name, and back to plain data."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        """The model of one query row (a column the row lacks is None)."""
        model: Any = cls
        return model(**{item.name: row.get(item.name) for item in fields(model)})

    def to_dict(self) -> dict[str, Any]:
        """The fields in order, as JSON-ready dicts and lists."""
        model: Any = self
        return {item.name: _plain(getattr(self, item.name)) for item in fields(model)}


@dataclass(frozen=True)
class Run(_Model):
    """A pipeline run (one Step Functions execution)."""

    run_id: str
    pipeline: str | None
    execution_arn: str | None
    status: str | None
    started_at: str | None
    ended_at: str | None
    error: str | None
    cause: str | None
    cost_usd: float | None = None
    spot_savings_usd: float | None = None
    cost_unpriced: int | None = None


@dataclass(frozen=True)
class Attempt(_Model):
    """One step attempt of a run as the graph holds it (`parameters_json` as written)."""

    attempt_id: str
    seq: int | None
    step: str | None
    job_key: str | None
    job_id: str | None
    job_name: str | None
    queue: str | None
    capacity: str | None
    job_definition: str | None
    attempt: int | None
    status: str | None
    status_reason: str | None
    exit_code: int | None
    node_count: int | None
    image: str | None
    parameters_json: str | None
    log_stream: str | None
    started_at: str | None
    ended_at: str | None
    cache_key: str | None
    reused_attempt: str | None  # a REUSED attempt: the earlier attempt it stands for, and its run
    reused_run: str | None

    @property
    def parameters(self) -> dict[str, Any]:
        """The job's parameters ({} when none were recorded, or not as JSON)."""
        return _parameters(self.parameters_json)


@dataclass(frozen=True)
class RunSummary(_Model):
    """`run_summary`: the run and its step attempts in pipeline order."""

    run: Run
    attempts: tuple[Attempt, ...]


@dataclass(frozen=True)
class AttemptLink(_Model):
    """An edge between two attempts of a run: `src` RETRY_OF, FALLBACK_OF or FOLLOWED_BY `dst`."""

    src: str
    rel: str
    dst: str


@dataclass(frozen=True)
class Dataset(_Model):
    """An object (one version of it) or a prefix."""

    dataset_id: str
    uri: str
    kind: str | None
    version: str | None
    etag: str | None
    size: int | None
    row_count: int | None
    schema_hash: str | None


@dataclass(frozen=True)
class DatasetLink(_Model):
    """A dataset a run or attempt (`node`) read or wrote: `rel` is CONSUMED, PRODUCED, or CONTAINS
    for an object inside a prefix the attempt produced."""

    node: str
    rel: str
    dataset_id: str
    uri: str
    kind: str | None
    version: str | None
    etag: str | None
    size: int | None
    row_count: int | None
    schema_hash: str | None


@dataclass(frozen=True)
class ReportAttempt(_Model):
    """An attempt in a run's report: its parameters read, and whether Batch retried it or it fell back
    from another attempt."""

    attempt_id: str
    step: str | None
    job_key: str | None
    attempt: int | None
    seq: int | None
    status: str | None
    status_reason: str | None
    exit_code: int | None
    capacity: str | None
    queue: str | None
    job_definition: str | None
    image: str | None
    node_count: int | None
    started_at: str | None
    ended_at: str | None
    cache_key: str | None
    reused_attempt: str | None
    reused_run: str | None
    job_id: str | None
    log_stream: str | None
    parameters: dict[str, Any]
    retried: bool
    fallback_of: str | None  # the attempt this one replaced on other capacity

    @classmethod
    def of(cls, attempt: Attempt, *, retried: bool, fallback_of: str | None) -> ReportAttempt:
        return cls(attempt.attempt_id, attempt.step, attempt.job_key, attempt.attempt, attempt.seq, attempt.status,
                   attempt.status_reason, attempt.exit_code, attempt.capacity, attempt.queue,
                   attempt.job_definition, attempt.image, attempt.node_count, attempt.started_at, attempt.ended_at,
                   attempt.cache_key, attempt.reused_attempt, attempt.reused_run, attempt.job_id, attempt.log_stream,
                   attempt.parameters, retried, fallback_of)


@dataclass(frozen=True)
class Container(_Model):
    """One container of one node's task in a multi-container attempt; `essential` None: not declared."""

    attempt_id: str
    node_index: int
    name: str
    essential: bool | None
    exit_code: int | None
    reason: str | None
    log_stream: str | None
    image: str | None


@dataclass(frozen=True)
class RunReport(_Model):
    """`run_report`: the run, its attempts in order, the links between them, what they read and wrote, and
    the containers of its multi-container attempts."""

    run: Run
    attempts: tuple[ReportAttempt, ...]
    links: tuple[AttemptLink, ...]
    datasets: tuple[DatasetLink, ...]
    containers: tuple[Container, ...] = ()


@dataclass(frozen=True)
class EarlierAttempt(_Model):
    """An attempt that a later one retried or fell back from."""

    attempt_id: str
    seq: int | None
    status: str | None
    status_reason: str | None
    capacity: str | None


@dataclass(frozen=True)
class InputRun(_Model):
    """A run that read an object, and the version it read."""

    run_id: str
    status: str | None
    started_at: str | None
    version: str | None


@dataclass(frozen=True)
class ConsumingRun(_Model):
    """A run that took a dataset as its input."""

    run_id: str
    status: str | None
    started_at: str | None
    ended_at: str | None
    error: str | None


@dataclass(frozen=True)
class LineageAttempt(_Model):
    """An attempt met on a lineage walk, with its run."""

    attempt_id: str
    run_id: str | None
    step: str | None
    attempt: int | None
    status: str | None
    status_reason: str | None
    exit_code: int | None
    capacity: str | None
    job_definition: str | None
    image: str | None
    node_count: int | None
    started_at: str | None
    ended_at: str | None
    cache_key: str | None
    parameters: dict[str, Any]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(row["attempt_id"], row.get("run_id"), row.get("step"), row.get("attempt"), row.get("status"),
                   row.get("status_reason"), row.get("exit_code"), row.get("capacity"), row.get("job_definition"),
                   row.get("image"), row.get("node_count"), row.get("started_at"), row.get("ended_at"),
                   row.get("cache_key"), _parameters(row.get("parameters_json")))


@dataclass(frozen=True)
class LineageNode(_Model):
    """A dataset in a lineage tree and the steps on its far side: upstream the attempts that produced
    it, downstream those that read it. `repeated`: shown in full where it first appears."""

    dataset: Dataset
    steps: tuple[LineageStep, ...]
    repeated: bool
    direction: Direction

    def to_dict(self) -> dict[str, Any]:
        steps_key, _ = _TREE_KEYS[self.direction]
        entry: dict[str, Any] = {"dataset": self.dataset.to_dict(), steps_key: [s.to_dict() for s in self.steps]}
        if self.repeated:
            entry["repeated"] = True
        return entry


@dataclass(frozen=True)
class LineageStep(_Model):
    """An attempt in a lineage tree and the datasets on its far side: what it read (upstream) or wrote."""

    attempt: LineageAttempt
    datasets: tuple[LineageNode, ...]
    direction: Direction

    def to_dict(self) -> dict[str, Any]:
        _, datasets_key = _TREE_KEYS[self.direction]
        return {"attempt": self.attempt.to_dict(), datasets_key: [d.to_dict() for d in self.datasets]}


@dataclass(frozen=True)
class Lineage(_Model):
    """`upstream` or `downstream` of a URI: the datasets it names (`roots`), a tree from each, every
    dataset and attempt met, and (downstream) the runs that took a root as input."""

    direction: Direction
    uri: str
    roots: tuple[Dataset, ...]
    tree: tuple[LineageNode, ...]
    levels: int
    datasets: tuple[Dataset, ...]
    attempts: tuple[LineageAttempt, ...]
    runs: tuple[ConsumingRun, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"uri": self.uri, "roots": _plain(self.roots), "tree": _plain(self.tree),
                                  "levels": self.levels, "datasets": _plain(self.datasets),
                                  "attempts": _plain(self.attempts)}
        if self.direction == "downstream":
            answer["runs"] = _plain(self.runs)
        return answer


@dataclass(frozen=True)
class FailureGroup(_Model):
    """Failed attempts of one step with one kind of reason and exit code."""

    step: str | None
    reason: str | None
    exit_code: int | None
    attempts: int
    run_ids: tuple[str, ...]
    last_at: str | None
    runs: int


@dataclass(frozen=True)
class FailedRun(_Model):
    """A failed run, with the step its last failed attempt belongs to and why that attempt failed."""

    run_id: str
    started_at: str | None
    ended_at: str | None
    error: str | None
    cause: str | None  # cut to 500 characters
    step: str | None
    reason: str | None
    exit_code: int | None


@dataclass(frozen=True)
class Failures(_Model):
    """`failures`: failed attempts grouped by reason (most first), failed runs (latest first)."""

    since: str
    by_reason: tuple[FailureGroup, ...]
    runs: tuple[FailedRun, ...]


# --- one run ------------------------------------------------------------------------

def run_summary(runner: CypherRunner, run_id: str) -> RunSummary | None:
    """The run and its step attempts in pipeline order (None when the run is unknown)."""
    rows = runner.run(queries.RUN, {"run_node": run_node(run_id)})
    if not rows:
        return None
    attempts = runner.run(queries.RUN_ATTEMPTS, {"run_node": run_node(run_id)})
    return RunSummary(Run.from_row(rows[0]), tuple(Attempt.from_row(row) for row in attempts))


def attempt_links(runner: CypherRunner, run_id: str) -> list[AttemptLink]:
    """RETRY_OF / FALLBACK_OF / FOLLOWED_BY edges between the run's attempts."""
    links = [AttemptLink.from_row(row) for row in runner.run(queries.RUN_ATTEMPT_LINKS, {"run_node": run_node(run_id)})]
    return sorted(links, key=lambda link: (link.rel, link.src, link.dst))


def run_datasets(runner: CypherRunner, run_id: str) -> list[DatasetLink]:
    """What the run and its attempts consumed and produced (and what the prefixes they produced hold)."""
    links = [DatasetLink.from_row(row) for row in runner.run(queries.RUN_DATASETS, {"run_node": run_node(run_id)})]
    return sorted(links, key=lambda link: (link.node, link.rel, link.dataset_id))


def run_containers(runner: CypherRunner, run_id: str) -> list[Container]:
    """The containers of the run's multi-container attempts, by attempt, node and name."""
    return [Container.from_row(row) for row in runner.run(queries.RUN_CONTAINERS, {"run_node": run_node(run_id)})]


def run_report(runner: CypherRunner, run_id: str) -> RunReport | None:
    """Everything about one run: its steps and attempts in order (retries, fallbacks, reuse,
    failure reasons), the links between them and the datasets they read and wrote."""
    summary = run_summary(runner, run_id)
    if summary is None:
        return None
    links = attempt_links(runner, run_id)
    retried = {link.dst for link in links if link.rel == "RETRY_OF"}
    fallback_of = {link.src: link.dst for link in links if link.rel == "FALLBACK_OF"}
    attempts = tuple(ReportAttempt.of(a, retried=a.attempt_id in retried, fallback_of=fallback_of.get(a.attempt_id))
                     for a in summary.attempts)
    return RunReport(summary.run, attempts, tuple(links), tuple(run_datasets(runner, run_id)),
                     tuple(run_containers(runner, run_id)))


def attempt_history(runner: CypherRunner, attempt_id: str) -> list[EarlierAttempt]:
    """The attempts an attempt retried or fell back from, earliest first."""
    rows = runner.run(queries.ATTEMPT_HISTORY, {"attempt_node": attempt_node(attempt_id)})
    return [EarlierAttempt.from_row(row) for row in rows]


def runs_for_input(runner: CypherRunner, uri: str) -> list[InputRun]:
    """Every run that read the object at `uri` (any version)."""
    return [InputRun.from_row(row) for row in runner.run(queries.RUNS_FOR_INPUT, {"uri": uri})]


# --- lineage of an object --------------------------------------------------------------

def resolve(runner: CypherRunner, uri: str) -> list[Dataset]:
    """The datasets a URI names: the exact version (`...?versionId=`), every version of the
    object, or else the deepest recorded prefix that holds it."""
    # Prefixes and unversioned objects: a key lookup.
    by_id = _datasets(runner.run(queries.DATASET_BY_ID, {"dataset_node": dataset_node(uri)}))
    if by_id or "?versionId=" in uri:
        return by_id
    exact = _datasets(runner.run(queries.DATASETS_BY_URI, {"uri": uri}))
    if exact:
        return sorted(exact, key=lambda d: d.dataset_id)
    parents = [dataset_node(prefix) for prefix in _parent_prefixes(uri)]
    holders = _datasets(runner.run(queries.PREFIXES_HOLDING_URI, {"nodes": parents})) if parents else []
    if not holders:
        return []
    deepest = max(len(d.uri) for d in holders)
    return [d for d in holders if len(d.uri) == deepest]


def _parent_prefixes(uri: str) -> list[str]:
    """Every prefix that could hold `uri`: `s3://b/a/x.csv` -> `s3://b/`, `s3://b/a/`."""
    scheme, _, path = uri.partition("://")
    parts = path.split("/")[:-1] if path else []
    return [f"{scheme}://{'/'.join(parts[:n])}/" for n in range(1, len(parts) + 1)] if scheme and parts else []


def upstream(runner: CypherRunner, uri: str, max_levels: int = MAX_LEVELS) -> Lineage:
    """The tree of steps and datasets behind `uri`: who produced it, with which image and
    parameters, from which inputs, back to the incoming file."""
    return _walk(runner, uri, "upstream", max_levels)


def downstream(runner: CypherRunner, uri: str, max_levels: int = MAX_LEVELS) -> Lineage:
    """The tree of steps and datasets after `uri`: every attempt that read it (failed ones
    too) and what they wrote, onward; plus every run that took it as input."""
    tree = _walk(runner, uri, "downstream", max_levels)
    rows = runner.run(queries.RUNS_CONSUMING, {"nodes": [dataset_node(d.dataset_id) for d in tree.roots]})
    unique = {r.run_id: r for r in map(ConsumingRun.from_row, rows) if r.run_id is not None}.values()
    return replace(tree, runs=tuple(sorted(unique, key=lambda r: (r.started_at or "", r.run_id))))


def _walk(runner: CypherRunner, uri: str, direction: Direction, max_levels: int) -> Lineage:
    roots = resolve(runner, uri)
    level_query, related_query, related_kind = _LEVEL_QUERIES[direction]
    found: dict[str, Dataset] = {d.dataset_id: d for d in roots}
    edges: dict[str, dict[str, LineageAttempt]] = {}  # dataset id -> attempt id -> attempt
    reached: dict[str, list[str]] = {}  # attempt id -> dataset ids on its far side
    frontier = [d.dataset_id for d in roots]
    seen = set(frontier)
    levels = 0
    while frontier and levels < max_levels:
        levels += 1
        related = [via for via in frontier if found[via].kind == related_kind]
        rows = _level(runner, level_query, related_query, frontier, related)
        next_frontier: list[str] = []
        for via, row in rows:
            attempt = LineageAttempt.from_row(row)
            edges.setdefault(via, {})[attempt.attempt_id] = attempt
            far = reached.setdefault(attempt.attempt_id, [])
            if row.get("dataset_id") is None:
                continue
            dataset = Dataset.from_row(row)
            found.setdefault(dataset.dataset_id, dataset)
            if dataset.dataset_id not in far:
                far.append(dataset.dataset_id)
            if dataset.dataset_id not in seen:
                seen.add(dataset.dataset_id)
                next_frontier.append(dataset.dataset_id)
        frontier = next_frontier

    expanded: set[str] = set()

    def node(dataset_id: str) -> LineageNode:
        if dataset_id in expanded:
            return LineageNode(found[dataset_id], (), True, direction)
        expanded.add(dataset_id)
        steps = [LineageStep(attempt, tuple(node(i) for i in sorted(reached.get(attempt_id, []))), direction)
                 for attempt_id, attempt in sorted(edges.get(dataset_id, {}).items(),
                                                   key=lambda item: (item[1].started_at or "", item[0]))]
        return LineageNode(found[dataset_id], tuple(steps), False, direction)

    tree = tuple(node(d.dataset_id) for d in roots)
    attempts = {a.attempt_id: a for by in edges.values() for a in by.values()}
    return Lineage(direction, uri, tuple(roots), tree, levels, tuple(found.values()),
                   tuple(sorted(attempts.values(), key=lambda a: (a.started_at or "", a.attempt_id))))


def _level(runner: CypherRunner, level_query: str, related_query: str, frontier: list[str],
           related: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """One level from every dataset of `frontier`, as (frontier dataset, row): its own producers (or
    readers), and for those in `related`, those of the prefixes it lies in (upstream, for an object) or
    of the objects in it (downstream, for a prefix). Two queries, however wide the level."""
    stands_for: dict[str, list[str]] = {via: [via] for via in frontier}  # dataset -> frontier datasets
    if related:
        for row in runner.run(related_query, {"nodes": [dataset_node(via) for via in related]}):
            if row["dataset_id"] is not None:
                stands_for.setdefault(row["dataset_id"], []).append(row["via"])
    rows = runner.run(level_query, {"nodes": [dataset_node(each) for each in stands_for]})
    return [(via, row) for row in rows if row["attempt_id"] is not None for via in stands_for[row["via"]]]


# --- failures ------------------------------------------------------------------------

def parse_since(text: str, now: datetime | None = None) -> str:
    """`7d`, `24h`, `30m`, `2w` before now, or an ISO date/time, in the format the graph stores times
    (`times.py`), so that the text comparison in the failure queries orders by time."""
    match = _SINCE.match(text)
    if match:
        moment = (now or datetime.now(UTC)) - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        return utc_timestamp(moment)
    since = stored_time(text)
    if since is None:
        raise ValueError(f"--since {text!r}: expected e.g. 7d, 24h, 30m or an ISO date")
    return since


def failures(runner: CypherRunner, since: str) -> Failures:
    """Failed step attempts since `since` grouped by step and reason, and the failed runs with
    the step they failed at and why."""
    groups = _merge_reasons(runner.run(queries.FAILED_ATTEMPTS_SINCE, {"since": since}))
    first: dict[str, dict[str, Any]] = {}  # run id -> its first row (the run's own columns)
    last: dict[str, dict[str, Any]] = {}  # run id -> the row of its failed attempt with the highest seq
    for row in runner.run(queries.FAILED_RUNS_SINCE, {"since": since}):
        run_id = row["run_id"]
        first.setdefault(run_id, row)
        if row.get("seq") is not None and row["seq"] > last.get(run_id, {"seq": -1})["seq"]:
            last[run_id] = row
    runs = []
    for run_id, row in first.items():
        at = last.get(run_id, {})
        runs.append(FailedRun(run_id, row["started_at"], row["ended_at"], row["error"], _short(row["cause"]),
                              at.get("step"), at.get("reason"), at.get("exit_code")))
    runs.sort(key=lambda r: (r.ended_at or r.started_at or ""), reverse=True)
    return Failures(since, groups, tuple(runs))


def reason_class(reason: str | None) -> str | None:
    """A failure reason without what names one occurrence: `Host EC2 (instance i-…) terminated.`"""
    return _INSTANCE_IDS.sub("i-…", reason) if reason else reason


def _merge_reasons(rows: list[dict[str, Any]]) -> tuple[FailureGroup, ...]:
    attempts: dict[tuple[Any, ...], int] = {}
    run_ids: dict[tuple[Any, ...], set[str]] = {}
    last_at: dict[tuple[Any, ...], str | None] = {}
    for row in rows:
        key = (row["step"], reason_class(row["reason"]), row["exit_code"])
        attempts[key] = attempts.get(key, 0) + row["attempts"]
        run_ids.setdefault(key, set()).update(row.get("run_ids") or [])
        last_at[key] = max(filter(None, (last_at.get(key), row.get("last_at"))), default=None)
    groups = [FailureGroup(key[0], key[1], key[2], count, tuple(sorted(run_ids[key])), last_at[key], len(run_ids[key]))
              for key, count in attempts.items()]
    return tuple(sorted(groups, key=lambda g: (-g.attempts, g.step or "", g.reason or "")))


# --- shaping -------------------------------------------------------------------------

def _datasets(rows: Iterable[Mapping[str, Any]]) -> list[Dataset]:
    return [Dataset.from_row(row) for row in rows]


def _parameters(text: str | None) -> dict[str, Any]:
    try:
        parameters = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
    return parameters if isinstance(parameters, dict) else {}


def _plain(value: Any) -> Any:
    if isinstance(value, _Model):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return dict(value)
    return value


def _short(text: str | None, limit: int = 500) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"
