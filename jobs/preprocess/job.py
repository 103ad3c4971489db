"""The pre-processing job: S3 in, validation, S3 out (or quarantine).

    python -m preprocess --run-id ID --input s3://incoming/x.csv
        --output-prefix s3://intermediate/runs/ID/preprocess/
        --quarantine-prefix s3://quarantine/ID/ [--max-reject-share 0.05]

Exit 0 with clean.parquet and validation.json (and rejects.csv when rows were
rejected) under the output prefix; exit 65 when the file failed validation,
after copying it to `input/` under the quarantine prefix, with the report
beside that folder. The incoming object is never touched.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from jobkit import cli, usage
from jobkit.aws import S3, ObjectInfo
from jobkit.errors import DataError
from jobkit.s3uri import S3Uri

from .report import summary_document
from .validate import CLEAN_NAME, DEFAULT_MAX_REJECT_SHARE, REJECTS_NAME, Validation, validate_file

REPORT_NAME = "validation.json"
SUMMARY_NAME = "validation-summary.json"  # what the state machine reads (report.summary_document)
# The quarantined copy keeps its name but goes into a folder of its own: an input named
# like a report (validation.json, rejects.csv) must not overwrite the report beside it.
QUARANTINE_INPUT_FOLDER = "input/"
log = logging.getLogger("preprocess")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = cli.JobArgumentParser(prog="python -m preprocess", description="Validate an input CSV.")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--input", required=True, type=cli.s3_object, help="s3://bucket/key of the CSV")
    parser.add_argument("--output-prefix", required=True, type=cli.s3_prefix)
    parser.add_argument("--quarantine-prefix", required=True, type=cli.s3_prefix)
    parser.add_argument("--max-reject-share", type=cli.share, default=DEFAULT_MAX_REJECT_SHARE,
                        help="largest share of rejected rows still accepted (0.05 or 5%%)")
    return parser.parse_args(argv)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _local_name(source: S3Uri) -> str:
    # The key is user data: never use it in a local path or SQL text.
    return "input.csv.gz" if source.key.endswith(".gz") else "input.csv"


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    usage.report_to(args.output_prefix.bucket, args.run_id)
    started_at = _now()
    s3 = S3()
    source: S3Uri = args.input
    output: S3Uri = args.output_prefix
    quarantine: S3Uri = args.quarantine_prefix
    with tempfile.TemporaryDirectory(prefix="preprocess-") as tmp:
        workdir = Path(tmp)
        local = workdir / _local_name(source)
        info = s3.download(source, local)
        log.info("validating %s (%d bytes, version %s)", source, info.size, info.version_id)
        result = validate_file(local, workdir / "out", args.max_reject_share)
        report = _with_context(result, args.run_id, info, started_at)
        if result.passed:
            _publish(s3, result, report, output)
            log.info("%s", report["summary"])
            return
        _quarantine(s3, result, report, info, quarantine, output)
    raise DataError(f"validation failed: {report['summary']} Quarantined at {report['outputs']['quarantine']}")


def _with_context(result: Validation, run_id: str, info: ObjectInfo, started_at: str) -> dict:
    report = {"run_id": run_id, "status": result.report["status"], "summary": result.report["summary"]}
    report.update(result.report)
    report["source"] = {
        "uri": str(info.uri),
        "version_id": info.version_id,
        "etag": info.etag,
        "bytes": info.size,
    }
    report["started_at"] = started_at
    report["finished_at"] = _now()
    return report


def _publish(s3: S3, result: Validation, report: dict, output: S3Uri) -> None:
    assert result.clean is not None
    clean_uri = output.join(CLEAN_NAME)
    rejects_uri = output.join(REJECTS_NAME) if result.rejects else None
    report["outputs"] = {"clean": str(clean_uri), "rejects": str(rejects_uri) if rejects_uri else None,
                         "quarantine": None}
    s3.upload(result.clean, clean_uri, "application/vnd.apache.parquet")
    if rejects_uri and result.rejects:
        s3.upload(result.rejects, rejects_uri, "text/csv")
    # The report goes last: its presence means the outputs beside it are complete.
    s3.put_json(report, output.join(REPORT_NAME))


def _quarantine(s3: S3, result: Validation, report: dict, info: ObjectInfo,
                quarantine: S3Uri, output: S3Uri) -> None:
    copy_uri = quarantine.join(QUARANTINE_INPUT_FOLDER + (info.uri.basename or "input.csv"))
    rejects_uri = quarantine.join(REJECTS_NAME) if result.rejects else None
    report["outputs"] = {"clean": None, "rejects": str(rejects_uri) if rejects_uri else None,
                         "quarantine": str(copy_uri)}
    s3.copy(info.uri, copy_uri, info.version_id)
    if rejects_uri and result.rejects:
        s3.upload(result.rejects, rejects_uri, "text/csv")
    s3.put_json(summary_document(report, str(quarantine.join(REPORT_NAME))), quarantine.join(SUMMARY_NAME))
    s3.put_json(report, quarantine.join(REPORT_NAME))
    s3.put_json(report, output.join(REPORT_NAME))
    log.warning("%s", report["summary"])
