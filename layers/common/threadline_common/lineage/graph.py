"""Lineage events turned into batched graph writes (query text + rows), without touching a database.

The model follows OpenLineage run events: a Pipeline (job namespace) has Runs;
a Run has StepAttempts (one per Batch attempt, failed ones included); attempts
CONSUMED and PRODUCED Datasets and are chained by RETRY_OF (Batch's own retry),
FALLBACK_OF (the state machine's On-Demand / second-GPU-queue fallback) and
FOLLOWED_BY (the next step).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import queries
from .batch import AttemptRecord, attempt_records, dataset_parameters, job_description, job_key_order
from .events import RunFinished, RunStarted

MAX_TEXT_CHARS = 65_536


@dataclass(frozen=True)
class Write:
    """One batched write: `UNWIND $rows AS row ...` with these rows."""

    query: str
    rows: list[dict[str, Any]]


@dataclass
class Plan:
    """The writes for one event, in order, and the jobs that could not be read."""

    writes: list[Write] = field(default_factory=list)
    attempts: list[AttemptRecord] = field(default_factory=list)
    skipped_jobs: dict[str, str] = field(default_factory=dict)

    def add(self, query: str, rows: list[dict[str, Any]]) -> None:
        unique = list({_row_key(row): row for row in rows}.values())
        if unique:
            self.writes.append(Write(query, unique))


def plan_run_started(event: RunStarted, pipeline: str) -> Plan:
    plan = Plan()
    plan.add(queries.MERGE_RUN_STARTED, [{
        "pipeline": pipeline,
        "run_id": event.run_id,
        "execution_arn": event.execution_arn,
        "started_at": event.at,
    }])
    _add_source(plan, event.run_id, event.source)
    return plan


def plan_run_finished(event: RunFinished, pipeline: str) -> Plan:
    error = event.error or {}
    plan = Plan()
    plan.add(queries.MERGE_RUN_FINISHED, [{
        "pipeline": pipeline,
        "run_id": event.run_id,
        "status": event.status,
        "execution_arn": event.execution_arn,
        "ended_at": event.at,
        "error": _text(error.get("Error")),
        "cause": _text(error.get("Cause")),
    }])
    source = _add_source(plan, event.run_id, event.source)
    attempts = _attempts(event, plan)
    plan.attempts = attempts
    if not attempts:
        return plan

    plan.add(queries.MERGE_STEP_ATTEMPTS, [_attempt_row(event.run_id, a) for a in attempts])
    plan.add(queries.SET_ATTEMPT_EXIT_CODES, [
        {"attempt_id": a.attempt_id, "exit_code": a.exit_code} for a in attempts if a.exit_code is not None
    ])
    _add_datasets(plan, attempts, source)
    _add_attempt_links(plan, attempts)
    return plan


def _attempts(event: RunFinished, plan: Plan) -> list[AttemptRecord]:
    """All attempts of all jobs in pipeline order; a job key in both `jobs` and `failures` is read from `jobs`."""
    entries = {**event.failures, **event.jobs}
    records: list[AttemptRecord] = []
    for job_key in sorted(entries, key=job_key_order):
        description = job_description(entries[job_key])
        if description is None:
            plan.skipped_jobs[job_key] = "no job description in the entry"
            continue
        try:
            records.extend(attempt_records(job_key, description, first_seq=len(records) + 1))
        except ValueError as exc:
            plan.skipped_jobs[job_key] = str(exc)
    return records


def _attempt_row(run_id: str, a: AttemptRecord) -> dict[str, Any]:
    return {
        "run_id": run_id,
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
        "started_at": a.started_at,
        "ended_at": a.ended_at,
    }


@dataclass(frozen=True)
class _Dataset:
    uri: str
    version: str | None = None
    etag: str | None = None
    size: int | None = None

    @property
    def dataset_id(self) -> str:
        """Versions of one object are distinct datasets; prefixes and unversioned objects are their URI."""
        return f"{self.uri}?versionId={self.version}" if self.version else self.uri

    @property
    def kind(self) -> str:
        return "prefix" if self.uri.endswith("/") else "object"

    def row(self) -> dict[str, Any]:
        return {"dataset_id": self.dataset_id, "uri": self.uri, "kind": self.kind,
                "version": self.version, "etag": self.etag}


def _source_dataset(source: dict[str, Any]) -> _Dataset | None:
    uri = source.get("uri") or (f"s3://{source['bucket']}/{source['key']}" if source.get("bucket") else None)
    if not uri:
        return None
    version = source.get("version_id")
    size = source.get("size")
    return _Dataset(
        uri=uri,
        version=version if version and version != "null" else None,
        etag=source.get("etag") or None,
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
    )


def _add_source(plan: Plan, run_id: str, source: dict[str, Any]) -> _Dataset | None:
    dataset = _source_dataset(source)
    if dataset is None:
        return None
    _merge_datasets(plan, [dataset])
    plan.add(queries.LINK_RUN_CONSUMED, [{"run_id": run_id, "dataset_id": dataset.dataset_id}])
    return dataset


def _merge_datasets(plan: Plan, datasets: list[_Dataset]) -> None:
    plan.add(queries.MERGE_DATASETS, [d.row() for d in datasets])
    plan.add(queries.SET_DATASET_SIZES, [
        {"dataset_id": d.dataset_id, "size": d.size} for d in datasets if d.size is not None
    ])


def _add_datasets(plan: Plan, attempts: list[AttemptRecord], source: _Dataset | None) -> None:
    """CONSUMED for every attempt (it was given the data); PRODUCED only by attempts that succeeded."""
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
                if not uri:
                    continue
                dataset = source if source is not None and uri == source.uri else _Dataset(uri=uri)
                datasets[dataset.dataset_id] = dataset
                links.append({"attempt_id": a.attempt_id, "dataset_id": dataset.dataset_id})
    _merge_datasets(plan, list(datasets.values()))
    plan.add(queries.LINK_ATTEMPT_CONSUMED, consumed)
    plan.add(queries.LINK_ATTEMPT_PRODUCED, produced)
    prefixes = [d for d in datasets.values() if d.kind == "prefix"]
    plan.add(queries.LINK_DATASET_PART_OF, [
        {"src": inner.dataset_id, "dst": outer.dataset_id}
        for inner in datasets.values()
        for outer in prefixes
        if inner.uri != outer.uri and inner.uri.startswith(outer.uri)
    ])


def _add_attempt_links(plan: Plan, attempts: list[AttemptRecord]) -> None:
    by_job: dict[str, list[AttemptRecord]] = {}
    for a in attempts:
        by_job.setdefault(a.job_key, []).append(a)

    retries = [
        {"src": later.attempt_id, "dst": earlier.attempt_id}
        for job in by_job.values()
        for earlier, later in zip(job, job[1:], strict=False)
    ]

    fallbacks = []
    by_step: dict[str, list[list[AttemptRecord]]] = {}
    for job in by_job.values():
        by_step.setdefault(job[0].step, []).append(job)
    for jobs in by_step.values():
        primaries = [job for job in jobs if not job[0].fallback]
        for job in jobs:
            if job[0].fallback and primaries:
                fallbacks.append({"src": job[0].attempt_id, "dst": primaries[-1][-1].attempt_id})

    steps = list(by_step.values())
    followed = [
        {"src": before[-1][-1].attempt_id, "dst": after[0][0].attempt_id}
        for before, after in zip(steps, steps[1:], strict=False)
    ]
    plan.add(queries.LINK_RETRY_OF, retries)
    plan.add(queries.LINK_FALLBACK_OF, fallbacks)
    plan.add(queries.LINK_FOLLOWED_BY, followed)


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
