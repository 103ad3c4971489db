"""Pipeline notices and CloudWatch alarms as Slack Block Kit messages (no sending here).

Every text is escaped first and cut to its Block Kit limit afterwards, so that an
input made of `&` (five characters once escaped) cannot push a field over the
limit, and a cut never splits an entity, a link or a code span.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

NOTICES = ("run_started", "run_succeeded", "run_failed", "validation_failed")
VALIDATION_ERROR = "ValidationFailed"

# Block Kit limits: Slack answers HTTP 400 (invalid_blocks) past any of them.
MAX_BLOCKS = 50  # blocks in one message
HEADER_MAX = 150  # a header's text
SECTION_MAX = 3000  # a section's text
FIELD_MAX = 2000  # one field of a section
MAX_FIELDS = 10  # fields in one section
MAX_CONTEXT_ELEMENTS = 10  # elements in one context block
ELEMENT_MAX = 3000  # the text of one context element
TEXT_MAX = 3000  # the top-level (notification) text: Slack takes more, 3,000 keeps it a summary
QUOTE_MAX = 1500  # how much of an error cause or validation summary a message quotes
ERROR_NAME_MAX = 200  # how much of an error name a message shows
TRUNCATED = " … (truncated)"

BLOCK_TYPES = ("header", "section", "context", "divider")


class NoticeError(ValueError):
    """The notice does not follow the Slack notice contract; it is logged and skipped."""


class MessageLimitError(ValueError):
    """A finished message breaks a Block Kit limit: Slack would refuse it."""


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
    error = _object(notice.get("error"))
    if kind == "run_failed" and error.get("Error") == VALIDATION_ERROR:
        kind = "validation_failed"

    title = {
        "run_started": ":arrow_forward: Run started",
        "run_succeeded": ":white_check_mark: Run succeeded",
        "run_failed": ":x: Run failed",
        "validation_failed": ":no_entry: Input failed validation",
    }[kind]
    source = _object(notice.get("source"))
    fields = [_field("Run", inline_code(run_id)), _field("Pipeline", escape(pipeline))]
    if source.get("uri"):
        size = source.get("size")
        size_text = f" ({human_bytes(size)})" if isinstance(size, int) and not isinstance(size, bool) else ""
        fields.append(_field("Input", inline_code(str(source["uri"])), tail=size_text))
    if notice.get("report_uri"):
        fields.append(_field("Report", inline_code(str(notice["report_uri"]))))
    if kind == "validation_failed" and notice.get("quarantine_uri"):
        fields.append(_field("Quarantined under", inline_code(str(notice["quarantine_uri"]))))
    cost = _object(notice.get("cost"))
    if kind == "run_succeeded" and isinstance(cost.get("total"), (int, float)):
        fields.append(_field("Compute cost", escape(cost_text(cost))))

    blocks: list[dict[str, Any]] = [_header(f"{title}: {run_id}"), *_field_sections(fields)]
    if kind == "validation_failed":
        summary = notice.get("validation") or error.get("Cause")
        blocks.append(_section(f"*Validation summary*\n{code_block(_as_text(summary) or 'no summary given')}"))
    elif kind == "run_failed":
        name = inline_code(str(error.get("Error") or "unknown error"), ERROR_NAME_MAX)
        blocks.append(_section(f"*Error* {name}\n{code_block(describe_cause(error.get('Cause')))}"))
    link = execution_link(notice.get("execution_arn"))
    if link:
        blocks.append(_context([link]))

    text = f"[{pipeline}] {title.split(' ', 1)[1]}: {run_id}"
    if kind == "run_failed" and error.get("Error"):
        text += f" ({error['Error']})"
    return SlackMessage(kind=kind, text=_text(text), blocks=_fit_blocks(blocks), run_id=run_id)


def cost_text(cost: dict[str, Any]) -> str:
    """`$0.012300 (preprocess $0.001100, ...); Spot saved $0.004000`, from a run's `cost` map."""
    steps = _object(cost.get("by_step"))
    parts = ", ".join(f"{step} ${value:.6f}" for step, value in steps.items() if isinstance(value, (int, float)))
    text = f"${cost['total']:.6f}" + (f" ({parts})" if parts else "")
    savings = cost.get("spot_savings")
    text += f"; Spot saved ${savings:.6f}" if isinstance(savings, (int, float)) else "; Spot savings unknown"
    unpriced = cost.get("unpriced")
    if isinstance(unpriced, list) and unpriced:
        text += f"; {len(unpriced)} attempt(s) unpriced"
    return text


def alarm_message(message: str, subject: str | None = None) -> SlackMessage:
    """A message for one SNS message; a CloudWatch alarm state change gets its own layout."""
    try:
        alarm = json.loads(message)
    except (TypeError, json.JSONDecodeError):
        alarm = None
    if not isinstance(alarm, dict) or "AlarmName" not in alarm:
        title = subject or "Notification"
        blocks: list[dict[str, Any]] = [_header(f":loudspeaker: {title}"), _section(code_block(str(message)))]
        return SlackMessage(kind="sns_message", text=_text(title), blocks=blocks)

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
    blocks = [_header(f"{icon} {state}: {name}")]
    if alarm.get("AlarmDescription"):
        blocks.append(_section(escape(str(alarm["AlarmDescription"]))))
    blocks.extend(_field_sections(fields))
    if alarm.get("NewStateReason"):
        blocks.append(_section(f"*Reason*\n{code_block(str(alarm['NewStateReason']))}"))
    if region:
        console = f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        link = f"<{console}#alarmsV2:alarm/{quote(name, safe='')}|Open the alarm>"
        if text_length(link) <= ELEMENT_MAX:  # a link cut short is no link: left out instead
            blocks.append(_context([link]))
    return SlackMessage(kind="alarm", text=_text(f"{state}: {name}"), blocks=_fit_blocks(blocks))


def check_limits(message: SlackMessage | dict[str, Any]) -> None:
    """Raise MessageLimitError naming every Block Kit limit the finished message breaks.

    The builders above cut every text to its limit, so this should never fire; it
    is the last look before sending, so that a formatting bug shows as a clear
    error instead of Slack's bare "invalid_blocks".
    """
    payload = message.payload() if isinstance(message, SlackMessage) else message
    problems = list(_limit_problems(payload))
    if problems:
        raise MessageLimitError("; ".join(problems))


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
    """A Slack link to the execution in the Step Functions console; None if it would not fit whole."""
    region = _arn_part(execution_arn, 3)
    if not region:
        return None
    url = f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"
    link = f"<{url}|Open the execution>"
    return link if text_length(link) <= ELEMENT_MAX else None


def escape(text: str) -> str:
    """Slack mrkdwn control characters (&, <, >) as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code_block(text: str, limit: int = QUOTE_MAX) -> str:
    """`text` quoted in a code block of at most `limit` characters: escaped first, then cut."""
    fence = "```"
    return clip(fence + escape(text.replace(fence, "'''")) + fence, limit)


def inline_code(text: str, limit: int = FIELD_MAX) -> str:
    """`text` as inline code of at most `limit` characters; a backtick inside would end the code early."""
    return clip("`" + escape(text.replace("`", "'")) + "`", limit)


def clip(mrkdwn: str, limit: int) -> str:
    """Escaped mrkdwn cut to `limit` characters and marked as truncated.

    The cut never splits an entity (`&amp;`) or a link (`<url|label>`); a code
    span or block it leaves open is closed again after the marker.
    """
    if text_length(mrkdwn) <= limit:
        return mrkdwn
    kept = _prefix(mrkdwn, limit - text_length(TRUNCATED) - 3)  # 3: room to close a code block
    entity = kept.rfind("&")
    if entity != -1 and ";" not in kept[entity:]:
        kept = kept[:entity]
    link = kept.rfind("<")
    if link > kept.rfind(">"):
        kept = kept[:link]
    kept = kept.rstrip(" \t\n`")  # a trailing backtick may be part of a fence
    return kept + TRUNCATED + _open_code(kept)


def truncate(text: str, limit: int) -> str:
    """Plain text (no mrkdwn) cut to `limit` characters and marked as truncated."""
    if text_length(text) <= limit:
        return text
    return _prefix(text, limit - text_length(TRUNCATED)).rstrip() + TRUNCATED


def text_length(text: str) -> int:
    """Length in UTF-16 code units: never less than Slack's count, however it counts an emoji."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def human_bytes(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            break
        value /= 1024
    return f"{value:.1f} {unit}"


def _prefix(text: str, units: int) -> str:
    """The longest start of `text` within `units` UTF-16 code units."""
    if text_length(text) == len(text):  # no character outside the BMP: one unit each
        return text[:max(units, 0)]
    total = 0
    for index, char in enumerate(text):
        total += 2 if ord(char) > 0xFFFF else 1
        if total > units:
            return text[:index]
    return text


def _open_code(mrkdwn: str) -> str:
    """The fence that closes the code block or span `mrkdwn` leaves open ("" when none is)."""
    fence, index = "", 0
    while index < len(mrkdwn):
        if fence != "`" and mrkdwn.startswith("```", index):
            fence = "" if fence else "```"
            index += 3
            continue
        if fence != "```" and mrkdwn[index] == "`":
            fence = "" if fence else "`"
        index += 1
    return fence


def _object(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


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


def _text(text: str) -> str:
    """The top-level text: notifications show it as mrkdwn, so it is escaped like the blocks."""
    return clip(escape(text), TEXT_MAX)


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": truncate(text, HEADER_MAX), "emoji": True}}


def _section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(mrkdwn, SECTION_MAX)}}


def _field(label: str, value: str, tail: str = "") -> dict[str, Any]:
    """A labelled section field; `value` (escaped mrkdwn) is cut so that the label and `tail` still fit."""
    head = f"*{label}*\n"
    room = FIELD_MAX - text_length(head) - text_length(tail)
    return {"type": "mrkdwn", "text": f"{head}{clip(value, room)}{tail}"}


def _field_sections(fields: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fields as sections of at most MAX_FIELDS each."""
    return [{"type": "section", "fields": fields[i:i + MAX_FIELDS]} for i in range(0, len(fields), MAX_FIELDS)]


def _context(texts: list[str]) -> dict[str, Any]:
    elements = [{"type": "mrkdwn", "text": clip(t, ELEMENT_MAX)} for t in texts[:MAX_CONTEXT_ELEMENTS]]
    return {"type": "context", "elements": elements}


def _fit_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return blocks[:MAX_BLOCKS]


def _limit_problems(payload: Any) -> Iterator[str]:
    """Each Block Kit limit the payload breaks, as a phrase saying where."""
    if not isinstance(payload, dict):
        yield "the message is not a JSON object"
        return
    yield from _text_problems("text", payload.get("text"), TEXT_MAX)
    blocks = payload.get("blocks")
    if not isinstance(blocks, list):
        yield "blocks is not a list"
        return
    if len(blocks) > MAX_BLOCKS:
        yield f"{len(blocks)} blocks, over {MAX_BLOCKS}"
    for index, block in enumerate(blocks):
        yield from _block_problems(f"blocks[{index}]", block)


def _block_problems(where: str, block: Any) -> Iterator[str]:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind not in BLOCK_TYPES:
        yield f"{where} is not a block of type {', '.join(BLOCK_TYPES)}"
    elif kind == "header":
        yield from _text_object_problems(f"{where}.text", block.get("text"), HEADER_MAX, plain_only=True)
    elif kind == "section":
        if "text" not in block and "fields" not in block:
            yield f"{where} has neither text nor fields"
        if "text" in block:
            yield from _text_object_problems(f"{where}.text", block["text"], SECTION_MAX)
        if "fields" in block:
            fields = block["fields"]
            if not isinstance(fields, list) or not 1 <= len(fields) <= MAX_FIELDS:
                yield f"{where}.fields is not a list of 1 to {MAX_FIELDS} text objects"
            else:
                for i, field in enumerate(fields):
                    yield from _text_object_problems(f"{where}.fields[{i}]", field, FIELD_MAX)
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
            yield f"{where}.elements is not a list of 1 to {MAX_CONTEXT_ELEMENTS} elements"
        else:
            for i, element in enumerate(elements):
                if not (isinstance(element, dict) and element.get("type") == "image"):  # images have no text
                    yield from _text_object_problems(f"{where}.elements[{i}]", element, ELEMENT_MAX)


def _text_object_problems(where: str, obj: Any, limit: int, plain_only: bool = False) -> Iterator[str]:
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if not isinstance(obj, dict) or obj.get("type") not in kinds:
        yield f"{where} is not a {' or '.join(kinds)} text object"
        return
    yield from _text_problems(f"{where}.text", obj.get("text"), limit)


def _text_problems(where: str, text: Any, limit: int) -> Iterator[str]:
    if not isinstance(text, str) or not text:
        yield f"{where} is not a non-empty string"
    elif text_length(text) > limit:
        yield f"{where} is {text_length(text)} characters, over {limit}"
