"""Dataset facts read from S3 and the validation report, and written to the graph."""

from __future__ import annotations

import json
from typing import Any

import boto3
from threadline_common.lineage import parse_lineage_event, run_datasets
from threadline_common.lineage.facts import collect_facts, schema_hash


def test_facts_come_from_the_written_prefixes_and_the_validation_report(
        neptune_env: Any, s3_endpoint: str, runner: Any, record_lineage: Any, sample_event: Any,
        lambda_context: Any) -> None:
    finished = sample_event("lineage_run_finished.json")
    run_id = finished["run_id"]
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    for bucket in ("threadline-intermediate-123456789012", "threadline-results-123456789012"):
        s3.create_bucket(Bucket=bucket)
    prefix = f"runs/{run_id}/preprocess/"
    report = {"status": "passed", "rows": {"read": 1843, "accepted": 1800, "rejected": 43},
              "schema": {"name": "positions", "version": 1}}
    s3.put_object(Bucket="threadline-intermediate-123456789012", Key=prefix + "clean.parquet", Body=b"x" * 10)
    s3.put_object(Bucket="threadline-intermediate-123456789012", Key=prefix + "validation.json",
                  Body=json.dumps(report).encode())
    s3.put_object(Bucket="threadline-results-123456789012", Key=f"runs/{run_id}/report.json", Body=b"{}")

    found = collect_facts(s3, parse_lineage_event(finished))

    facts = {fact.uri.rsplit("/", 1)[-1]: fact for fact in found.facts}
    assert facts["clean.parquet"].row_count == 1800 and facts["clean.parquet"].size == 10
    assert facts["clean.parquet"].schema == "positions@1"
    assert facts["clean.parquet"].schema_hash == schema_hash({"name": "positions", "version": 1})
    assert facts["sample-positions.csv"].row_count == 1843
    assert facts["report.json"].etag
    assert found.problems == []  # the analysis prefix is simply empty here

    record_lineage.handler(finished, lambda_context)  # the function reads the same facts itself

    written = {d.uri.rsplit("/", 1)[-1]: d for d in run_datasets(runner, run_id)}
    assert written["clean.parquet"].row_count == 1800 and written["clean.parquet"].schema_hash
    assert written["sample-positions.csv"].row_count == 1843
    assert written["report.json"].etag == facts["report.json"].etag


def test_unreadable_outputs_leave_facts_out_and_say_why(s3_endpoint: str, sample_event: Any) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")

    text = json.dumps(sample_event("lineage_run_finished.json"))
    for bucket in ("threadline-intermediate-123456789012", "threadline-results-123456789012"):
        text = text.replace(bucket, f"{bucket}-gone")

    found = collect_facts(s3, parse_lineage_event(json.loads(text)))

    assert found.facts == []
    assert len(found.problems) == 3 and all("NoSuchBucket" in problem for problem in found.problems)
