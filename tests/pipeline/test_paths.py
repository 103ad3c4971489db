"""Every branch of the state machine, driven through the twin by S3 uploads and fault injection.

The branches a fault of the fault matrix takes (Spot and capacity fallbacks, an
analysis exit, Slack down, the happy path) have their paths checked there, on
the matrix's own runs; these are the rest.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_helpers import FAILURE_TAIL, HAPPY_PATH

SAMPLE = (Path(__file__).resolve().parents[2] / "src" / "threadline" / "data" / "sample-positions.csv").read_bytes()


def test_single_spot_reclamation_is_retried_by_batch_not_the_state_machine(run_pipeline, twin):
    result = run_pipeline("spot-once.csv", SAMPLE, faults=("preprocess@SpotJobQueue:spot:1",))

    assert result.status == "SUCCEEDED", result.cause
    assert result.path == HAPPY_PATH
    job = next(j for j in twin.batch_runtime.jobs.values() if j.job_name == f"preprocess-{result.run_id}")
    assert len(job.attempts) == 2 and job.attempts[1]["container"]["exitCode"] == 0


def test_malformed_csv_is_quarantined_and_the_run_fails_with_a_validation_error(run_pipeline, twin):
    body = b"position_id,asset,colour\n1,ACME,blue\n"
    result = run_pipeline("malformed.csv", body)

    assert result.status == "FAILED"
    assert result.error == "ValidationFailed"
    assert result.cause  # the job's own summary, quoted
    assert result.path == HAPPY_PATH[:5] + ["Preprocess", "CheckPreprocessFailure", "ParsePreprocessFailure",
                                            "PreprocessFailureKind", "ReadValidationReport",
                                            "PrepareValidationFailure"] + FAILURE_TAIL
    quarantined = result.objects["QuarantineBucket"]
    assert any(uri.endswith("/malformed.csv") for uri in quarantined)
    assert any(uri.endswith("/validation.json") for uri in quarantined)
    assert any(uri.endswith("/validation-summary.json") for uri in quarantined)
    assert result.record["status"] == "FAILED" and result.record["error_name"] == "ValidationFailed"
    assert [m.get("kind") for m in result.slack] == ["run_started", "validation_failed"]
    assert result.cause in json.dumps(result.slack[-1])  # Slack quotes the job's summary
    # Batch did not retry a validation failure.
    job = next(j for j in twin.batch_runtime.jobs.values() if j.job_name == f"preprocess-{result.run_id}")
    assert len(job.attempts) == 1 and job.attempts[0]["container"]["exitCode"] == 65


def test_duplicate_s3_event_starts_no_second_run(run_pipeline, twin):
    result = run_pipeline("dupe.csv", SAMPLE)
    assert result.status == "SUCCEEDED"
    bucket = twin.physical_id("IncomingBucket")
    head = twin.client("s3").head_object(Bucket=bucket, Key="incoming/dupe.csv")
    event = {
        "Source": "aws.s3", "DetailType": "Object Created",
        "Detail": json.dumps({"bucket": {"name": bucket},
                              "object": {"key": "incoming/dupe.csv", "size": head["ContentLength"],
                                         "etag": head["ETag"].strip('"'), "version-id": head["VersionId"]}}),
    }
    before = len(twin.lambda_runtime.invocations)
    twin.client("events").put_events(Entries=[event])

    start_calls = _wait_for_invocations(twin, before, "StartRunFunction")
    assert start_calls[-1].payload["status"] == "duplicate"
    executions = twin.client("stepfunctions").list_executions(stateMachineArn=twin.state_machine_arn)["executions"]
    assert [e["name"] for e in executions].count(result.run_id) == 1


def _wait_for_invocations(twin, before: int, function: str, timeout: float = 20.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        calls = [i for i in twin.lambda_runtime.invocations[before:] if i.function == function]
        if calls:
            return calls
        time.sleep(0.05)
    pytest.fail(f"{function} was not invoked")


def test_validation_failure_found_on_the_on_demand_fallback(run_pipeline):
    body = b"position_id,asset,colour\n1,ACME,blue\n"
    result = run_pipeline("bad-after-spot.csv", body, faults=("preprocess@SpotJobQueue:spot",))

    assert result.status == "FAILED" and result.error == "ValidationFailed"
    assert result.path[5:15] == ["Preprocess", "CheckPreprocessFailure", "ParsePreprocessFailure",
                                 "PreprocessFailureKind", "PreprocessOnDemand", "CheckPreprocessOnDemandFailure",
                                 "ParsePreprocessOnDemandFailure",
                                 "PreprocessOnDemandFailureKind", "ReadValidationReport", "PrepareValidationFailure"]


def test_exit_65_without_a_report_still_fails_as_a_validation_error(run_pipeline):
    result = run_pipeline("no-report.csv", SAMPLE, faults=("preprocess:exit=65",))

    assert result.status == "FAILED" and result.error == "ValidationFailed"
    assert "could not be read" in result.cause
    assert "ValidationReportUnreadable" in result.path and "PrepareValidationFailure" not in result.path


def test_preprocess_crash_fails_the_run_as_a_preprocess_failure(run_pipeline):
    result = run_pipeline("pre-crash.csv", SAMPLE, faults=("preprocess:exit=1",))

    assert result.status == "FAILED" and result.error == "PreprocessFailed"
    assert result.path == HAPPY_PATH[:6] + ["CheckPreprocessFailure", "ParsePreprocessFailure",
                                            "PreprocessFailureKind", "PreprocessFailed"] + FAILURE_TAIL


def test_postprocess_failing_on_demand_after_spot_fails_the_run(run_pipeline):
    result = run_pipeline("post-both.csv", SAMPLE,
                          faults=("postprocess@SpotJobQueue:spot", "postprocess@OnDemandJobQueue:exit=1"))

    assert result.status == "FAILED" and result.error == "PostprocessFailed"
    assert result.path[-8:] == ["PostprocessOnDemand", "CheckPostprocessOnDemandFailure",
                                "ParsePostprocessOnDemandFailure", "PostprocessFailed"] + FAILURE_TAIL
