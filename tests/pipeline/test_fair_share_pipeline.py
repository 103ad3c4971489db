"""The team of an upload reaches every SubmitJob of its run as the job's fair-share identifier."""

from __future__ import annotations

from pathlib import Path

SAMPLE = (Path(__file__).resolve().parents[2] / "src" / "threadline" / "data" / "sample-positions.csv").read_bytes()


def test_the_upload_folder_is_the_share_of_every_job_of_the_run(run_pipeline, twin):
    result = run_pipeline("research/team-folder.csv", SAMPLE)

    assert result.status == "SUCCEEDED", result.cause
    records = [job for job in twin.batch_runtime.jobs.values() if job.job_name.endswith(f"-{result.run_id}")]
    described = twin.client("batch").describe_jobs(jobs=[job.job_id for job in records])["jobs"]
    shares = {job["jobName"].removesuffix(f"-{result.run_id}"): job.get("shareIdentifier") for job in described}
    assert shares == {"preprocess": "research", "analysis": "research", "postprocess": "research"}
    priorities = {job["jobName"].removesuffix(f"-{result.run_id}"): job.get("schedulingPriority") for job in described}
    assert priorities == {"preprocess": 10, "analysis": None, "postprocess": 20}
    # each attempt was placed in its queue's first compute environment, which had room
    placed = {ticket.job_id: ticket.environment for ticket in twin.batch_runtime.scheduler.started}
    assert {placed[job.job_id] for job in records if not job.job_name.startswith("analysis")} == {
        "threadline-SpotComputeEnvironment"}
    assert {placed[job.job_id] for job in records if job.job_name.startswith("analysis")} == {
        "threadline-GpuComputeEnvironment"}


def test_a_folder_that_names_no_team_runs_as_the_default_team(run_pipeline, twin):
    result = run_pipeline("marketing/no-team.csv", SAMPLE)

    assert result.status == "SUCCEEDED", result.cause
    job = next(j for j in twin.batch_runtime.jobs.values() if j.job_name == f"preprocess-{result.run_id}")
    [described] = twin.client("batch").describe_jobs(jobs=[job.job_id])["jobs"]
    assert described["shareIdentifier"] == "shared"
