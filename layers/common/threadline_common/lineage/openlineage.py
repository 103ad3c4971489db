"""A run as the lineage graph holds it, as OpenLineage RunEvents (spec 2-0-2).

One builder for every place events leave: the lineage function sends them to an
OpenLineage endpoint after its graph write, and `threadline lineage export RUN
--openlineage` prints them from the stored graph. Both read the run with
`reader.run_report`, so both say the same.

- The run (one Step Functions execution) is the job `<pipeline>.pipeline` in the
  namespace `<pipeline>` (the stack name); each step attempt (one Batch attempt,
  failed ones included) is a child run of the job `<pipeline>.<step>`, with a
  ParentRunFacet naming the run.
- Run ids are UUIDs derived (uuid5) from the pipeline, the run id and the attempt
  id, so the same run gives the same ids wherever and however often it is built.
- Each run has a START and, once it ended, one COMPLETE, FAIL or ABORT.
- S3 datasets follow OpenLineage's naming: namespace `s3://<bucket>`, name the key
  (a prefix without its trailing `/`); the S3 version id or ETag goes in the
  DatasetVersionDatasetFacet, sizes and row counts in the statistics facets, the
  input schema's fields in the SchemaDatasetFacet.
- What no standard facet holds is in threadline's own facets, each with its JSON
  schema in `docs/openlineage/`: the Batch attempt (queue, capacity, job definition
  and revision, image and digest, node count, exit code), the containers of a
  multi-container attempt, the cache key, the retry, fallback and reuse links
  between attempts, and the run's compute cost.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

from .cache import image_digest
from .dataset_schemas import fields_for
from .graph import REUSED  # a resumed run's stand-in for a step it took from an earlier run: it ran nothing
from .reader import Container, DatasetLink, ReportAttempt, RunReport

SPEC_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
SCHEMA_URL = f"{SPEC_URL}#/$defs/RunEvent"
PROJECT_URL = "https://github.com/threadline/threadline"
PRODUCER = f"{PROJECT_URL}/tree/v0.1.0"
FACETS_URL = f"{PROJECT_URL}/blob/main/docs/openlineage"
# The namespace of every run id threadline derives: the same ids in every deployment of this code.
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, PROJECT_URL)

START, COMPLETE, FAIL, ABORT = "START", "COMPLETE", "FAIL", "ABORT"
ENDED = {"SUCCEEDED": COMPLETE, "FAILED": FAIL, "TIMED_OUT": FAIL, "ABORTED": ABORT}

# Standard facets: (facet key, the facet's schema file and definition).
_STANDARD = {
    "parent": "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet",
    "errorMessage": "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
    "jobType": "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
    "version": "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json"
               "#/$defs/DatasetVersionDatasetFacet",
    "schema": "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    "inputStatistics": "https://openlineage.io/spec/facets/1-0-0/InputStatisticsInputDatasetFacet.json"
                       "#/$defs/InputStatisticsInputDatasetFacet",
    "outputStatistics": "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json"
                        "#/$defs/OutputStatisticsOutputDatasetFacet",
}
# threadline's own facets: key -> schema name (docs/openlineage/<name>.json).
_CUSTOM = {
    "threadline_batchJob": "ThreadlineBatchJobRunFacet",
    "threadline_containers": "ThreadlineContainersRunFacet",
    "threadline_cache": "ThreadlineCacheRunFacet",
    "threadline_attemptLinks": "ThreadlineAttemptLinksRunFacet",
    "threadline_cost": "ThreadlineCostRunFacet",
}
_REVISION = re.compile(r":(\d+)$")


def run_uuid(pipeline: str, run_id: str) -> str:
    """The OpenLineage run id of a threadline run."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{pipeline}/{run_id}"))


def attempt_uuid(pipeline: str, run_id: str, attempt_id: str) -> str:
    """The OpenLineage run id of one step attempt of a run."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{pipeline}/{run_id}/{attempt_id}"))


def facet(key: str, **fields: Any) -> dict[str, Any]:
    """A facet with `_producer` and `_schemaURL`; fields that are None are left out."""
    url = _STANDARD.get(key) or f"{FACETS_URL}/{_CUSTOM[key]}.json#/$defs/{_CUSTOM[key]}"
    return {"_producer": PRODUCER, "_schemaURL": url, **{k: v for k, v in fields.items() if v is not None}}


def run_events(report: RunReport, pipeline: str | None = None, *, run_start: bool = True, run_end: bool = True,
               attempts: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The run's events, in time order: the run's START, each attempt's START and end, the run's end.

    `run_start`/`run_end` say whether the run's own events are wanted; `attempts` limits
    the attempts to those ids (None: all). An attempt or run that has not ended has its
    START only; an event with no time at all to give it (nothing recorded) is left out.
    """
    namespace = pipeline or report.run.pipeline or "threadline"
    wanted = None if attempts is None else set(attempts)
    by_id = {a.attempt_id: a for a in report.attempts}
    events: list[dict[str, Any]] = []
    events.extend(e for e in _run_events(report, namespace)
                  if (run_start and e["eventType"] == START) or (run_end and e["eventType"] != START))
    for attempt in report.attempts:
        if wanted is None or attempt.attempt_id in wanted:
            events.extend(_attempt_events(report, namespace, attempt, by_id))
    return sorted(events, key=lambda e: (e["eventTime"], e["eventType"] != START))


def _run_events(report: RunReport, namespace: str) -> list[dict[str, Any]]:
    run = report.run
    job = _job(namespace, "pipeline", "AWS_STEP_FUNCTIONS", "PIPELINE")
    run_id = run_uuid(namespace, run.run_id)
    inputs = [_input(link) for link in report.datasets if link.node == run.run_id and link.rel == "CONSUMED"]
    events = []
    start_time = run.started_at or run.ended_at
    if start_time:
        events.append(_event(START, start_time, {"runId": run_id}, job, inputs=inputs))
    ended = ENDED.get(run.status or "")
    end_time = run.ended_at or run.started_at
    if ended and end_time:
        facets: dict[str, Any] = {}
        if ended == FAIL and (run.error or run.cause):
            facets["errorMessage"] = facet("errorMessage", message=run.error or "failed",
                                           programmingLanguage="Amazon States Language", stackTrace=run.cause)
        if run.cost_usd is not None:  # set by the lineage function once it priced the run (run_cost_record)
            facets["threadline_cost"] = facet("threadline_cost", currency="USD", totalUsd=run.cost_usd,
                                              spotSavingsUsd=run.spot_savings_usd,
                                              unpricedAttempts=run.cost_unpriced or 0)
        events.append(_event(ended, end_time, _run(run_id, facets), job, inputs=inputs))
    return events


def _attempt_events(report: RunReport, namespace: str, attempt: ReportAttempt,
                    by_id: dict[str, ReportAttempt]) -> list[dict[str, Any]]:
    run = report.run
    parent = facet("parent", run={"runId": run_uuid(namespace, run.run_id)},
                   job={"namespace": namespace, "name": f"{namespace}.pipeline"})
    step = attempt.step or attempt.job_key or "step"
    job = _job(namespace, step, "AWS_BATCH", "STEP")
    run_id = attempt_uuid(namespace, run.run_id, attempt.attempt_id)
    facets: dict[str, Any] = {"parent": parent, **_attempt_facets(namespace, run.run_id, attempt, by_id, report)}
    reused = attempt.status == REUSED
    inputs = [] if reused else [_input(link) for link in report.datasets
                                if link.node == attempt.attempt_id and link.rel == "CONSUMED"]
    outputs = [] if reused else [_output(link) for link in report.datasets
                                 if link.node == attempt.attempt_id and link.rel in ("PRODUCED", "CONTAINS")]
    events = []
    start_time = attempt.started_at or attempt.ended_at or run.started_at or run.ended_at
    if start_time:
        events.append(_event(START, start_time, _run(run_id, facets), job, inputs=inputs))
    ended = COMPLETE if reused else ENDED.get(attempt.status or "")
    end_time = attempt.ended_at or attempt.started_at or run.ended_at or run.started_at
    if ended and end_time:
        end_facets = dict(facets)
        if ended == FAIL:
            end_facets["errorMessage"] = facet("errorMessage", message=attempt.status_reason or "failed",
                                               programmingLanguage="python")
        events.append(_event(ended, end_time, _run(run_id, end_facets), job, inputs=inputs, outputs=outputs))
    return events


def _attempt_facets(namespace: str, run_id: str, attempt: ReportAttempt, by_id: dict[str, ReportAttempt],
                    report: RunReport) -> dict[str, Any]:
    facets: dict[str, Any] = {}
    if attempt.status != REUSED:
        revision = _REVISION.search(attempt.job_definition or "")
        facets["threadline_batchJob"] = facet(
            "threadline_batchJob", jobId=attempt.job_id or None, attempt=attempt.attempt,
            queue=attempt.queue, capacity=attempt.capacity or "NONE", jobDefinition=attempt.job_definition,
            jobDefinitionRevision=int(revision.group(1)) if revision else None, image=attempt.image,
            imageDigest=image_digest(attempt.image), nodeCount=attempt.node_count or 0,
            exitCode=attempt.exit_code, statusReason=attempt.status_reason, logStream=attempt.log_stream)
    containers = [_container(c) for c in report.containers if c.attempt_id == attempt.attempt_id]
    if containers:
        facets["threadline_containers"] = facet("threadline_containers", containers=containers)
    if attempt.cache_key:
        facets["threadline_cache"] = facet("threadline_cache", cacheKey=attempt.cache_key)
    links: dict[str, Any] = {}
    for link in report.links:
        if link.src == attempt.attempt_id and link.rel in ("RETRY_OF", "FALLBACK_OF") and link.dst in by_id:
            name = "retryOf" if link.rel == "RETRY_OF" else "fallbackOf"
            links[name] = {"runId": attempt_uuid(namespace, run_id, link.dst), "attemptId": link.dst}
    if attempt.reused_attempt and attempt.reused_run:
        links["reusedFrom"] = {"runId": attempt_uuid(namespace, attempt.reused_run, attempt.reused_attempt),
                               "attemptId": attempt.reused_attempt, "threadlineRunId": attempt.reused_run}
    if links:
        facets["threadline_attemptLinks"] = facet("threadline_attemptLinks", **links)
    return facets


def _container(container: Container) -> dict[str, Any]:
    """One container of a multi-container attempt, as the `threadline_containers` facet lists it."""
    fields = {"nodeIndex": container.node_index, "name": container.name, "essential": container.essential,
              "exitCode": container.exit_code, "reason": container.reason, "logStream": container.log_stream,
              "image": container.image}
    return {key: value for key, value in fields.items() if value is not None}


def _event(event_type: str, at: str, run: dict[str, Any], job: dict[str, Any], *,
           inputs: list[dict[str, Any]] | None = None, outputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"eventType": event_type, "eventTime": at, "producer": PRODUCER, "schemaURL": SCHEMA_URL,
            "run": run, "job": job, "inputs": inputs or [], "outputs": outputs or []}


def _run(run_id: str, facets: dict[str, Any]) -> dict[str, Any]:
    return {"runId": run_id, "facets": facets} if facets else {"runId": run_id}


def _job(namespace: str, name: str, integration: str, job_type: str) -> dict[str, Any]:
    return {"namespace": namespace, "name": f"{namespace}.{name}",
            "facets": {"jobType": facet("jobType", processingType="BATCH", integration=integration,
                                        jobType=job_type)}}


def dataset_name(uri: str) -> tuple[str, str]:
    """(namespace, name) of an S3 URI by OpenLineage's naming: `s3://bucket`, the key (no trailing `/`)."""
    if not uri.startswith("s3://"):
        return "file", uri
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return f"s3://{bucket}", key.rstrip("/") or "/"


def _dataset(link: DatasetLink) -> dict[str, Any]:
    namespace, name = dataset_name(link.uri)
    facets: dict[str, Any] = {}
    version = link.version or link.etag
    if version:
        facets["version"] = facet("version", datasetVersion=version)
    fields = fields_for(link.schema_hash)
    if fields:
        facets["schema"] = facet("schema", fields=[
            {"name": name_, "type": type_, "ordinal_position": position}
            for position, (name_, type_) in enumerate(fields, start=1)])
    dataset: dict[str, Any] = {"namespace": namespace, "name": name}
    if facets:
        dataset["facets"] = facets
    return dataset


def _input(link: DatasetLink) -> dict[str, Any]:
    return _with_statistics(_dataset(link), link, "input")


def _output(link: DatasetLink) -> dict[str, Any]:
    return _with_statistics(_dataset(link), link, "output")


def _with_statistics(dataset: dict[str, Any], link: DatasetLink, side: str) -> dict[str, Any]:
    """The `inputStatistics` / `outputStatistics` facet, where the link knows a size or a row count."""
    if link.size is not None or link.row_count is not None:
        name = f"{side}Statistics"
        dataset[f"{side}Facets"] = {name: facet(name, rowCount=link.row_count, size=link.size)}
    return dataset
