"""Pipeline notices and CloudWatch alarms as Slack Block Kit messages (no sending here)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

NOTICES = ("run_started", "run_succeeded", "run_failed", "validation_failed")
VALIDATION_ERROR = "ValidationFailed"

HEADER_MAX = 150  # Block Kit limit for a header's text
SECTION_MAX = 3000  # Block Kit limit for a section's text
QUOTE_MAX = 1500  # how much of an error cause or validation summary a message quotes


class NoticeError(ValueError):
    """The notice does not follow the Slack notice contract; it is logged and skipped."""


@dataclass(frozen=True)
class SlackMessage:
    kind: str
    text: str  # the notification / fallback text
    blocks: list[dict[str, Any]]
    run_id: str | None = None

    def payload(self) -> dict[str, Any]:
        """The JSON body of an incoming-webhook POST."""
        return {"text": self.text, "blocks": self.blocks}


def notice_message(notice: Any, pipeline: str) -> SlackMessage:
    """A message for one state-machine notice (docs/design.md, "Slack notices")."""
    if not isinstance(notice, dict):
        raise NoticeError(f"the notice must be a JSON object, not {type(notice).__name__}")
    kind = notice.get("notice")
    if kind not in NOTICES:
        raise NoticeError(f"unknown notice {kind!r}; expected one of {', '.join(NOTICES)}")
    run_id = notice.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        raise NoticeError(f"'run_id' must be a non-empty string, got {run_id!r}")
    error = notice.get("error") if isinstance(notice.get("error"), dict) else {}
    if kind == "run_failed" and error.get("Error") == VALIDATION_ERROR:
        kind = "validation_failed"

    title = {
        "run_started": ":arrow_forward: Run started",
        "run_succeeded": ":white_check_mark: Run succeeded",
        "run_failed": ":x: Run failed",
        "validation_failed": ":no_entry: Input failed validation",
    }[kind]
    source = notice.get("source") if isinstance(notice.get("source"), dict) else {}
    fields = [_field("Run", f"`{escape(run_id)}`"), _field("Pipeline", escape(pipeline))]
    if source.get("uri"):
        size = source.get("size")
        size_text = f" ({human_bytes(size)})" if isinstance(size, int) and not isinstance(size, bool) else ""
        fields.append(_field("Input", f"`{escape(str(source['uri']))}`{size_text}"))
    if notice.get("report_uri"):
        fields.append(_field("Report", f"`{escape(str(notice['report_uri']))}`"))
    if kind == "validation_failed" and notice.get("quarantine_uri"):
        fields.append(_field("Quarantined under", f"`{escape(str(notice['quarantine_uri']))}`"))

    blocks: list[dict[str, Any]] = [_header(f"{title}: {run_id}"), {"type": "section", "fields": fields}]
    if kind == "validation_failed":
        summary = notice.get("validation") or error.get("Cause")
        blocks.append(_section(f"*Validation summary*\n{code_block(_as_text(summary) or 'no summary given')}"))
    elif kind == "run_failed":
        name = error.get("Error") or "unknown error"
        blocks.append(_section(f"*Error* `{escape(str(name))}`\n{code_block(describe_cause(error.get('Cause')))}"))
    link = execution_link(notice.get("execution_arn"))
    if link:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": link}]})

    text = f"[{pipeline}] {title.split(' ', 1)[1]}: {run_id}"
    if kind == "run_failed" and error.get("Error"):
        text += f" ({error['Error']})"
    return SlackMessage(kind=kind, text=text, blocks=blocks, run_id=run_id)


def alarm_message(message: str, subject: str | None = None) -> SlackMessage:
    """A message for one SNS message; a CloudWatch alarm state change gets its own layout."""
    try:
        alarm = json.loads(message)
    except (TypeError, json.JSONDecodeError):
        alarm = None
    if not isinstance(alarm, dict) or "AlarmName" not in alarm:
        title = subject or "Notification"
        blocks = [_header(f":loudspeaker: {title}"), _section(code_block(str(message)))]
        return SlackMessage(kind="sns_message", text=title, blocks=blocks)

    name = str(alarm["AlarmName"])
    state = str(alarm.get("NewStateValue") or "UNKNOWN")
    icon = {"ALARM": ":rotating_light:", "OK": ":white_check_mark:"}.get(state, ":grey_question:")
    region = _arn_part(alarm.get("AlarmArn"), 3)
    fields = [_field("State", f"{escape(str(alarm.get('OldStateValue') or '?'))} → *{escape(state)}*")]
    metric = _metric(alarm.get("Trigger"))
    if metric:
        fields.append(_field("Metric", escape(metric)))
    if alarm.get("StateChangeTime"):
        fields.append(_field("Since", escape(str(alarm["StateChangeTime"]))))
    if region:
        fields.append(_field("Region", escape(region)))
    blocks: list[dict[str, Any]] = [_header(f"{icon} {state}: {name}")]
    if alarm.get("AlarmDescription"):
        blocks.append(_section(escape(str(alarm["AlarmDescription"]))))
    blocks.append({"type": "section", "fields": fields})
    if alarm.get("NewStateReason"):
        blocks.append(_section(f"*Reason*\n{code_block(str(alarm['NewStateReason']))}"))
    if region:
        console = f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        url = f"{console}#alarmsV2:alarm/{quote(name, safe='')}"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{url}|Open the alarm>"}]})
    return SlackMessage(kind="alarm", text=f"{state}: {name}", blocks=blocks)


def describe_cause(cause: Any) -> str:
    """A readable account of an error Cause; a Batch job description is summed up, not dumped."""
    job = cause
    if isinstance(cause, str):
        try:
            job = json.loads(cause)
        except json.JSONDecodeError:
            return cause or "no cause given"
    if isinstance(job, dict) and isinstance(job.get("Job"), dict):
        job = job["Job"]
    if isinstance(job, dict) and any(k in job for k in ("JobId", "JobName", "StatusReason")):
        lines = [f"Job {job.get('JobName') or job.get('JobId')}: {job.get('Status', 'FAILED')}"]
        if job.get("StatusReason"):
            lines.append(f"Reason: {job['StatusReason']}")
        exit_code = (job.get("Container") or {}).get("ExitCode")
        if exit_code is not None:
            lines.append(f"Exit code: {exit_code}")
        attempts = job.get("Attempts")
        if isinstance(attempts, list) and attempts:
            lines.append(f"Attempts: {len(attempts)}")
        return "\n".join(lines)
    return _as_text(job) or "no cause given"


def execution_link(execution_arn: Any) -> str | None:
    """A Slack link to the execution in the Step Functions console."""
    region = _arn_part(execution_arn, 3)
    if not region:
        return None
    url = f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"
    return f"<{url}|Open the execution>"


def escape(text: str) -> str:
    """Slack mrkdwn control characters (&, <, >) as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code_block(text: str, limit: int = QUOTE_MAX) -> str:
    """`text` quoted in a code block, its escaped form cut to about `limit` characters."""
    quoted = escape(text.replace("```", "'''"))
    if len(quoted) > limit:
        quoted = quoted[: limit - 14]
        entity = quoted.rfind("&")
        if entity != -1 and ";" not in quoted[entity:]:  # do not cut an entity in half
            quoted = quoted[:entity]
        quoted = quoted.rstrip() + " … (truncated)"
    return f"```{quoted}```"


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 14].rstrip() + " … (truncated)"


def human_bytes(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            break
        value /= 1024
    return f"{value:.1f} {unit}"


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=1, sort_keys=True, default=str)


def _metric(trigger: Any) -> str | None:
    if not isinstance(trigger, dict):
        return None
    if trigger.get("MetricName"):
        return f"{trigger.get('Namespace', '')}/{trigger['MetricName']}".lstrip("/")
    metrics = trigger.get("Metrics")
    if isinstance(metrics, list) and metrics:
        return "metric math: " + ", ".join(str(m.get("Id")) for m in metrics if isinstance(m, dict))
    return None


def _arn_part(arn: Any, index: int) -> str | None:
    if not isinstance(arn, str) or not arn.startswith("arn:"):
        return None
    parts = arn.split(":")
    return parts[index] if len(parts) > index and parts[index] else None


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": truncate(text, HEADER_MAX), "emoji": True}}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SECTION_MAX)}}


def _field(label: str, value: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": f"*{label}*\n{value}"}
