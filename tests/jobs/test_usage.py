"""Each job attempt's usage record (jobkit.usage): peak memory and CPU, written on success and failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest

from jobkit import usage
from jobkit.errors import JobError
from jobkit.runner import ERROR_PREFIX, run

from jobs_helpers import BUCKETS, JOBS, REGION, create_resources, write_sample

RUN = "usage-run-0123456789abcdef"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture
def in_batch(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_BATCH_JOB_ID", "job-1#1")
    monkeypatch.setenv("AWS_BATCH_JOB_ATTEMPT", "2")


def _records(s3, prefix: str = f"runs/{RUN}/usage/") -> dict[str, dict]:
    listed = s3.list_objects_v2(Bucket=BUCKETS["intermediate"], Prefix=prefix).get("Contents", [])
    return {item["Key"]: json.loads(s3.get_object(Bucket=BUCKETS["intermediate"], Key=item["Key"])["Body"].read())
            for item in listed}


def _main(fail: bool = False):
    def main(argv):
        usage.report_to(BUCKETS["intermediate"], RUN)
        block = bytearray(64 * 1024 * 1024)  # touched, so it is resident
        block[::4096] = b"x" * len(block[::4096])
        if fail:
            raise JobError("cannot read s3://somewhere/input.csv")
    return main


def test_a_successful_job_writes_its_usage_record(in_batch):
    assert run("demo", _main()) == 0

    records = _records(boto3.client("s3", region_name=REGION))
    key = f"runs/{RUN}/usage/demo/job-1-node-1-attempt-2.json"
    assert list(records) == [key]
    record = records[key]
    assert (record["run_id"], record["step"], record["job_id"]) == (RUN, "demo", "job-1")
    assert (record["node_index"], record["attempt"], record["exit_code"]) == (1, 2, 0)
    assert record["peak_rss_mib"] >= 64  # at least the block it touched
    assert record["cpu_seconds"] >= 0 and record["wall_seconds"] >= 0


def test_a_failed_job_writes_its_record_and_keeps_its_exit_code_and_last_line(in_batch, capsys):
    assert run("demo", _main(fail=True)) == 1

    [record] = _records(boto3.client("s3", region_name=REGION)).values()
    assert record["exit_code"] == 1 and record["peak_rss_mib"] > 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith(ERROR_PREFIX)


def test_the_record_is_written_with_the_job_s_own_client(in_batch, monkeypatch):
    from jobkit.aws import S3

    writers: list[S3] = []

    class Recorded(S3):
        def put_json(self, document, uri):
            writers.append(self)
            super().put_json(document, uri)

    monkeypatch.setattr(usage, "S3", Recorded)
    jobs: list[S3] = []

    def main(argv):
        usage.report_to(BUCKETS["intermediate"], RUN)
        jobs.append(S3())

    assert run("demo", main) == 0
    assert len(writers) == 1 and writers[0].client is jobs[0].client  # no second session or client at exit


def test_an_unwritable_record_changes_nothing(in_batch, caplog):
    def main(argv):
        usage.report_to("no-such-bucket", RUN)

    assert run("demo", main) == 0
    assert "usage record not written" in caplog.text and "NoSuchBucket" in caplog.text


def test_outside_batch_or_without_a_destination_nothing_is_written(aws, monkeypatch):
    monkeypatch.delenv("AWS_BATCH_JOB_ID", raising=False)
    assert run("demo", _main()) == 0
    monkeypatch.setenv("AWS_BATCH_JOB_ID", "job-2")
    assert run("demo", lambda argv: None) == 0  # the earlier run's destination is not reused
    assert _records(boto3.client("s3", region_name=REGION)) == {}


def test_batch_identity_and_record_key():
    assert usage.batch_identity({"AWS_BATCH_JOB_ID": "abc", "AWS_BATCH_JOB_ATTEMPT": "3"}) == ("abc", None, 3)
    assert usage.batch_identity({"AWS_BATCH_JOB_ID": "abc#0"}) == ("abc", 0, 1)
    assert usage.batch_identity({}) is None
    assert usage.record_key("r", "analysis", "abc", 0, 1) == "runs/r/usage/analysis/abc-node-0-attempt-1.json"
    assert usage.record_key("r", "preprocess", "abc", None, 2) == "runs/r/usage/preprocess/abc-attempt-2.json"


# ---------------------------------------------------------------- a real job, as the twin runs it


@pytest.fixture(scope="module")
def endpoint(moto_server: str) -> str:
    create_resources(moto_server, **CREDENTIALS)
    return moto_server


def _preprocess(endpoint: str, key: str, job_id: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "THREADLINE_"))}
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION=REGION, AWS_BATCH_JOB_ID=job_id, AWS_BATCH_JOB_ATTEMPT="1")
    args = ["--run-id", RUN, "--input", f"s3://{BUCKETS['incoming']}/{key}",
            "--output-prefix", f"s3://{BUCKETS['intermediate']}/runs/{RUN}/preprocess/",
            "--quarantine-prefix", f"s3://{BUCKETS['quarantine']}/{RUN}/", "--max-reject-share", "0.05"]
    done = subprocess.run([sys.executable, "-m", "preprocess", *args], cwd=JOBS, env=env,
                          capture_output=True, text=True, timeout=180, check=False)
    return done.returncode, done.stderr


def test_the_preprocess_job_records_its_usage_on_success_and_on_failure(endpoint, tmp_path):
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, **CREDENTIALS)
    sample = write_sample(tmp_path / "positions.csv", rows=300)
    s3.upload_file(str(sample), BUCKETS["incoming"], "incoming/usage.csv")

    code, err = _preprocess(endpoint, "incoming/usage.csv", "pre-ok")
    assert code == 0, err
    code, err = _preprocess(endpoint, "incoming/missing.csv", "pre-missing")
    assert code != 0 and err.strip().splitlines()[-1].startswith(ERROR_PREFIX)

    records = _records(s3, f"runs/{RUN}/usage/preprocess/")
    ok = records[f"runs/{RUN}/usage/preprocess/pre-ok-attempt-1.json"]
    failed = records[f"runs/{RUN}/usage/preprocess/pre-missing-attempt-1.json"]
    assert ok["exit_code"] == 0 and failed["exit_code"] == code
    for record in (ok, failed):
        assert record["peak_rss_mib"] > 10  # an interpreter with boto3 loaded is never smaller
        assert record["cpu_seconds"] >= 0 and record["wall_seconds"] > 0
    assert ok["cpu_seconds"] > 0  # it read, validated and wrote the file
