"""Resume from the graph: a rerun skips the steps an earlier run already did, and only those.

Each rerun is a new execution of the same object version with `"resume": true`
(what `threadline run FILE --resume` and `threadline lineage rerun` start).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import definition_changed, finish_together, run_together, start_resume
from threadline_common.lineage import AttemptLink, NeptuneCypher, run_report

from threadline.lineage.rerun import source_of_run
from threadline.lineage.view import twin_graph
from threadline.twin.runs import RunResult

SAMPLE = (Path(__file__).resolve().parents[2] / "src" / "threadline" / "data" / "sample-positions.csv").read_bytes()
START = ["InitialiseRun", "RecordRunStart", "CreateRunRecord", "NotifyRunStarted", "ChooseFirstStep"]
END = ["RecordRunSucceeded", "NotifyRunSucceeded", "RunSucceeded"]
SEED = '"seed": "20261121"'
FAILED, SUCCEEDED = "resume-failed.csv", "resume-done.csv"  # the earlier runs the reruns resume


@pytest.fixture(scope="module")
def earlier(twin: Any, visited: set[str]) -> dict[str, RunResult]:
    """The runs the reruns resume, run at once: one whose analysis failed, one that succeeded.

    Every test that changes a step resumes the same succeeded run: a changed step gets a key of its
    own, so no rerun can reuse another rerun's work, in whatever order the tests run.
    """
    runs = run_together(twin, {FAILED: (SAMPLE, ("analysis:exit=3",)), SUCCEEDED: (SAMPLE, ())})
    for run in runs.values():
        visited.update(run.path)
    assert twin.event_sources.wait_idle(60)  # lineage is written from the queue, after the run
    return runs


def graph(twin: Any) -> NeptuneCypher:
    return twin_graph(twin)


def batch_jobs(twin: Any, run_id: str) -> dict[str, dict[str, str]]:
    """The Batch jobs a run submitted, by job name prefix, with their parameters (as Batch describes them)."""
    records = [job for job in list(twin.batch_runtime.jobs.values()) if job.job_name.endswith(f"-{run_id}")]
    if not records:
        return {}
    described = twin.client("batch").describe_jobs(jobs=[job.job_id for job in records])["jobs"]
    return {job["jobName"][: -len(run_id) - 1]: dict(job["parameters"]) for job in described}


def replaced(old: str, new: str) -> Callable[[str], str]:
    """A definition change: `old` (which must be there) becomes `new`."""
    def change(definition: str) -> str:
        assert old in definition
        return definition.replace(old, new)
    return change


def rebuilt(image: str) -> str:
    """The same repository with another digest: the image built again from changed code."""
    repository, digest = image.split("@sha256:")
    return f"{repository}@sha256:{hashlib.sha256(digest.encode()).hexdigest()}"


def node_containers(node_range: dict[str, Any]) -> list[dict[str, Any]]:
    """A node range's containers: its one `container`, or every container of its task (`ecsProperties`)."""
    if "ecsProperties" in node_range:
        return [c for task in node_range["ecsProperties"]["taskProperties"] for c in task["containers"]]
    return [node_range["container"]]


def definition_image(twin: Any, job_definition: str) -> str:
    [definition] = twin.client("batch").describe_job_definitions(jobDefinitions=[job_definition])["jobDefinitions"]
    nodes = definition.get("nodeProperties")
    container = node_containers(nodes["nodeRangeProperties"][0])[0] if nodes else definition["containerProperties"]
    return str(container["image"])


def new_analysis_image(twin: Any) -> tuple[str, str]:
    """Register the analysis job definition again with another image: (old ARN, new revision's ARN)."""
    batch = twin.client("batch")
    old = twin.physical_id("AnalysisJobDefinition")
    [definition] = batch.describe_job_definitions(jobDefinitions=[old])["jobDefinitions"]
    nodes = definition["nodeProperties"]
    for node_range in nodes["nodeRangeProperties"]:
        for container in node_containers(node_range):
            container["image"] = rebuilt(container["image"])
    new = batch.register_job_definition(
        jobDefinitionName=definition["jobDefinitionName"], type="multinode", nodeProperties=nodes,
        retryStrategy=definition.get("retryStrategy", {}), timeout=definition.get("timeout", {}),
        platformCapabilities=definition.get("platformCapabilities", ["EC2"]))["jobDefinitionArn"]
    assert new != old
    return old, new


def test_resume_after_a_failed_analysis_reruns_from_the_analysis(earlier, resume_pipeline, twin):
    failed = earlier[FAILED]
    assert failed.status == "FAILED" and failed.error == "AnalysisFailed"
    # The cause is fixed: the fault was scoped to the failed run and is gone.

    resumed = resume_pipeline(failed)

    assert resumed.status == "SUCCEEDED", resumed.cause
    assert resumed.path == START + ["PlanResume", "ResumeFrom", "Analysis", "Postprocess"] + END
    jobs = batch_jobs(twin, resumed.run_id)
    assert sorted(jobs) == ["analysis", "postprocess"]  # no pre-processing job
    assert jobs["analysis"]["clean_uri"] == f"s3://{twin.physical_id('IntermediateBucket')}/runs/" \
                                            f"{failed.run_id}/preprocess/clean.parquet"
    assert jobs["postprocess"]["validation_uri"].endswith(f"/runs/{failed.run_id}/preprocess/validation.json")
    assert any(uri.endswith(f"runs/{resumed.run_id}/report.json") for uri in resumed.objects["ResultsBucket"])

    report = run_report(graph(twin), resumed.run_id)
    first = run_report(graph(twin), failed.run_id)
    [reused, analysis, post] = report.attempts
    assert (reused.step, reused.status, reused.reused_run) == ("preprocess", "REUSED", failed.run_id)
    assert reused.reused_attempt == first.attempts[0].attempt_id
    assert reused.cache_key == first.attempts[0].cache_key
    assert analysis.cache_key == first.attempts[1].cache_key  # the same work as the failed attempt
    assert (analysis.status, post.status) == ("SUCCEEDED", "SUCCEEDED")
    assert AttemptLink(reused.attempt_id, "FOLLOWED_BY", analysis.attempt_id) in report.links


def test_unchanged_reruns_skip_the_work_and_changes_rerun_only_what_depends_on_them(earlier, twin, visited):
    first = earlier[SUCCEEDED]
    assert first.status == "SUCCEEDED", first.cause
    keys = {a.step: a.cache_key for a in run_report(graph(twin), first.run_id).attempts}

    # Three reruns at once: each execution runs the definition deployed when it started.
    same_arn = start_resume(twin, first)
    with definition_changed(twin, replaced(SEED, '"seed": "7"')):
        seeded_arn = start_resume(twin, first)
    old, new = new_analysis_image(twin)
    with definition_changed(twin, replaced(old, new)):
        imaged_arn = start_resume(twin, first)
    reruns = finish_together(twin, {"same": same_arn, "seeded": seeded_arn, "imaged": imaged_arn})
    for run in reruns.values():
        visited.update(run.path)
    assert twin.event_sources.wait_idle(60)
    same, seeded, imaged = reruns["same"], reruns["seeded"], reruns["imaged"]

    # Nothing changed: every step is reused, no Batch job runs, the run's record points at the earlier report.
    assert same.status == "SUCCEEDED", same.cause
    assert same.path == START + ["PlanResume", "ResumeFrom", "MarkRunReused"] + END
    assert batch_jobs(twin, same.run_id) == {}
    report_json = f"s3://{twin.physical_id('ResultsBucket')}/runs/{first.run_id}/report.json"
    assert (same.record["status"], same.record["reused_from"]) == ("SUCCEEDED", first.run_id)
    assert same.record["outputs"]["report_json"] == report_json
    assert same.slack[-1]["kind"] == "run_succeeded"
    assert f"runs/{first.run_id}/report.html" in json.dumps(same.slack[-1])
    reused = run_report(graph(twin), same.run_id).attempts
    assert [(a.step, a.status, a.reused_run) for a in reused] == [
        ("preprocess", "REUSED", first.run_id), ("analysis", "REUSED", first.run_id),
        ("postprocess", "REUSED", first.run_id)]
    assert [a.cache_key for a in reused] == [keys["preprocess"], keys["analysis"], keys["postprocess"]]

    # A parameter of the analysis changed: the analysis (and what follows) runs, pre-processing is reused.
    assert seeded.path == START + ["PlanResume", "ResumeFrom", "Analysis", "Postprocess"] + END
    assert batch_jobs(twin, seeded.run_id)["analysis"]["seed"] == "7"
    seeded_keys = {a.step: a.cache_key for a in run_report(graph(twin), seeded.run_id).attempts}
    assert seeded_keys["preprocess"] == keys["preprocess"] and seeded_keys["analysis"] != keys["analysis"]

    # A new analysis image: the same.
    assert imaged.path == START + ["PlanResume", "ResumeFrom", "Analysis", "Postprocess"] + END
    attempts = run_report(graph(twin), imaged.run_id).attempts
    assert attempts[1].image == definition_image(twin, new) and attempts[1].job_definition == new
    assert attempts[0].status == "REUSED" and attempts[1].cache_key not in (keys["analysis"], seeded_keys["analysis"])

    # A changed file: no earlier step has its keys, everything runs (asked of the planner the state machine calls).
    plan = plan_for(twin, first, etag="0" * 32)
    assert (plan["start_at"], plan["reused"]) == ("preprocess", {})
    assert plan_for(twin, first)["start_at"] == "done"  # the unchanged file, for contrast


def plan_for(twin: Any, run: RunResult, etag: str | None = None) -> dict[str, Any]:
    """Invoke the planner with the input the state machine's PlanResume state sends."""
    sfn = twin.client("stepfunctions")
    source = source_of_run(sfn, twin.state_machine_arn, run.run_id)
    if etag:
        source = {**source, "etag": etag, "version_id": "v-changed"}
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=twin.state_machine_arn)["definition"])
    payload = json.loads(json.dumps(definition["States"]["PlanResume"]["Parameters"]["Payload"]))
    payload.pop("run_id.$"), payload.pop("source.$"), payload.pop("datasets.$")
    intermediate = twin.physical_id("IntermediateBucket")
    payload.update(run_id="planned", source=source, datasets={
        "clean_uri": f"s3://{intermediate}/runs/planned/preprocess/clean.parquet",
        "validation_uri": f"s3://{intermediate}/runs/planned/preprocess/validation.json",
        "partials_prefix": f"s3://{intermediate}/runs/planned/analysis/"})
    response = twin.client("lambda").invoke(FunctionName=twin.physical_id("PlanResumeFunction"),
                                            Payload=json.dumps(payload).encode())
    assert "FunctionError" not in response
    return json.loads(response["Payload"].read())


def new_postprocess_image(twin: Any) -> tuple[str, str]:
    """Register the post-processing job definition again with another image: (old ARN, new revision's ARN)."""
    batch = twin.client("batch")
    old = twin.physical_id("PostprocessJobDefinition")
    [definition] = batch.describe_job_definitions(jobDefinitions=[old])["jobDefinitions"]
    container = definition["containerProperties"]
    container["image"] = rebuilt(container["image"])
    new = batch.register_job_definition(
        jobDefinitionName=definition["jobDefinitionName"], type="container", containerProperties=container,
        retryStrategy=definition.get("retryStrategy", {}), timeout=definition.get("timeout", {}))["jobDefinitionArn"]
    assert new != old
    return old, new


def test_a_new_postprocess_image_reruns_only_the_postprocessing(earlier, resume_pipeline, twin):
    first = earlier[SUCCEEDED]
    assert first.status == "SUCCEEDED", first.cause

    old, new = new_postprocess_image(twin)
    with definition_changed(twin, replaced(old, new)):
        rerun = resume_pipeline(first)

    assert rerun.status == "SUCCEEDED", rerun.cause
    assert rerun.path == START + ["PlanResume", "ResumeFrom", "Postprocess"] + END
    jobs = batch_jobs(twin, rerun.run_id)
    assert list(jobs) == ["postprocess"]
    assert jobs["postprocess"]["partials_prefix"].endswith(f"runs/{first.run_id}/analysis/")
    assert twin.event_sources.wait_idle(60)
    attempts = run_report(graph(twin), rerun.run_id).attempts
    assert [(a.step, a.status) for a in attempts] == [
        ("preprocess", "REUSED"), ("analysis", "REUSED"), ("postprocess", "SUCCEEDED")]
    assert attempts[2].image == definition_image(twin, attempts[2].job_definition)
    assert attempts[2].image != definition_image(twin, twin.physical_id("PostprocessJobDefinition"))
