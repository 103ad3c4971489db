"""validation-summary.json: the bounded view of a validation that the state machine reads."""

from __future__ import annotations

import json

import boto3
import pytest

from jobkit.runner import run
from preprocess.job import main
from preprocess.report import SUMMARY_MAX_BYTES, TOP_RULES, summary_document

from jobs_helpers import BUCKETS, HEADER, REGION, row, write_sample

RUN = "positions-0123456789abcdef"
STATE_PAYLOAD_LIMIT = 256 * 1024  # Step Functions' limit on a state's input or output
QUARANTINE = f"s3://{BUCKETS['quarantine']}/{RUN}/"


def compact_size(document: dict) -> int:
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def failed_report(*, summary: str, rules: int, samples: int, uri_length: int = 60) -> dict:
    """A report shaped like build_report's for a failed file, plus the job's context."""
    long_path = "d/" * (uri_length // 2)
    by_rule = [{"column": f"column_{i}_" + "c" * 150, "rule": "not_allowed_" + "r" * 80, "rows": 50_000 - i}
               for i in range(rules)]
    sample = [{"line": i + 2, "record": i + 1, "column": "sector", "rule": "not_allowed",
               "reason": "sector must be one of the allowed sectors", "value": "v" * 200}
              for i in range(samples)]
    return {
        "run_id": RUN, "status": "failed", "summary": summary,
        "report_version": 1, "schema": {"name": "positions", "version": 1},
        "input": {"bytes": 123_456_789, "compression": "none"}, "max_reject_share": 0.05, "duration_s": 1.5,
        "file_error": None,
        "rows": {"read": 60_000, "accepted": 10_000, "rejected": 50_000},
        "reject_share": 50_000 / 60_000,
        "rejects_by_rule": by_rule, "rejects": sample, "reject_entries": 50_000,
        "rejects_truncated": True, "line_numbers": "exact",
        "source": {"uri": f"s3://{BUCKETS['incoming']}/{long_path}p.csv", "version_id": "v1", "etag": "e",
                   "bytes": 123_456_789},
        "outputs": {"clean": None, "rejects": f"s3://{BUCKETS['quarantine']}/{long_path}rejects.csv",
                    "quarantine": f"s3://{BUCKETS['quarantine']}/{long_path}p.csv"},
    }


def test_a_huge_report_gives_a_summary_within_the_limit() -> None:
    report = failed_report(summary="s" * 5000, rules=50, samples=1000, uri_length=1000)
    report_uri = f"s3://{BUCKETS['quarantine']}/" + "q/" * 480 + "validation.json"
    assert len(json.dumps(report)) > STATE_PAYLOAD_LIMIT

    document = summary_document(report, report_uri)

    assert compact_size(document) <= SUMMARY_MAX_BYTES
    assert len(json.dumps(document).encode()) <= SUMMARY_MAX_BYTES
    assert document["status"] == "failed"
    assert document["rows"] == {"read": 60_000, "accepted": 10_000, "rejected": 50_000}
    assert document["reject_share"] == pytest.approx(50_000 / 60_000)
    assert document["report"] == report_uri
    assert document["summary"].endswith("…")
    assert document["summary"][:-1] == "s" * (len(document["summary"]) - 1)
    assert len(document["summary"]) < 5000
    assert len(document["top_rules"]) <= TOP_RULES
    for kept, original in zip(document["top_rules"], report["rejects_by_rule"], strict=False):
        assert kept["rows"] == original["rows"]
        assert original["column"].startswith(kept["column"].rstrip("…"))
    assert "rejects" not in document and "rejects_by_rule" not in document


def test_a_report_with_many_rules_keeps_the_most_common_five() -> None:
    report = failed_report(summary="positions file rejected: 50000 of 60000 rows failed validation.",
                           rules=50, samples=1000)

    document = summary_document(report, QUARANTINE + "validation.json")

    assert compact_size(document) <= SUMMARY_MAX_BYTES
    assert [rule["rows"] for rule in document["top_rules"]] == [50_000 - i for i in range(TOP_RULES)]
    assert document["outputs"] == {"rejects": report["outputs"]["rejects"],
                                   "quarantine": report["outputs"]["quarantine"]}


def test_a_normal_report_keeps_its_summary_and_rows() -> None:
    summary = ("positions file rejected: 20 of 100 rows failed validation (20.0%, over the 5.0% limit); "
               "most common: price too_small (6 rows).")
    report = failed_report(summary=summary, rules=3, samples=20)
    report["rows"] = {"read": 100, "accepted": 80, "rejected": 20}
    report["reject_share"] = 0.2
    report["rejects_by_rule"] = [{"column": "price", "rule": "too_small", "rows": 6},
                                 {"column": "sector", "rule": "not_allowed", "rows": 5},
                                 {"column": "beta", "rule": "too_large", "rows": 4}]

    document = summary_document(report, QUARANTINE + "validation.json")

    assert document["summary"] == summary
    assert document["rows"] == {"read": 100, "accepted": 80, "rejected": 20}
    assert document["reject_share"] == 0.2
    assert document["top_rules"] == report["rejects_by_rule"]
    assert document["file_error"] is None
    assert document["report"] == QUARANTINE + "validation.json"


def test_a_file_error_report_keeps_the_line_and_a_clipped_reason() -> None:
    report = {"status": "failed", "summary": "positions file rejected: the file is empty.",
              "file_error": {"line": 1, "reason": "r" * 1000}, "rows": {"read": None, "accepted": 0,
                                                                        "rejected": None},
              "reject_share": None, "rejects_by_rule": [], "rejects": []}

    document = summary_document(report, QUARANTINE + "validation.json")

    assert document["file_error"]["line"] == 1
    assert len(document["file_error"]["reason"]) == 300 and document["file_error"]["reason"].endswith("…")
    assert document["top_rules"] == [] and document["outputs"] == {}
    assert compact_size(document) <= SUMMARY_MAX_BYTES


# ---- through the job, against S3 (moto in process) ----


def s3():
    return boto3.client("s3", region_name=REGION)


def run_job(key: str) -> int:
    return run("preprocess", main, [
        "--run-id", RUN, "--input", f"s3://{BUCKETS['incoming']}/{key}",
        "--output-prefix", f"s3://{BUCKETS['intermediate']}/runs/{RUN}/preprocess/",
        "--quarantine-prefix", QUARANTINE,
    ])


def get_bytes(bucket: str, key: str) -> bytes:
    return s3().get_object(Bucket=bucket, Key=key)["Body"].read()


def long_value_file(rows: int) -> bytes:
    """Rows that all fail: each sector is a 190-character value outside the allowed list."""
    sector = "not_a_sector_" + "x" * 177
    lines = [HEADER] + [row(pid=f"P{i}", sector=sector) for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def assert_bounded_summary_of(full: dict) -> dict:
    raw = get_bytes(BUCKETS["quarantine"], f"{RUN}/validation-summary.json")
    assert len(raw) <= SUMMARY_MAX_BYTES
    document = json.loads(raw)
    assert compact_size(document) <= SUMMARY_MAX_BYTES
    assert document["status"] == "failed"
    assert document["summary"] == full["summary"]
    assert document["rows"] == full["rows"]
    assert document["report"] == QUARANTINE + "validation.json"
    assert document["outputs"]["quarantine"] == full["outputs"]["quarantine"]
    assert len(document["top_rules"]) <= TOP_RULES
    return document


def test_a_mostly_bad_sample_file_gets_a_small_summary_beside_its_report(aws, tmp_path):
    path = write_sample(tmp_path / "p.csv", rows=30_000, bad_share=0.9)
    s3().upload_file(str(path), BUCKETS["incoming"], "incoming/p.csv")

    assert run_job("incoming/p.csv") == 65

    keys = {item["Key"] for item in s3().list_objects_v2(Bucket=BUCKETS["quarantine"])["Contents"]}
    assert {f"{RUN}/validation.json", f"{RUN}/validation-summary.json"} <= keys
    raw_report = get_bytes(BUCKETS["quarantine"], f"{RUN}/validation.json")
    full = json.loads(raw_report)
    assert full["rows"] == {"read": 30_000, "accepted": 3_000, "rejected": 27_000}
    assert len(full["rejects"]) == 1000 and full["rejects_truncated"] is True
    assert len(raw_report) > 100 * 1024
    document = assert_bounded_summary_of(full)
    assert document["top_rules"] == [{"column": r["column"], "rule": r["rule"], "rows": r["rows"]}
                                     for r in full["rejects_by_rule"][:TOP_RULES]]


def test_a_report_past_the_state_payload_limit_still_gets_a_small_summary(aws):
    s3().put_object(Bucket=BUCKETS["incoming"], Key="incoming/long.csv", Body=long_value_file(30_000))

    assert run_job("incoming/long.csv") == 65

    raw_report = get_bytes(BUCKETS["quarantine"], f"{RUN}/validation.json")
    full = json.loads(raw_report)
    assert full["rows"]["rejected"] == 30_000
    # The full report could not pass through a state; its summary can.
    assert len(raw_report) > STATE_PAYLOAD_LIMIT
    assert_bounded_summary_of(full)


def test_a_header_of_long_non_ascii_names_still_gets_a_summary_within_the_limit(aws):
    unknown = [chr(0x1F600 + i) * 200 for i in range(12)]
    body = ",".join([HEADER, *unknown]) + "\n" + ",".join([row(), *["1"] * 12]) + "\n"
    s3().put_object(Bucket=BUCKETS["incoming"], Key="incoming/h.csv", Body=body.encode())

    assert run_job("incoming/h.csv") == 65

    raw = get_bytes(BUCKETS["quarantine"], f"{RUN}/validation-summary.json")
    assert "unknown column" in json.loads(raw)["summary"]
    assert compact_size(json.loads(raw)) <= SUMMARY_MAX_BYTES
    assert len(raw) <= SUMMARY_MAX_BYTES
