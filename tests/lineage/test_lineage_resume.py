"""Planning a resumed run against the graph and S3: what is reused, and what stops reuse."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from threadline_common.lineage import run_report
from threadline_common.lineage.cache import configuration
from threadline_common.lineage.resume import plan_resume

MID, RESULTS = "threadline-intermediate-123456789012", "threadline-results-123456789012"


@pytest.fixture
def earlier(neptune_env: Any, s3_endpoint: str, runner: Any, record_lineage: Any, sample_event: Any,
            lambda_context: Any) -> dict[str, Any]:
    """The sample run recorded in the graph, with its outputs in S3."""
    started, finished = sample_event("lineage_run_started.json"), sample_event("lineage_run_finished.json")
    record_lineage.handler(started, lambda_context)
    record_lineage.handler(finished, lambda_context)
    run_id = started["run_id"]
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=MID)
    s3.create_bucket(Bucket=RESULTS)
    for key in ("preprocess/clean.parquet", "preprocess/validation.json", "analysis/node-0000.parquet",
                "analysis/node-0001.parquet"):
        s3.put_object(Bucket=MID, Key=f"runs/{run_id}/{key}", Body=b"x")
    for key in ("report.json", "report.html"):
        s3.put_object(Bucket=RESULTS, Key=f"runs/{run_id}/{key}", Body=b"x")
    attempts = {a.step: a for a in run_report(runner, run_id).attempts if a.status == "SUCCEEDED"}
    steps = {step: {"job_definition": a.job_definition, "parameters": configuration(step, a.parameters)}
             for step, a in attempts.items()}
    images = {a.job_definition: a.image for a in attempts.values()}
    own = {"clean_uri": f"s3://{MID}/runs/new/preprocess/clean.parquet",
           "validation_uri": f"s3://{MID}/runs/new/preprocess/validation.json",
           "partials_prefix": f"s3://{MID}/runs/new/analysis/",
           "report_json": f"s3://{RESULTS}/runs/new/report.json", "report_html": f"s3://{RESULTS}/runs/new/report.html"}
    return {"run_id": run_id, "source": started["source"], "steps": steps, "images": images, "own": own, "s3": s3,
            "attempts": attempts}


def plan(runner: Any, earlier: dict[str, Any], **changes: Any) -> Any:
    steps = {step: {"job_definition": spec["job_definition"], "parameters": dict(spec["parameters"])}
             for step, spec in earlier["steps"].items()}
    for step, parameters in changes.items():
        steps[step]["parameters"].update(parameters)
    return plan_resume(runner, earlier["s3"], earlier["images"].get, earlier["source"], earlier["own"], steps)


def test_an_unchanged_rerun_reuses_every_step_and_reads_the_earlier_outputs(runner, earlier) -> None:
    result = plan(runner, earlier)

    assert result.start_at == "done"
    assert {step: entry["run_id"] for step, entry in result.reused.items()} == {
        "preprocess": earlier["run_id"], "analysis": earlier["run_id"], "postprocess": earlier["run_id"]}
    assert result.reused["analysis"]["attempt_id"] == earlier["attempts"]["analysis"].attempt_id
    assert result.keys["analysis"] == earlier["attempts"]["analysis"].cache_key  # planner and writer agree
    assert result.datasets["clean_uri"] == f"s3://{MID}/runs/{earlier['run_id']}/preprocess/clean.parquet"
    assert result.datasets["report_html"] == f"s3://{RESULTS}/runs/{earlier['run_id']}/report.html"


def test_a_changed_parameter_stops_reuse_at_its_step(runner, earlier) -> None:
    result = plan(runner, earlier, analysis={"seed": "1"})

    assert result.start_at == "analysis" and list(result.reused) == ["preprocess"]
    assert result.datasets["partials_prefix"] == earlier["own"]["partials_prefix"]


def test_outputs_that_expired_are_not_reused(runner, earlier) -> None:
    earlier["s3"].delete_object(Bucket=MID, Key=f"runs/{earlier['run_id']}/analysis/node-0001.parquet")
    result = plan(runner, earlier)
    assert result.start_at == "analysis" and list(result.reused) == ["preprocess"]
    assert any("node-0001.parquet is gone" in note for note in result.notes)

    earlier["s3"].delete_object(Bucket=MID, Key=f"runs/{earlier['run_id']}/preprocess/clean.parquet")
    assert plan(runner, earlier).start_at == "preprocess"


def test_the_analysis_is_reused_without_the_report(runner, earlier) -> None:
    """Without the earlier report only post-processing runs, on the earlier run's partial results."""
    earlier["s3"].delete_object(Bucket=RESULTS, Key=f"runs/{earlier['run_id']}/report.html")

    result = plan(runner, earlier)

    assert result.start_at == "postprocess" and list(result.reused) == ["preprocess", "analysis"]
    assert result.datasets["partials_prefix"] == f"s3://{MID}/runs/{earlier['run_id']}/analysis/"


def test_a_changed_file_reuses_nothing(runner, earlier) -> None:
    earlier["source"] = {**earlier["source"], "etag": "0" * 32, "version_id": "another"}

    result = plan(runner, earlier)

    assert (result.start_at, result.reused) == ("preprocess", {})
    assert result.datasets == earlier["own"]


def test_an_image_named_by_a_tag_is_never_reused(runner, earlier) -> None:
    """Even the same tag: it may have been pushed again with other code since (issue 13, item 10)."""
    tagged = {definition: image.split("@", 1)[0] + ":latest" if "/analysis@" in image else image
              for definition, image in earlier["images"].items()}
    steps = {step: {"job_definition": spec["job_definition"], "parameters": dict(spec["parameters"])}
             for step, spec in earlier["steps"].items()}

    result = plan_resume(runner, earlier["s3"], tagged.get, earlier["source"], earlier["own"], steps)

    assert result.start_at == "analysis" and set(result.reused) == {"preprocess"}
    assert any("analysis: its image" in note and ":latest is not pinned by digest" in note
               for note in result.notes)
