"""The validation report (validation.json) and its one-line human summary.

The summary never contains values from the file except through `safe_text`,
so the state machine and Slack can quote it as it is.
"""

from __future__ import annotations

from typing import Any

from .rejects import SAMPLE_SIZE, RejectList
from .schema import Schema
from .sources import FileProblem

REPORT_VERSION = 1


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
