"""Shared job code: S3 URIs, argument types, the failure line and exit codes."""

from __future__ import annotations

import argparse

import boto3
import pytest

from jobkit import aws as aws_module, cli
from jobkit.aws import S3
from jobkit.errors import DataError, JobError
from jobkit.runner import ERROR_PREFIX, error_line, run
from jobkit.s3uri import S3Uri

from jobs_helpers import BUCKETS, REGION


def test_s3_uri_parse_join_and_basename():
    uri = S3Uri.parse("s3://my-bucket/incoming/a b.csv")
    assert (uri.bucket, uri.key, uri.basename, uri.is_prefix) == ("my-bucket", "incoming/a b.csv", "a b.csv", False)
    prefix = S3Uri.parse_prefix("s3://my-bucket/runs/r1")
    assert str(prefix) == "s3://my-bucket/runs/r1/"
    assert str(prefix.join("clean.parquet")) == "s3://my-bucket/runs/r1/clean.parquet"
    with pytest.raises(ValueError):
        uri.join("x")
    for bad in ("http://b/k", "s3://", "s3://Bad_Bucket/k", "bucket/key"):
        with pytest.raises(ValueError):
            S3Uri.parse(bad)


def test_argument_types():
    assert cli.share("0.05") == 0.05
    assert cli.share("5%") == pytest.approx(0.05)
    for bad in ("-0.1", "1.5", "abc"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli.share(bad)
    assert cli.positive_int("3") == 3
    for bad in ("0", "-2", "x", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli.positive_int(bad)
    with pytest.raises(argparse.ArgumentTypeError):
        cli.s3_object("s3://bucket/prefix/")


def test_error_line_is_one_line_and_capped():
    line = error_line("first\nsecond\tthird " + "x" * 2000)
    assert line.startswith(f"{ERROR_PREFIX} first second third ")
    assert "\n" not in line and len(line) < 1100


def _main_raising(exc: BaseException):
    def main(argv):
        raise exc
    return main


@pytest.mark.parametrize(("exc", "code", "text"), [
    (JobError("cannot read s3://b/k"), 1, "cannot read s3://b/k"),
    (DataError("validation failed: bad"), 65, "validation failed: bad"),
    (RuntimeError("boom"), 1, "demo failed unexpectedly: RuntimeError: boom"),
])
def test_run_turns_failures_into_exit_code_and_last_line(capsys, exc, code, text):
    assert run("demo", _main_raising(exc), []) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"{ERROR_PREFIX} {text}"
    if isinstance(exc, RuntimeError):
        assert any("Traceback" in line for line in err)


def test_bad_command_line_exits_2_with_the_line(capsys):
    def main(argv):
        parser = cli.JobArgumentParser(prog="demo")
        parser.add_argument("--scenarios", type=cli.positive_int, required=True)
        parser.parse_args(argv)

    assert run("demo", main, ["--scenarios", "zero"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"{ERROR_PREFIX} bad command line: argument --scenarios")
    assert err[0].startswith("usage: demo")


def test_s3_errors_name_the_uri(aws):
    s3 = S3()
    with pytest.raises(JobError, match=r"cannot read s3://tl-incoming/missing.json: NoSuchKey"):
        s3.get_json(S3Uri(BUCKETS["incoming"], "missing.json"))
    with pytest.raises(JobError, match="NoSuchBucket"):
        s3.list_keys(S3Uri("no-such-bucket", "x/"))


def test_a_process_keeps_one_client_per_service_until_its_aws_settings_change(aws_env, monkeypatch):
    first = aws_module.client("s3")
    assert aws_module.client("s3") is first and S3().client is first
    assert aws_module.client("dynamodb") is not first
    monkeypatch.setenv("AWS_BATCH_JOB_ATTEMPT", "2")  # which job this is, not how to reach AWS
    assert aws_module.client("s3") is first

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4599")
    moved = aws_module.client("s3")
    assert moved is not first and moved.meta.endpoint_url == "http://127.0.0.1:4599"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert aws_module.client("s3").meta.region_name == "eu-west-1"


@pytest.mark.parametrize("threshold", [1 << 30, 1], ids=["one request", "in parts"])
def test_an_upload_stores_the_file_with_its_content_type_either_way(aws, tmp_path, monkeypatch, threshold):
    monkeypatch.setattr(aws_module, "_MULTIPART_THRESHOLD", threshold)
    local = tmp_path / "clean.parquet"
    local.write_bytes(b"PAR1" + bytes(range(256)) * 4)
    target = S3Uri(BUCKETS["intermediate"], "runs/r1/clean.parquet")

    S3().upload(local, target, "application/vnd.apache.parquet")

    stored = S3().client.get_object(Bucket=target.bucket, Key=target.key)
    assert stored["Body"].read() == local.read_bytes()
    assert stored["ContentType"] == "application/vnd.apache.parquet"
    with pytest.raises(JobError, match="cannot write s3://no-such-bucket/x"):
        S3().upload(local, S3Uri("no-such-bucket", "x"), "text/csv")


def _recording_s3(calls: list[str]) -> S3:
    """An S3 helper on a client of its own that notes the name of every operation it sends."""
    s3_client = boto3.client("s3", region_name=REGION)
    s3_client.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    return S3(s3_client)


def _two_versions(key: str) -> list[str]:
    """Two versions of `key` in the versioned incoming bucket; their version ids, oldest first."""
    s3_client = boto3.client("s3", region_name=REGION)
    return [s3_client.put_object(Bucket=BUCKETS["incoming"], Key=key, Body=body)["VersionId"]
            for body in (b"first,version\n", b"second,version,longer\n")]


def test_a_small_download_is_one_get_that_says_which_version_it_read(aws, tmp_path):
    first, second = _two_versions("incoming/v.csv")
    calls: list[str] = []
    s3 = _recording_s3(calls)
    uri = S3Uri(BUCKETS["incoming"], "incoming/v.csv")

    latest = s3.download(uri, tmp_path / "latest.csv")
    pinned = s3.download(uri, tmp_path / "pinned.csv", first)

    assert calls == ["GetObject", "GetObject"]
    assert (tmp_path / "latest.csv").read_bytes() == b"second,version,longer\n"
    assert (tmp_path / "pinned.csv").read_bytes() == b"first,version\n"
    assert (latest.version_id, latest.size) == (second, len(b"second,version,longer\n"))
    assert (pinned.version_id, pinned.size) == (first, len(b"first,version\n"))
    assert latest.etag == s3.client.head_object(Bucket=uri.bucket, Key=uri.key)["ETag"].strip('"')
    assert pinned.etag != latest.etag


def test_a_large_download_goes_through_the_transfer_manager_pinned_to_the_version_it_saw(
        aws, tmp_path, monkeypatch):
    monkeypatch.setattr(aws_module, "_MULTIPART_THRESHOLD", 1)
    first, _ = _two_versions("incoming/big.csv")
    calls: list[str] = []
    info = _recording_s3(calls).download(S3Uri(BUCKETS["incoming"], "incoming/big.csv"), tmp_path / "big.csv",
                                         first)
    assert (tmp_path / "big.csv").read_bytes() == b"first,version\n" and info.version_id == first
    assert calls[0] == "GetObject" and len(calls) > 1  # the transfer manager's own requests follow


def test_a_failed_download_names_the_object(aws, tmp_path):
    with pytest.raises(JobError, match=r"cannot read s3://tl-incoming/missing.csv: NoSuchKey"):
        S3().download(S3Uri(BUCKETS["incoming"], "missing.csv"), tmp_path / "x.csv")
    with pytest.raises(JobError, match=r"cannot read s3://no-such-bucket/x.csv: NoSuchBucket"):
        S3().download(S3Uri("no-such-bucket", "x.csv"), tmp_path / "x.csv")
