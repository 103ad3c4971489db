"""The report's compute-cost section, filled in by the lineage function once the run has ended.

Post-processing writes `report.html` before the run ends, so the page holds a
placeholder, `<section id="run-cost">...</section>` (jobs/postprocess/report_html.py).
When a run succeeds, the lineage function, the one place that sees all its
attempts (run_cost_record.py), renders the run's `cost` map here and puts the
page back over the placeholder: a new version of the object in the versioned
results bucket, with the server-side encryption the object already had. The
page is a function of the cost map alone, so a redelivered `run_finished`
yields the same bytes and writes nothing.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

SECTION = re.compile(r'<section id="run-cost">.*?</section>', re.DOTALL)
CONTENT_TYPE = "text/html; charset=utf-8"
WRITTEN, UNCHANGED, NO_PLACEHOLDER = "written", "unchanged", "no placeholder"


def render(cost: dict[str, Any]) -> str:
    """The section for a run's `cost` map (run_cost_record.cost_record); every text escaped."""
    savings = cost.get("spot_savings")
    summary = [
        ("Total", _usd(cost.get("total"))),
        ("All On-Demand", _usd(cost.get("on_demand"))),
        ("Spot savings", _usd(savings) if _is_number(savings) else "unknown (a Spot attempt has no Spot price)"),
    ]
    by_step = _object(cost.get("by_step"))
    step_savings = _object(cost.get("spot_savings_by_step"))
    steps = [(step, _usd(usd), _usd(step_savings.get(step)) if _is_number(step_savings.get(step)) else "unknown")
             for step, usd in by_step.items()]
    attempts = [(str(a.get("job")), str(a.get("capacity")), str(a.get("instance") or "-"), str(a.get("nodes")),
                 f"{a.get('seconds')}", _usd(a.get("usd")) if _is_number(a.get("usd")) else "unpriced")
                for a in cost.get("by_attempt") or [] if isinstance(a, dict)]
    unpriced = [str(line) for line in cost.get("unpriced") or []]
    parts = [
        '<section id="run-cost">',
        "<h2>Compute cost</h2>",
        f'<p class="sub">Every Batch attempt of the run, priced in {escape(str(cost.get("currency", "USD")))} '
        f'at the pinned {escape(str(cost.get("region", "")))} prices (see docs/design.md, "Cost per run").</p>',
        "<table>", *(_row(label, value) for label, value in summary), "</table>",
        "<table>", _head("Step", "Cost", "Spot savings"), *(_line(*row) for row in steps), "</table>",
        "<table>", _head("Attempt", "Capacity", "Instance", "Nodes", "Seconds", "Cost"),
        *(_line(*row) for row in attempts), "</table>",
    ]
    if unpriced:
        parts += ["<p>Not priced:</p>", "<ul>", *(f"<li>{escape(line)}</li>" for line in unpriced), "</ul>"]
    parts.append("</section>")
    return "\n".join(parts)


def with_section(page: str, section: str) -> str | None:
    """The page with its cost section replaced by `section`; None when it has no such section."""
    if SECTION.search(page) is None:
        return None
    return SECTION.sub(lambda _: section, page, count=1)


def write_report_cost(s3: Any, uri: str, cost: dict[str, Any]) -> str:
    """Put the cost into the report at `uri` (s3://bucket/key); WRITTEN, UNCHANGED or NO_PLACEHOLDER.

    `s3` is a boto3 S3 client; its errors (a missing report, a denied key) propagate as boto3 raises them.
    """
    bucket, key = split_uri(uri)
    current = s3.get_object(Bucket=bucket, Key=key)
    page = current["Body"].read().decode("utf-8")
    updated = with_section(page, render(cost))
    if updated is None:
        return NO_PLACEHOLDER
    if updated == page:
        return UNCHANGED
    s3.put_object(Bucket=bucket, Key=key, Body=updated.encode("utf-8"), ContentType=CONTENT_TYPE,
                  **encryption_of(current))
    return WRITTEN


def encryption_of(head: dict[str, Any]) -> dict[str, Any]:
    """PutObject's encryption arguments that keep what GetObject/HeadObject said the object had."""
    args: dict[str, Any] = {}
    if head.get("ServerSideEncryption"):
        args["ServerSideEncryption"] = head["ServerSideEncryption"]
    if head.get("SSEKMSKeyId"):
        args["SSEKMSKeyId"] = head["SSEKMSKeyId"]
    if head.get("BucketKeyEnabled") is not None and head.get("ServerSideEncryption") == "aws:kms":
        args["BucketKeyEnabled"] = bool(head["BucketKeyEnabled"])
    return args


def split_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of `s3://bucket/key`; ValueError for anything else."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise ValueError(f"not an S3 object URI: {uri!r}")
    return bucket, key


def _usd(value: Any) -> str:
    return f"${float(value):.6f}" if _is_number(value) else "-"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _row(label: str, value: str) -> str:
    return f'<tr><th>{escape(label)}</th><td class="num">{escape(value)}</td></tr>'


def _head(*labels: str) -> str:
    return "<tr>" + "".join(f"<th>{escape(label)}</th>" for label in labels) + "</tr>"


def _line(*cells: str) -> str:
    return "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in cells) + "</tr>"
