"""The validation report (validation.json), its one-line human summary, and the bounded summary document.

The summary never contains values from the file except through `safe_text`,
so the state machine and Slack can quote it as it is. The state machine reads
only `validation-summary.json` (`summary_document`): the full report carries
up to 1,000 sample rejects (about 270 KB), past Step Functions' 256 KiB state
payload limit, whose `States.DataLimitExceeded` no Catch can handle.
"""

from __future__ import annotations

import json
from typing import Any

from .rejects import SAMPLE_SIZE, RejectList
from .schema import Schema
from .sources import FileProblem

REPORT_VERSION = 1
SUMMARY_MAX_BYTES = 4096  # the state machine's whole view of a validation, far below 256 KiB
SUMMARY_TEXT_MAX = 1000
TOP_RULES = 5


def percent(share: float) -> str:
    if 0 < share < 0.001:
        return "<0.1%"
    return f"{share:.1%}"


def _base(schema: Schema, compression: str, size: int, max_reject_share: float, duration: float) -> dict[str, Any]:
    return {
        "report_version": REPORT_VERSION,
        "schema": {"name": schema.name, "version": schema.version},
        "input": {"bytes": size, "compression": compression},
        "max_reject_share": max_reject_share,
        "duration_s": round(duration, 3),
    }


def file_error_report(
    schema: Schema, problem: FileProblem, compression: str, size: int, max_reject_share: float, duration: float
) -> dict[str, Any]:
    """The report of a file that could not be read as CSV of the schema at all."""
    report = _base(schema, compression, size, max_reject_share, duration)
    report.update(
        status="failed",
        summary=f"{schema.name} file rejected: {problem.reason}.",
        file_error={"line": problem.line, "reason": problem.reason},
        rows={"read": None, "accepted": 0, "rejected": None},
        reject_share=None,
        rejects_by_rule=[],
        rejects=[],
        reject_entries=0,
        line_numbers="exact",
    )
    return report


def build_report(
    *,
    schema: Schema,
    passed: bool,
    compression: str,
    size: int,
    records: int,
    rejected: int,
    max_reject_share: float,
    rejects: RejectList,
    lines_exact: bool,
    duration: float,
) -> dict[str, Any]:
    share = rejected / records
    accepted = records - rejected
    limit = percent(max_reject_share)
    if passed:
        summary = (f"{schema.name} file accepted: {records} rows read, {accepted} accepted, "
                   f"{rejected} rejected ({percent(share)}; limit {limit}).")
    else:
        top = rejects.by_rule[0] if rejects.by_rule else None
        common = f"; most common: {top['column']} {top['rule']} ({top['rows']} rows)" if top else ""
        summary = (f"{schema.name} file rejected: {rejected} of {records} rows failed validation "
                   f"({percent(share)}, over the {limit} limit){common}.")
    report = _base(schema, compression, size, max_reject_share, duration)
    report.update(
        status="passed" if passed else "failed",
        summary=summary,
        file_error=None,
        rows={"read": records, "accepted": accepted, "rejected": rejected},
        reject_share=share,
        rejects_by_rule=rejects.by_rule,
        rejects=rejects.sample,
        reject_entries=rejects.entries,
        rejects_truncated=rejects.entries > SAMPLE_SIZE,
        line_numbers="exact" if lines_exact else "unavailable: the file's quoting confuses a line count",
    )
    return report


def summary_document(report: dict[str, Any], report_uri: str) -> dict[str, Any]:
    """What the state machine, the run record and Slack quote: never more than SUMMARY_MAX_BYTES."""
    file_error = report.get("file_error")
    document: dict[str, Any] = {
        "status": report.get("status"),
        "summary": _clip(str(report.get("summary") or ""), SUMMARY_TEXT_MAX),
        "rows": report.get("rows"),
        "reject_share": report.get("reject_share"),
        "file_error": {"line": file_error.get("line"), "reason": _clip(str(file_error.get("reason")), 300)}
        if isinstance(file_error, dict) else None,
        "top_rules": [{"column": _clip(str(entry.get("column")), 100), "rule": _clip(str(entry.get("rule")), 60),
                       "rows": entry.get("rows")} for entry in (report.get("rejects_by_rule") or [])[:TOP_RULES]],
        "report": report_uri,
        "outputs": {key: value for key, value in (report.get("outputs") or {}).items()
                    if isinstance(value, str) and len(value) <= 1100},
    }
    while stored_size(document) > SUMMARY_MAX_BYTES and document["top_rules"]:
        document["top_rules"].pop()
    if stored_size(document) > SUMMARY_MAX_BYTES:
        document["outputs"] = {}
    for key in ("summary", "file_error", "report"):  # multi-byte text: cut by bytes, the rest is small
        excess = stored_size(document) - SUMMARY_MAX_BYTES
        if excess <= 0:
            break
        if key == "file_error" and document["file_error"]:
            document["file_error"]["reason"] = _clip_bytes(document["file_error"]["reason"], excess)
        elif isinstance(document.get(key), str):
            document[key] = _clip_bytes(document[key], excess)
    return document


def stored_size(document: dict[str, Any]) -> int:
    """Bytes of the document as the job stores it (jobkit's `S3.put_json`: indented, UTF-8)."""
    return len(json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8"))


def _clip_bytes(text: str, excess: int) -> str:
    """`text` shortened by at least `excess` bytes of its JSON form (escapes counted), ending with "…"."""
    target = max(0, len(json.dumps(text, ensure_ascii=False).encode("utf-8")) - excess - 8)
    while text and len(json.dumps(text + "…", ensure_ascii=False).encode("utf-8")) > target:
        text = text[: max(0, len(text) - max(1, (len(text) // 8)))]
    return text + "…"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
