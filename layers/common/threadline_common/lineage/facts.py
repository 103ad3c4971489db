"""What S3 and the validation report say about the objects a finished run wrote.

The state machine knows the prefixes a step wrote but not what they hold. Before
a `run_finished` event is written, the lineage function lists each prefix that a
successful attempt produced (ETag and size of every object) and reads the
pre-processing report (`validation.json`): the row counts of the input and of
`clean.parquet`, and the schema they were checked against. Anything it cannot
read is left out; lineage is still written without it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .. import pipeline
from .batch import attempt_records, dataset_parameters, described_jobs
from .events import RunFinished
from .graph import ObjectFacts

MAX_OBJECTS_PER_PREFIX = 1000
# Pre-processing's report (`validation_uri`) and the clean rows it counts (`clean_uri`), from the manifest.
VALIDATION_REPORT = pipeline.dataset_output("validation_uri").name
CLEAN_ROWS = pipeline.dataset_output("clean_uri").name
VALIDATING_STEP = next(step.name for step in pipeline.STEPS if "validation_uri" in step.datasets)


@dataclass
class FactsResult:
    facts: list[ObjectFacts] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def split_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an S3 URI: {uri!r}")
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def schema_hash(schema: Any) -> str:
    """A short stable hash of the schema object the validation report names."""
    return hashlib.sha256(json.dumps(schema, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def collect_facts(s3: Any, event: RunFinished) -> FactsResult:
    """Facts about the run's input and the objects its successful attempts wrote."""
    result = FactsResult()
    produced: list[tuple[str, str]] = []  # (step, prefix)
    for job_key, description in described_jobs(event.jobs, event.failures):
        try:
            records = attempt_records(job_key, description, first_seq=1)
        except ValueError:
            continue
        last = records[-1]
        if last.status != "SUCCEEDED":
            continue
        for name in dataset_parameters(last.step)[1]:
            uri = last.parameters.get(name)
            if uri and uri.endswith("/"):
                produced.append((last.step, uri))
    listed: dict[str, ObjectFacts] = {}
    for _, prefix in produced:
        for fact in _list_prefix(s3, prefix, result):
            listed[fact.uri] = fact
    for step, prefix in produced:
        if step == VALIDATING_STEP and prefix + VALIDATION_REPORT in listed:
            _add_validation_facts(s3, prefix, event, listed, result)
    result.facts.extend(listed.values())
    return result


def _list_prefix(s3: Any, prefix: str, result: FactsResult) -> list[ObjectFacts]:
    try:
        bucket, key = split_uri(prefix)
        answer = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=MAX_OBJECTS_PER_PREFIX)
    except (ClientError, BotoCoreError, ValueError) as exc:
        result.problems.append(f"list {prefix}: {exc}")
        return []
    return [ObjectFacts(uri=f"s3://{bucket}/{item['Key']}", etag=str(item.get("ETag") or "").strip('"') or None,
                        size=int(item["Size"]) if "Size" in item else None)
            for item in answer.get("Contents", [])]


def _add_validation_facts(s3: Any, prefix: str, event: RunFinished, listed: dict[str, ObjectFacts],
                          result: FactsResult) -> None:
    """Row counts and schema from pre-processing's report, for the input and clean.parquet."""
    uri = prefix + VALIDATION_REPORT
    try:
        bucket, key = split_uri(uri)
        report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except (ClientError, BotoCoreError, ValueError) as exc:
        result.problems.append(f"read {uri}: {exc}")
        return
    rows = report.get("rows") if isinstance(report, dict) else None
    schema = report.get("schema") if isinstance(report, dict) else None
    if not isinstance(rows, dict):
        result.problems.append(f"{uri} has no row counts")
        return
    schema_name = f"{schema.get('name')}@{schema.get('version')}" if isinstance(schema, dict) else None
    digest = schema_hash(schema) if isinstance(schema, dict) else None
    clean = listed.get(prefix + CLEAN_ROWS)
    if clean is not None and _count(rows.get("accepted")) is not None:
        listed[clean.uri] = ObjectFacts(uri=clean.uri, etag=clean.etag, size=clean.size,
                                        row_count=_count(rows.get("accepted")), schema=schema_name,
                                        schema_hash=digest)
    source_uri = event.source.get("uri")
    if source_uri and _count(rows.get("read")) is not None:
        listed[source_uri] = ObjectFacts(uri=source_uri, row_count=_count(rows.get("read")),
                                         schema=schema_name, schema_hash=digest)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
