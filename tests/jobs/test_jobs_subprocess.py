"""The three jobs as real processes, the way the twin runs them: cwd jobs/, moto over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest

from jobs_helpers import BUCKETS, JOBS, REGION, RUN_TABLE, create_resources, write_sample

RUN = "sample-positions-4f1c2a9e0b7d3c15"


CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def endpoint(moto_server: str) -> str:
    create_resources(moto_server, **CREDENTIALS)
    return moto_server


def client(endpoint: str, service: str):
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, **CREDENTIALS)


def job_env(endpoint: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "THREADLINE_"))}
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION=REGION, **extra)
    return env


def start(job: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", job, *args], cwd=JOBS, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> tuple[int, str]:
    _, err = process.communicate(timeout=120)
    return process.returncode, err


def preprocess_args(run_id: str, key: str) -> list[str]:
    return ["--run-id", run_id, "--input", f"s3://{BUCKETS['incoming']}/{key}",
            "--output-prefix", f"s3://{BUCKETS['intermediate']}/runs/{run_id}/preprocess/",
            "--quarantine-prefix", f"s3://{BUCKETS['quarantine']}/{run_id}/", "--max-reject-share", "0.05"]


def test_pipeline_jobs_as_processes(endpoint, tmp_path):
    sample = write_sample(tmp_path / "sample-positions.csv", rows=300, bad_share=0.01)
    client(endpoint, "s3").upload_file(str(sample), BUCKETS["incoming"], "incoming/sample-positions.csv")
    env = job_env(endpoint)

    code, err = finish(start("preprocess", preprocess_args(RUN, "incoming/sample-positions.csv"), env))
    assert code == 0, err

    inter = f"s3://{BUCKETS['intermediate']}/runs/{RUN}"
    analysis = ["--run-id", RUN, "--input", f"{inter}/preprocess/clean.parquet",
                "--output-prefix", f"{inter}/analysis/", "--scenarios", "5000", "--horizon-days", "10", "--seed", "42"]
    nodes = [start("analysis", analysis, {**env, "AWS_BATCH_JOB_NODE_INDEX": str(k), "AWS_BATCH_JOB_NUM_NODES": "2",
                                          "AWS_BATCH_JOB_MAIN_NODE_INDEX": "0"}) for k in (0, 1)]
    for node in nodes:
        code, err = finish(node)
        assert code == 0, err

    post = ["--run-id", RUN, "--partials-prefix", f"{inter}/analysis/", "--num-nodes", "2",
            "--validation-uri", f"{inter}/preprocess/validation.json",
            "--report-prefix", f"s3://{BUCKETS['results']}/runs/{RUN}/"]
    code, err = finish(start("postprocess", post, {**env, "RUN_TABLE": RUN_TABLE}))
    assert code == 0, err

    s3 = client(endpoint, "s3")
    report = json.loads(s3.get_object(Bucket=BUCKETS["results"], Key=f"runs/{RUN}/report.json")["Body"].read())
    assert report["run"]["accepted_rows"] == 297 and report["run"]["num_nodes"] == 2
    assert report["risk"]["var_99"] >= report["risk"]["var_95"]
    item = client(endpoint, "dynamodb").get_item(TableName=RUN_TABLE, Key={"run_id": {"S": RUN}})["Item"]
    assert item["status"] == {"S": "SUCCEEDED"} and item["rejected_rows"] == {"N": "3"}


def test_failures_as_processes(endpoint, tmp_path):
    bad = write_sample(tmp_path / "bad.csv", rows=100, bad_share=0.3)
    client(endpoint, "s3").upload_file(str(bad), BUCKETS["incoming"], "incoming/bad.csv")
    env = job_env(endpoint)

    code, err = finish(start("preprocess", preprocess_args("bad-run", "incoming/bad.csv"), env))
    assert code == 65
    assert err.strip().splitlines()[-1].startswith("threadline-error: validation failed: positions file rejected")
    assert "Traceback" not in err

    code, err = finish(start("analysis", ["--run-id", "x"], env))
    assert code == 2 and err.strip().splitlines()[-1].startswith("threadline-error: bad command line")

    code, err = finish(start("preprocess", preprocess_args("gone", "incoming/missing.csv"), env))
    assert code == 1 and err.strip().splitlines()[-1].startswith("threadline-error: cannot read")
