"""Block Kit limits: hostile notices and alarms still make messages Slack accepts, cut cleanly."""

from __future__ import annotations

import copy
import itertools
import json
import random
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from threadline_common import slack_format as fmt
from threadline_common.slack_format import MessageLimitError, SlackMessage, check_limits

HOSTILE = [
    "&" * 5000,  # five times longer once escaped
    "<>" * 3000,
    "`" * 4000,
    "```" * 1500,
    "a&b<c>`d" * 900,
    "😀" * 3000,  # two UTF-16 code units each
    "x & y " * 3000,
    "s3://bucket/" + "deep/" * 1200 + "key.csv",
    "line\n" * 2000,
    "é" * 4000,
]

BROKEN_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")
INLINE_CODE_LABELS = ("*Run*\n", "*Input*\n", "*Report*\n", "*Quarantined under*\n")
EXECUTION_ARN = "arn:aws:states:eu-west-1:123456789012:execution:threadline:"
EXECUTION_NAMES = ["r1", "a" * 80, "run-2024_06_11-" + "x" * 65]


def notices(rng: random.Random, count: int) -> Iterator[dict[str, Any]]:
    """Notices of every kind with hostile values in random places."""
    for kind in itertools.islice(itertools.cycle([*fmt.NOTICES, "run_failed_validation"]), count):
        def pick() -> str:
            return rng.choice(HOSTILE) if rng.random() < 0.7 else "plain"

        notice: dict[str, Any] = {
            "notice": "run_failed" if kind == "run_failed_validation" else kind,
            "run_id": pick(),
            "execution_arn": EXECUTION_ARN + rng.choice(EXECUTION_NAMES),
            "source": {"uri": pick(), "size": rng.choice([0, 1800, 10**12, None])},
            "report_uri": pick(),
            "quarantine_uri": pick(),
        }
        if kind in ("run_failed", "validation_failed", "run_failed_validation"):
            error_name = fmt.VALIDATION_ERROR if kind == "run_failed_validation" else pick()
            cause: Any = rng.choice([pick(), json.dumps({"JobName": pick(), "StatusReason": pick(),
                                                         "Container": {"ExitCode": 1}, "Attempts": [{}] * 3})])
            notice["error"] = {"Error": error_name, "Cause": cause}
        if kind == "validation_failed" and rng.random() < 0.5:
            notice["validation"] = {"rejected": pick(), "rules": [pick() for _ in range(5)]}
        yield notice


def alarms(rng: random.Random, count: int) -> Iterator[tuple[str, str | None]]:
    """CloudWatch alarm SNS messages (and plain SNS messages) with hostile values in every field."""
    for _ in range(count):
        def pick() -> str:
            return rng.choice(HOSTILE) if rng.random() < 0.7 else "plain"

        alarm = {
            "AlarmName": pick()[:255],
            "AlarmDescription": pick(),
            "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:x",
            "NewStateValue": rng.choice(["ALARM", "OK", pick()]),
            "OldStateValue": pick(),
            "NewStateReason": pick(),
            "StateChangeTime": pick(),
            "Trigger": rng.choice([{"MetricName": pick(), "Namespace": pick()},
                                   {"Metrics": [{"Id": pick()[:300]} for _ in range(40)]}]),
        }
        yield json.dumps(alarm), pick()
        yield pick(), rng.choice([None, pick()])


def mrkdwn_texts(message: SlackMessage) -> Iterator[str]:
    for block in message.blocks:
        if isinstance(block.get("text"), dict) and block["text"]["type"] == "mrkdwn":
            yield block["text"]["text"]
        for item in block.get("fields", []) + block.get("elements", []):
            yield item["text"]


def code_spans(message: SlackMessage) -> Iterator[str]:
    """The inline code and code blocks the builders made (free text may hold stray backticks of its own)."""
    for text in mrkdwn_texts(message):
        if text.startswith(INLINE_CODE_LABELS):
            value = text.split("\n", 1)[1]
            end = value.index("`", 1) + 1
            assert re.fullmatch(r"( \([0-9.]+ [KMG]?B\))?", value[end:]), value[-80:]  # nothing but a size after it
            yield value[:end]
        elif text.startswith("*Error* `"):
            end = text.index("`", len("*Error* `")) + 1
            yield text[len("*Error* "):end]
            assert text[end] == "\n"
            yield text[end + 1:]
        elif text.startswith(("*Reason*\n", "*Validation summary*\n")):
            yield text.split("\n", 1)[1]
    if message.kind == "sns_message":
        yield message.blocks[1]["text"]["text"]


def assert_well_formed(message: SlackMessage) -> None:
    """Within every limit, and no cut left an entity, a link or a code span broken."""
    check_limits(message)
    for text in [message.text, *mrkdwn_texts(message)]:
        assert not BROKEN_ENTITY.search(text), text[-80:]
        assert text.count("<") == text.count(">") <= 1, text[-80:]  # only whole links
    for code in code_spans(message):
        if code.startswith("```"):
            assert len(code) >= 6 and code.endswith("```") and "```" not in code[3:-3], code[-80:]
        else:
            assert code.startswith("`") and code.endswith("`") and code.count("`") == 2, code[-80:]
            assert len(code) > 2


def test_hostile_notices_make_messages_within_every_limit() -> None:
    rng = random.Random(20240611)
    for notice in notices(rng, 300):
        assert_well_formed(fmt.notice_message(notice, rng.choice(["threadline", "&" * 3000])))


def test_hostile_alarms_make_messages_within_every_limit() -> None:
    rng = random.Random(7)
    for message, subject in alarms(rng, 150):
        assert_well_formed(fmt.alarm_message(message, subject))


def test_a_5000_ampersand_key_fills_its_field_without_breaking_an_entity() -> None:
    notice = {"notice": "run_started", "run_id": "r1", "source": {"uri": "s3://in/" + "&" * 5000, "size": 1843}}

    message = fmt.notice_message(notice, "threadline")

    [fields] = [b["fields"] for b in message.blocks if "fields" in b]
    field = next(f["text"] for f in fields if f["text"].startswith("*Input*"))
    assert 1900 < len(field) <= fmt.FIELD_MAX
    assert field.startswith("*Input*\n`s3://in/&amp;&amp;")
    assert field.endswith("&amp; … (truncated)` (1.8 KB)")  # the size survives the cut
    assert_well_formed(message)


def test_a_long_cause_keeps_its_code_block_closed() -> None:
    notice = {"notice": "run_failed", "run_id": "r1", "error": {"Error": "E<" * 2000, "Cause": "&<>" * 4000}}

    message = fmt.notice_message(notice, "threadline")

    error = next(t for t in mrkdwn_texts(message) if t.startswith("*Error*"))
    name = error.split("\n", 1)[0]
    assert len(name) <= len("*Error* ") + fmt.ERROR_NAME_MAX
    assert name.endswith("(truncated)`")
    assert error.endswith("&gt; … (truncated)```") or error.endswith("&amp; … (truncated)```") \
        or error.endswith("&lt; … (truncated)```")
    assert len(error) <= fmt.SECTION_MAX
    assert_well_formed(message)


def test_emoji_count_twice_towards_a_limit() -> None:
    message = fmt.alarm_message("not json", subject="😀" * 200)

    header = message.blocks[0]["text"]["text"]
    assert fmt.text_length(header) <= fmt.HEADER_MAX < len(header.encode("utf-16-le"))
    assert header.endswith(fmt.TRUNCATED)


def test_top_level_text_is_escaped_and_cut() -> None:
    message = fmt.notice_message({"notice": "run_failed", "run_id": "<!channel>" * 600,
                                  "error": {"Error": "Boom"}}, "threadline")

    assert message.text.startswith("[threadline] Run failed: &lt;!channel&gt;")
    assert len(message.text) <= fmt.TEXT_MAX and message.text.endswith(fmt.TRUNCATED)


@pytest.mark.parametrize("source", [
    "`" + fmt.escape("a&b<c>d" * 60) + "`",
    "```" + fmt.escape("x & <y>\n" * 60) + "```",
    "*Reason* `" + fmt.escape("E&" * 20) + "`\n```" + fmt.escape("q>" * 150) + "```",
    "see <https://example.com/a|the page> and " + fmt.escape("&" * 80) + " <https://example.com/b|another>",
])
def test_clip_never_breaks_entities_code_or_links_at_any_limit(source: str) -> None:
    for limit in range(20, len(source) + 2):
        clipped = fmt.clip(source, limit)
        assert fmt.text_length(clipped) <= limit
        if limit >= len(source):
            assert clipped == source
            continue
        assert clipped.rstrip("`").endswith(fmt.TRUNCATED)
        assert not BROKEN_ENTITY.search(clipped), (limit, clipped)
        assert clipped.count("<") == clipped.count(">"), (limit, clipped)
        assert source.startswith(clipped[: clipped.index(fmt.TRUNCATED)])
        if "```" in clipped:
            assert clipped.endswith("```") and clipped.count("```") % 2 == 0, (limit, clipped)
        else:
            assert clipped.count("`") % 2 == 0, (limit, clipped)


def valid_message() -> dict[str, Any]:
    notice = {"notice": "run_failed", "run_id": "r1", "execution_arn": "arn:aws:states:us-east-1:1:execution:s:r1",
              "source": {"uri": "s3://in/a.csv"}, "error": {"Error": "Boom", "Cause": "bad"}}
    return fmt.notice_message(notice, "threadline").payload()


def set_path(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(payload: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = payload
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value
    return change


@pytest.mark.parametrize(("change", "problem"), [
    (set_path("text", "t" * 3001), "text is 3001 characters, over 3000"),
    (set_path("text", ""), "text is not a non-empty string"),
    (set_path("blocks.0.text.text", "h" * 151), "blocks[0].text.text is 151 characters, over 150"),
    (set_path("blocks.0.text.type", "mrkdwn"), "blocks[0].text is not a plain_text text object"),
    (set_path("blocks.1.fields.0.text", "f" * 2001), "blocks[1].fields[0].text is 2001 characters, over 2000"),
    (set_path("blocks.1.fields", [{"type": "mrkdwn", "text": "f"}] * 11),
     "blocks[1].fields is not a list of 1 to 10 text objects"),
    (set_path("blocks.2.text.text", "s" * 3001), "blocks[2].text.text is 3001 characters, over 3000"),
    (set_path("blocks.2.text.text", "😀" * 1501), "blocks[2].text.text is 3002 characters, over 3000"),
    (set_path("blocks.3.elements", [{"type": "mrkdwn", "text": "c"}] * 11),
     "blocks[3].elements is not a list of 1 to 10 elements"),
    (set_path("blocks.3.elements.0.text", "c" * 3001), "blocks[3].elements[0].text is 3001 characters"),
    (set_path("blocks.3.type", "video"), "blocks[3] is not a block of type header, section, context, divider"),
    (lambda p: p["blocks"].extend([{"type": "divider"}] * 47), "51 blocks, over 50"),
    (lambda p: p["blocks"][2].pop("text"), "blocks[2] has neither text nor fields"),
])
def test_check_limits_names_each_broken_limit(change: Callable[[dict[str, Any]], None], problem: str) -> None:
    payload = valid_message()
    check_limits(payload)  # the unchanged message passes
    broken = copy.deepcopy(payload)
    change(broken)

    with pytest.raises(MessageLimitError) as raised:
        check_limits(broken)

    assert problem in str(raised.value)


def test_check_limits_lists_every_problem_at_once() -> None:
    payload = valid_message()
    payload["text"] = "t" * 3001
    payload["blocks"][0]["text"]["text"] = "h" * 151

    with pytest.raises(MessageLimitError) as raised:
        check_limits(payload)

    assert str(raised.value).count(";") == 1


def test_fields_past_ten_go_to_a_second_section_and_blocks_stop_at_fifty() -> None:
    fields = [fmt._field(f"F{i}", "v") for i in range(23)]

    sections = fmt._field_sections(fields)

    assert [len(s["fields"]) for s in sections] == [10, 10, 3]
    assert len(fmt._fit_blocks(sections * 30)) == fmt.MAX_BLOCKS
