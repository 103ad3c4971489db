"""The pre-processing job against S3 (moto in process): publish or quarantine."""

from __future__ import annotations

import json

import boto3
import pyarrow.parquet as pq
import pytest

from jobkit.runner import ERROR_PREFIX, run
from preprocess.job import main

from jobs_helpers import BUCKETS, HEADER, REGION, row, write_sample

RUN = "positions-0123456789abcdef"


def s3():
    return boto3.client("s3", region_name=REGION)


def args(key: str, share: str = "0.05") -> list[str]:
    return [
        "--run-id", RUN, "--input", f"s3://{BUCKETS['incoming']}/{key}",
        "--output-prefix", f"s3://{BUCKETS['intermediate']}/runs/{RUN}/preprocess/",
        "--quarantine-prefix", f"s3://{BUCKETS['quarantine']}/{RUN}/",
        "--max-reject-share", share,
    ]


def get_json(bucket: str, key: str) -> dict:
    return json.loads(s3().get_object(Bucket=bucket, Key=key)["Body"].read())


def keys(bucket: str) -> list[str]:
    return sorted(item["Key"] for item in s3().list_objects_v2(Bucket=bucket).get("Contents", []))


def test_good_file_is_published(aws, tmp_path, capsys):
    path = write_sample(tmp_path / "p.csv", rows=150, bad_share=0.02)
    s3().upload_file(str(path), BUCKETS["incoming"], "incoming/p.csv")
    assert run("preprocess", main, args("incoming/p.csv")) == 0
    prefix = f"runs/{RUN}/preprocess/"
    assert keys(BUCKETS["intermediate"]) == [prefix + n for n in ("clean.parquet", "rejects.csv", "validation.json")]
    report = get_json(BUCKETS["intermediate"], prefix + "validation.json")
    assert report["run_id"] == RUN and report["status"] == "passed"
    assert report["rows"] == {"read": 150, "accepted": 147, "rejected": 3}
    assert report["source"]["uri"] == f"s3://{BUCKETS['incoming']}/incoming/p.csv"
    assert report["source"]["version_id"]
    assert report["outputs"]["clean"] == f"s3://{BUCKETS['intermediate']}/{prefix}clean.parquet"
    local = tmp_path / "clean.parquet"
    s3().download_file(BUCKETS["intermediate"], prefix + "clean.parquet", str(local))
    assert pq.read_metadata(local).num_rows == 147
    assert keys(BUCKETS["quarantine"]) == []
    assert ERROR_PREFIX not in capsys.readouterr().err


def test_bad_file_is_quarantined_with_exit_65(aws, tmp_path, capsys):
    path = write_sample(tmp_path / "p.csv", rows=100, bad_share=0.2)
    s3().upload_file(str(path), BUCKETS["incoming"], "incoming/bad batch.csv")
    assert run("preprocess", main, args("incoming/bad batch.csv")) == 65
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"{ERROR_PREFIX} validation failed: positions file rejected: 20 of 100 rows")
    assert f"s3://{BUCKETS['quarantine']}/{RUN}/input/bad batch.csv" in err
    assert keys(BUCKETS["quarantine"]) == [f"{RUN}/{n}" for n in (
        "input/bad batch.csv", "rejects.csv", "validation-summary.json", "validation.json")]
    copied = s3().get_object(Bucket=BUCKETS["quarantine"], Key=f"{RUN}/input/bad batch.csv")["Body"].read()
    assert copied == path.read_bytes()
    report = get_json(BUCKETS["quarantine"], f"{RUN}/validation.json")
    assert report["status"] == "failed" and report["outputs"]["clean"] is None
    assert get_json(BUCKETS["intermediate"], f"runs/{RUN}/preprocess/validation.json") == report
    assert "clean.parquet" not in " ".join(keys(BUCKETS["intermediate"]))
    # The incoming object is left as it was.
    assert keys(BUCKETS["incoming"]) == ["incoming/bad batch.csv"]


def test_unreadable_file_is_quarantined(aws, tmp_path, capsys):
    s3().put_object(Bucket=BUCKETS["incoming"], Key="incoming/x.csv", Body=(HEADER + "\n" + row() + ",9\n").encode())
    assert run("preprocess", main, args("incoming/x.csv")) == 65
    assert "line 2 has 9 field(s), the header has 8" in capsys.readouterr().err
    assert f"{RUN}/input/x.csv" in keys(BUCKETS["quarantine"])


@pytest.mark.parametrize("name", ["validation.json", "rejects.csv", "validation-summary.json"])
def test_an_input_named_like_a_report_cannot_overwrite_it(aws, tmp_path, name):
    """The copy goes to input/: the report beside it stays the report, the copy stays the input."""
    path = write_sample(tmp_path / "p.csv", rows=100, bad_share=0.2)
    s3().upload_file(str(path), BUCKETS["incoming"], f"incoming/{name}")
    assert run("preprocess", main, args(f"incoming/{name}")) == 65
    assert keys(BUCKETS["quarantine"]) == [f"{RUN}/{n}" for n in (
        f"input/{name}", "rejects.csv", "validation-summary.json", "validation.json")]
    copied = s3().get_object(Bucket=BUCKETS["quarantine"], Key=f"{RUN}/input/{name}")["Body"].read()
    assert copied == path.read_bytes()
    report = get_json(BUCKETS["quarantine"], f"{RUN}/validation.json")
    assert report["status"] == "failed"
    assert report["outputs"]["quarantine"] == f"s3://{BUCKETS['quarantine']}/{RUN}/input/{name}"
    assert get_json(BUCKETS["quarantine"], f"{RUN}/validation-summary.json")["status"] == "failed"
    rejects = s3().get_object(Bucket=BUCKETS["quarantine"], Key=f"{RUN}/rejects.csv")["Body"].read()
    assert rejects.startswith(b"line,record,column,rule,reason,value")


def test_quarantine_copies_the_version_that_was_read(aws, tmp_path):
    client = s3()
    client.put_object(Bucket=BUCKETS["incoming"], Key="incoming/v.csv", Body=b"")
    assert run("preprocess", main, args("incoming/v.csv")) == 65
    versions = client.list_object_versions(Bucket=BUCKETS["incoming"], Prefix="incoming/v.csv")["Versions"]
    report = get_json(BUCKETS["quarantine"], f"{RUN}/validation.json")
    assert report["source"]["version_id"] == versions[0]["VersionId"]
    assert report["file_error"]["reason"] == "the file is empty"


@pytest.mark.parametrize(("argv", "code", "text"), [
    (["--run-id", RUN], 2, "bad command line"),
    (None, 1, "cannot read s3://tl-incoming/incoming/missing.csv: NoSuchKey"),
])
def test_missing_input_or_arguments(aws, capsys, argv, code, text):
    assert run("preprocess", main, argv if argv is not None else args("incoming/missing.csv")) == code
    assert text in capsys.readouterr().err.strip().splitlines()[-1]
