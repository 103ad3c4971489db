"""Lineage events turned into batched graph writes (query text + rows), without touching a database.

The model follows OpenLineage run events: a Run (of a pipeline, the job namespace)
has StepAttempts (one per Batch attempt, failed ones included); attempts
CONSUMED and PRODUCED Datasets and are chained by RETRY_OF (Batch's own retry),
FALLBACK_OF (the state machine's On-Demand / second-GPU-queue fallback) and
FOLLOWED_BY (the next step). Every attempt carries its cache key (`cache.py`); a
step a resumed run reused instead of running is a stand-in attempt with status
REUSED and a REUSED edge to the attempt whose outputs it took. An attempt of a
multi-container job RAN_CONTAINER one Container per container of each node's task
(`<JobId>#<attempt>/<node>/<name>`); a plain attempt has none.

A job's attempts are written twice: from Batch's own event as the job ends, and
again from `run_finished`. Both go through `attempt_records`, so they are the
same nodes (`<JobId>#<attempt>`); `run_finished` adds what needs the whole run
(order in the run, cache keys, FALLBACK_OF and FOLLOWED_BY, dataset facts).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from . import queries
from .batch import (
    RUN_INPUT_PARAMETERS,
    AttemptRecord,
    ContainerRecord,
    attempt_records,
    dataset_parameters,
    job_description,
    job_key_order,
    node_containers,
)
from .cache import StepIdentity, source_version, step_key
from .events import JobStateChanged, RunFinished, RunStarted
from .ids import attempt_node, container_node, dataset_node, run_node
from .times import stored_time

MAX_TEXT_CHARS = 65_536
REUSED = "REUSED"
# An attempt known only from its job's Batch event has not been numbered by `run_finished`:
# its seq is PROVISIONAL_SEQ x (step position + 1), + FALLBACK_SEQ for a fallback job,
# + the attempt's index, which keeps pipeline order and is never a `run_finished` number.
PROVISIONAL_SEQ = 100
FALLBACK_SEQ = 50

# Every write in dependency order: nodes before the relationships that MATCH them. Plans of
# several events combine into one write per query text, in this order.
WRITE_ORDER: tuple[str, ...] = (
    queries.MERGE_RUN_SEEN,
    queries.MERGE_RUN_STARTED,
    queries.MERGE_RUN_FINISHED,
    queries.MERGE_DATASETS,
    queries.LINK_DATASET_PART_OF,
    queries.LINK_RUN_CONSUMED,
    queries.MERGE_ATTEMPT_ID,
    queries.MERGE_JOB_ATTEMPTS,  # before run_finished's own write, which then has the last word
    queries.MERGE_STEP_ATTEMPTS,
    queries.MERGE_CONTAINERS,
    queries.LINK_ATTEMPT_RAN_CONTAINER,
    queries.LINK_ATTEMPT_CONSUMED,
    queries.LINK_ATTEMPT_PRODUCED,
    queries.LINK_RETRY_OF,
    queries.LINK_FALLBACK_OF,
    queries.LINK_FOLLOWED_BY,
    queries.LINK_REUSED,
)


@dataclass(frozen=True)
class ObjectFacts:
    """What S3 and the jobs' reports tell about one object a run read or wrote."""

    uri: str
    etag: str | None = None
    size: int | None = None
    row_count: int | None = None
    schema: str | None = None
    schema_hash: str | None = None


@dataclass(frozen=True)
class Write:
    """One batched write: `UNWIND $rows AS row ...` with these rows."""

    query: str
    rows: list[dict[str, Any]]


@dataclass
class GraphWrites:
    """The writes for one event, in order, and the jobs that could not be read."""

    writes: list[Write] = field(default_factory=list)
    attempts: list[AttemptRecord] = field(default_factory=list)
    skipped_jobs: dict[str, str] = field(default_factory=dict)

    def add(self, query: str, rows: list[dict[str, Any]]) -> None:
        unique = list({_row_key(row): row for row in rows}.values())
        if unique:
            self.writes.append(Write(query, unique))


def combine(plans: Iterable[GraphWrites]) -> GraphWrites:
    """The writes of several events as one: one write per query text, in dependency order.

    Writes are idempotent MERGEs and SETs that do not depend on which event came
    first, so a batch of events needs a round trip per query text, not per event.
    """
    rows: dict[str, list[dict[str, Any]]] = {}
    combined = GraphWrites()
    for plan in plans:
        for write in plan.writes:
            rows.setdefault(write.query, []).extend(write.rows)
        combined.attempts.extend(plan.attempts)
        combined.skipped_jobs.update(plan.skipped_jobs)
    unknown = set(rows) - set(WRITE_ORDER)
    if unknown:
        raise ValueError(f"writes outside WRITE_ORDER: {sorted(q.split(chr(10))[2][:40] for q in unknown)}")
    for query in WRITE_ORDER:
        if query in rows:
            combined.add(query, rows[query])
    return combined


def plan_run_started(event: RunStarted, pipeline: str) -> GraphWrites:
    plan = GraphWrites()
    plan.add(queries.MERGE_RUN_STARTED, [{
        **_run_keys(pipeline, event.run_id),
        "execution_arn": event.execution_arn,
        "started_at": stored_time(event.at),
    }])
    _add_source(plan, event.run_id, event.source)
    return plan


def plan_run_finished(event: RunFinished, pipeline: str, facts: Iterable[ObjectFacts] = ()) -> GraphWrites:
    """The writes for a finished run; `facts` adds what S3 and the validation report say about objects."""
    error = event.error or {}
    plan = GraphWrites()
    plan.add(queries.MERGE_RUN_FINISHED, [{
        **_run_keys(pipeline, event.run_id),
        "status": event.status,
        "execution_arn": event.execution_arn,
        "ended_at": stored_time(event.at),
        "error": _text(error.get("Error")),
        "cause": _text(error.get("Cause")),
    }])
    facts_by_uri = {fact.uri: fact for fact in facts}
    source = _add_source(plan, event.run_id, event.source, facts_by_uri.get(_source_uri(event.source) or ""))
    attempts = _attempts(event, plan)
    plan.attempts = attempts
    keys = _cache_keys(event, attempts)
    if not attempts:
        return plan

    _add_attempt_nodes(plan, queries.MERGE_STEP_ATTEMPTS, event.run_id, attempts, keys)
    _add_datasets(plan, attempts, source, facts_by_uri)
    _add_attempt_links(plan, attempts)
    plan.add(queries.LINK_REUSED, [
        {"src": attempt_node(a.attempt_id), "dst": attempt_node(event.reused[a.step]["attempt_id"])}
        for a in attempts if a.status == REUSED
    ])
    return plan


def plan_run_cost(run_id: str, cost_usd: float, spot_savings_usd: float | None, unpriced: int,
                  attempt_costs: dict[str, float]) -> GraphWrites:
    """The writes of a finished run's cost: on its Run (savings only when known) and on each priced attempt.

    Written by the lineage function after the run's own writes (`threadline_common.run_cost_record`),
    MATCHing the nodes those made; `attempt_costs` is USD by attempt id.
    """
    plan = GraphWrites()
    node = run_node(run_id)
    savings = None if spot_savings_usd is None else float(spot_savings_usd)
    plan.add(queries.SET_RUN_COST, [{"run_node": node, "cost_usd": float(cost_usd), "cost_unpriced": unpriced,
                                     "spot_savings_usd": savings}])
    plan.add(queries.SET_ATTEMPT_COSTS, [{"attempt_node": attempt_node(attempt_id), "cost_usd": float(usd)}
                                         for attempt_id, usd in attempt_costs.items()])
    return plan


def plan_job_state_changed(event: JobStateChanged, pipeline: str) -> GraphWrites:
    """The writes for one job that ended: its attempts, PART_OF the run, RETRY_OF each other.

    The Run is MERGEd by its id (a new one is RUNNING; an existing one keeps its status
    and times), so the event may come before, between or after the run's own events.
    The attempts read and wrote the datasets their parameters name; the run's input
    file is left to the run's events, which know its version. What needs the whole run
    (cache keys, the order in the run, FALLBACK_OF, FOLLOWED_BY, dataset facts) is
    written by `run_finished`.

    A node `<JobId>#<N>` of a multi-node job adds only its containers, under its
    parent's attempts (the parent's attempt is the step attempt), whose nodes it
    MERGEs by id alone when the parent's writes have not come yet.
    """
    plan = GraphWrites()
    if event.node_index is not None:
        try:
            containers = list(node_containers(event.job))
        except ValueError as exc:
            plan.skipped_jobs[event.job_key] = str(exc)
            return plan
        plan.add(queries.MERGE_ATTEMPT_ID, [{"attempt_node": attempt_node(c.attempt_id), "attempt_id": c.attempt_id}
                                            for c in containers])
        _add_containers(plan, containers)
        return plan
    plan.add(queries.MERGE_RUN_SEEN, [_run_keys(pipeline, event.run_id)])
    try:
        attempts = attempt_records(event.job_key, event.job, first_seq=provisional_seq(event.job_key))
    except ValueError as exc:
        plan.skipped_jobs[event.job_key] = str(exc)
        return plan
    plan.attempts = attempts
    _add_attempt_nodes(plan, queries.MERGE_JOB_ATTEMPTS, event.run_id, attempts, {})
    _add_datasets(plan, attempts, None, {}, skip_parameters=RUN_INPUT_PARAMETERS)
    _add_attempt_links(plan, attempts)  # one job: RETRY_OF only
    return plan


def provisional_seq(job_key: str) -> int:
    """The seq of a job's first attempt until `run_finished` numbers it (see PROVISIONAL_SEQ)."""
    position, _, fallback = job_key_order(job_key)
    return PROVISIONAL_SEQ * (position + 1) + FALLBACK_SEQ * fallback + 1


def _add_attempt_nodes(plan: GraphWrites, query: str, run_id: str, attempts: list[AttemptRecord],
                       keys: dict[str, str | None]) -> None:
    plan.add(query, [_attempt_row(a, keys.get(a.attempt_id), run_id) for a in attempts])
    _add_containers(plan, [c for a in attempts for c in a.containers])


def _add_containers(plan: GraphWrites, containers: list[ContainerRecord]) -> None:
    """A multi-container attempt's containers, each RAN_CONTAINER from its attempt."""
    plan.add(queries.MERGE_CONTAINERS, [{
        "container_node": container_node(c.container_id), "container_id": c.container_id,
        "node_index": c.node_index, "name": c.name, "reason": _text(c.reason), "log_stream": c.log_stream,
        "image": c.image, "exit_code": c.exit_code, "essential": c.essential,
    } for c in containers])
    plan.add(queries.LINK_ATTEMPT_RAN_CONTAINER, [
        {"attempt_node": attempt_node(c.attempt_id), "container_node": container_node(c.container_id)}
        for c in containers
    ])


def _attempts(event: RunFinished, plan: GraphWrites) -> list[AttemptRecord]:
    """All attempts of all jobs in pipeline order, reused steps included as stand-ins.

    A job key in both `jobs` and `failures` is read from `jobs`.
    """
    entries = {**event.failures, **event.jobs}
    ran = set()
    for job_key in entries:
        ran.add(job_key_order(job_key)[1])
    slots: list[tuple[tuple[int, str, int], str, Any]] = [(job_key_order(k), k, entries[k]) for k in entries]
    slots += [(job_key_order(step), step, None) for step in event.reused if step not in ran]
    records: list[AttemptRecord] = []
    for _, job_key, entry in sorted(slots, key=lambda slot: slot[0]):
        if entry is None:
            records.append(_reused_record(event, job_key, seq=len(records) + 1))
            continue
        description = job_description(entry)
        if description is None:
            plan.skipped_jobs[job_key] = "no job description in the entry"
            continue
        try:
            records.extend(attempt_records(job_key, description, first_seq=len(records) + 1))
        except ValueError as exc:
            plan.skipped_jobs[job_key] = str(exc)
    return records


def _reused_record(event: RunFinished, step: str, seq: int) -> AttemptRecord:
    """The stand-in for a step the run did not run: it reused another attempt's outputs."""
    reused = event.reused[step]
    return AttemptRecord(
        attempt_id=f"{event.run_id}#{step}#reused", step=step, job_key=step, fallback=False, seq=seq,
        job_id="", job_name=None, queue=None, capacity="NONE", job_definition=None, attempt=1,
        status=REUSED, status_reason=f"reused {reused['attempt_id']} of run {reused.get('run_id') or '?'}",
        exit_code=None, node_count=0, image=None, parameters={}, log_stream=None,
        started_at=None, ended_at=None,
    )


def _cache_keys(event: RunFinished, attempts: list[AttemptRecord]) -> dict[str, str | None]:
    """The cache key of every attempt (by attempt id), fed by the keys of the steps before it.

    A step's inputs are versioned by the key of the attempt that produced them in
    this run, or by the key the plan gave a step the run reused.
    """
    version = source_version(event.source)
    step_keys: dict[str, str | None] = {
        step: entry.get("cache_key") for step, entry in event.reused.items() if entry.get("cache_key")
    }
    keys: dict[str, str | None] = {}
    for a in attempts:
        if a.status == REUSED:
            keys[a.attempt_id] = step_keys.get(a.step)
            continue
        identity = StepIdentity(a.step, a.job_definition, a.image, a.parameters)
        key = step_key(identity, version, step_keys)
        keys[a.attempt_id] = key
        if a.status == "SUCCEEDED":
            step_keys[a.step] = key
    return keys


def _run_keys(pipeline: str, run_id: str) -> dict[str, Any]:
    """What every write of a Run needs: its id, its natural key and its pipeline."""
    return {"run_node": run_node(run_id), "run_id": run_id, "pipeline": pipeline}


def _attempt_row(a: AttemptRecord, cache_key: str | None, run_id: str) -> dict[str, Any]:
    """An attempt's properties, and the run it is PART_OF."""
    return {
        "attempt_node": attempt_node(a.attempt_id),
        "run_node": run_node(run_id),
        "attempt_id": a.attempt_id,
        "step": a.step,
        "job_key": a.job_key,
        "seq": a.seq,
        "job_id": a.job_id,
        "job_name": a.job_name,
        "queue": a.queue,
        "capacity": a.capacity,
        "job_definition": a.job_definition,
        "attempt": a.attempt,
        "status": a.status,
        "status_reason": _text(a.status_reason),
        "node_count": a.node_count,
        "image": a.image,
        "parameters_json": a.parameters_json,
        "log_stream": a.log_stream,
        "started_at": stored_time(a.started_at),
        "ended_at": stored_time(a.ended_at),
        "cache_key": cache_key,
        "exit_code": a.exit_code,
    }


@dataclass(frozen=True)
class _Dataset:
    uri: str
    version: str | None = None
    etag: str | None = None
    size: int | None = None
    row_count: int | None = None
    schema: str | None = None
    schema_hash: str | None = None

    @property
    def dataset_id(self) -> str:
        """Versions of one object are distinct datasets; prefixes and unversioned objects are their URI."""
        return f"{self.uri}?versionId={self.version}" if self.version else self.uri

    @property
    def kind(self) -> str:
        return "prefix" if self.uri.endswith("/") else "object"

    @property
    def node(self) -> str:
        return dataset_node(self.dataset_id)

    def row(self) -> dict[str, Any]:
        return {"dataset_node": self.node, "dataset_id": self.dataset_id, "uri": self.uri, "kind": self.kind,
                "version": self.version, "etag": self.etag, "size": self.size, "row_count": self.row_count,
                "schema": self.schema, "schema_hash": self.schema_hash}


def _source_uri(source: dict[str, Any]) -> str | None:
    return source.get("uri") or (f"s3://{source['bucket']}/{source['key']}" if source.get("bucket") else None)


def _source_dataset(source: dict[str, Any], fact: ObjectFacts | None = None) -> _Dataset | None:
    uri = _source_uri(source)
    if not uri:
        return None
    version = source.get("version_id")
    size = source.get("size")
    return _Dataset(
        uri=uri,
        version=version if version and version != "null" else None,
        etag=source.get("etag") or None,
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        row_count=fact.row_count if fact else None,
        schema=fact.schema if fact else None,
        schema_hash=fact.schema_hash if fact else None,
    )


def _add_source(plan: GraphWrites, run_id: str, source: dict[str, Any],
                fact: ObjectFacts | None = None) -> _Dataset | None:
    dataset = _source_dataset(source, fact)
    if dataset is None:
        return None
    _merge_datasets(plan, [dataset])
    plan.add(queries.LINK_RUN_CONSUMED, [{"run_node": run_node(run_id), "dataset_node": dataset.node}])
    return dataset


def _merge_datasets(plan: GraphWrites, datasets: list[_Dataset]) -> None:
    plan.add(queries.MERGE_DATASETS, [d.row() for d in datasets])


def _fact_dataset(fact: ObjectFacts) -> _Dataset:
    """An intermediate or result object: unversioned, so its URI is its id and its ETag its version."""
    return _Dataset(uri=fact.uri, etag=fact.etag, size=fact.size, row_count=fact.row_count,
                    schema=fact.schema, schema_hash=fact.schema_hash)


def _add_datasets(plan: GraphWrites, attempts: list[AttemptRecord], source: _Dataset | None,
                  facts: dict[str, ObjectFacts], skip_parameters: tuple[str, ...] = ()) -> None:
    """CONSUMED for every attempt (it was given the data); PRODUCED only by attempts that succeeded.

    Objects named in `facts` (what the produced prefixes hold) become datasets of their own,
    PART_OF the prefix that holds them. Parameters in `skip_parameters` are not linked.
    """
    datasets: dict[str, _Dataset] = {}
    consumed: list[dict[str, Any]] = []
    produced: list[dict[str, Any]] = []
    for a in attempts:
        reads, writes = dataset_parameters(a.step)
        for names, links in ((reads, consumed), (writes, produced)):
            if links is produced and a.status != "SUCCEEDED":
                continue
            for name in names:
                uri = a.parameters.get(name)
                if not uri or name in skip_parameters:
                    continue
                if source is not None and uri == source.uri:
                    dataset = source
                elif uri in facts:
                    dataset = _fact_dataset(facts[uri])
                else:
                    dataset = _Dataset(uri=uri)
                datasets[dataset.node] = dataset
                links.append({"attempt_node": attempt_node(a.attempt_id), "dataset_node": dataset.node})
    produced_prefixes = [datasets[link["dataset_node"]].uri for link in produced
                         if datasets[link["dataset_node"]].kind == "prefix"]
    for fact in facts.values():
        dataset = _fact_dataset(fact)
        if dataset.node not in datasets and any(fact.uri.startswith(prefix) for prefix in produced_prefixes):
            datasets[dataset.node] = dataset
    _merge_datasets(plan, list(datasets.values()))
    plan.add(queries.LINK_ATTEMPT_CONSUMED, consumed)
    plan.add(queries.LINK_ATTEMPT_PRODUCED, produced)
    prefixes = [d for d in datasets.values() if d.kind == "prefix"]
    plan.add(queries.LINK_DATASET_PART_OF, [
        {"src": inner.node, "dst": outer.node}
        for inner in datasets.values()
        for outer in prefixes
        if inner.uri != outer.uri and inner.uri.startswith(outer.uri)
    ])


def _add_attempt_links(plan: GraphWrites, attempts: list[AttemptRecord]) -> None:
    by_job: dict[str, list[AttemptRecord]] = {}
    for a in attempts:
        by_job.setdefault(a.job_key, []).append(a)
    # A reused stand-in has no Batch history of its own: no retries or fallbacks to link.

    retries = [
        _attempt_link(later, earlier)
        for job in by_job.values()
        for earlier, later in pairwise(job)
    ]

    fallbacks = []
    by_step: dict[str, list[list[AttemptRecord]]] = {}
    for job in by_job.values():
        by_step.setdefault(job[0].step, []).append(job)
    for jobs in by_step.values():
        primaries = [job for job in jobs if not job[0].fallback]
        for job in jobs:
            if job[0].fallback and primaries:
                fallbacks.append(_attempt_link(job[0], primaries[-1][-1]))

    steps = list(by_step.values())
    followed = [
        _attempt_link(before[-1][-1], after[0][0])
        for before, after in pairwise(steps)
    ]
    plan.add(queries.LINK_RETRY_OF, retries)
    plan.add(queries.LINK_FALLBACK_OF, fallbacks)
    plan.add(queries.LINK_FOLLOWED_BY, followed)


def _attempt_link(src: AttemptRecord, dst: AttemptRecord) -> dict[str, Any]:
    return {"src": attempt_node(src.attempt_id), "dst": attempt_node(dst.attempt_id)}


def _text(value: Any) -> str | None:
    """A string property, capped so one huge Cause cannot bloat the graph."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS] + " [truncated]"
    return text


def _row_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted(row.items()))
