"""notify_slack: notices and CloudWatch alarms -> the Slack webhook, or a logged warning without one.

The webhook is the twin's Slack stand-in where a test reads the messages back
(it writes each one to its outbox), or the bare fake Slack of conftest.py.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from threadline.twin.slack_standin import STALL, SlackStandin


@pytest.fixture
def secrets(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Secrets Manager (moto) with a helper that stores the webhook secret and points the function at it."""
    with mock_aws():
        client = boto3.client("secretsmanager")

        def use_webhook(url: str) -> str:
            arn = client.create_secret(Name="threadline/slack", SecretString=json.dumps({"webhook_url": url}))["ARN"]
            monkeypatch.setenv("SLACK_WEBHOOK_SECRET_ARN", arn)
            return arn

        client.use_webhook = use_webhook
        monkeypatch.setenv("PIPELINE_NAME", "threadline")
        yield client


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[SlackStandin]:
    """The twin's Slack webhook, writing what it takes to tmp_path/outbox."""
    with SlackStandin(tmp_path / "outbox") as server:
        yield server


def outbox_messages(outbox: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(outbox.iterdir())]


def threadline_logs(caplog: pytest.LogCaptureFixture) -> str:
    """Log lines of threadline and slack_sdk (botocore's own DEBUG lines show request bodies, the test's too)."""
    return "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("botocore", "boto3", "urllib3")))


def all_text(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"], ensure_ascii=False)


def test_the_twin_s_webhook_writes_each_message_to_the_outbox_in_order(
    secrets: Any, standin: SlackStandin, notify_slack: Any, sample_event: Any, make_context: Any
) -> None:
    secrets.use_webhook(standin.url)

    first = notify_slack.handler(sample_event("notice_run_started.json"), make_context())
    second = notify_slack.handler(sample_event("notice_run_failed.json"), make_context())

    assert first["status"] == second["status"] == "sent"
    files = sorted(standin.outbox.iterdir())
    assert [p.name for p in files] == sorted(p.name for p in files)
    assert len(files) == 2 and all(p.suffix == ".json" and not p.name.startswith(".") for p in files)
    assert all(re.fullmatch(r"\d{20}-run_(started|failed)-[0-9a-f]{8}\.json", p.name) for p in files)
    started, failed = outbox_messages(standin.outbox)
    assert started["kind"] == "run_started" and failed["kind"] == "run_failed"
    assert [r.path for r in standin.received] == files  # in the order the function sent them
    assert set(failed) == {"kind", "run_id", "text", "blocks"}
    run_id = sample_event("notice_run_failed.json")["run_id"]
    assert failed["run_id"] == run_id
    assert failed["blocks"][0]["type"] == "header"
    assert failed["blocks"][0]["text"]["text"] == f":x: Run failed: {run_id}"
    text = all_text(failed)
    assert "States.TaskFailed" in text
    assert f"Job analysis-{run_id}: FAILED" in text  # the Batch job description is summed up, not dumped
    assert "Exit code: 1" in text
    assert '"JobArn"' not in text
    assert "Open the execution" in text
    assert failed["text"] == f"[threadline] Run failed: {run_id} (States.TaskFailed)"


def test_validation_failure_quotes_the_validation_summary(
    secrets: Any, standin: SlackStandin, notify_slack: Any, sample_event: Any, make_context: Any
) -> None:
    secrets.use_webhook(standin.url)
    notice = sample_event("notice_validation_failed.json")

    notify_slack.handler(notice, make_context())
    notice["notice"] = "run_failed"  # the state machine may send it as a failed run with Error ValidationFailed
    notify_slack.handler(notice, make_context())

    messages = outbox_messages(standin.outbox)
    assert len(messages) == 2
    for message in messages:
        assert message["run_id"] == notice["run_id"]
        assert message["kind"] == "validation_failed"
        text = all_text(message)
        assert "Validation summary" in text
        assert "412 of 1843 rows (22.4%) were rejected" in text
        assert notice["quarantine_uri"] in text


def test_cloudwatch_alarm_from_sns_is_formatted(secrets: Any, standin: SlackStandin, notify_slack: Any,
                                                sample_event: Any, lambda_context: Any) -> None:
    secrets.use_webhook(standin.url)

    result = notify_slack.handler(sample_event("sns_cloudwatch_alarm.json"), lambda_context)

    assert result["status"] == "sent"
    [message] = outbox_messages(standin.outbox)
    assert message["kind"] == "alarm" and message["run_id"] is None
    assert message["blocks"][0]["text"]["text"] == ":rotating_light: ALARM: threadline-executions-failed"
    text = all_text(message)
    assert "OK → *ALARM*" in text
    assert "AWS/States/ExecutionsFailed" in text
    assert "Threshold Crossed" in text
    assert "us-east-1.console.aws.amazon.com/cloudwatch" in text


def test_plain_sns_message_is_quoted(secrets: Any, standin: SlackStandin, notify_slack: Any,
                                     lambda_context: Any) -> None:
    secrets.use_webhook(standin.url)
    event = {"Records": [{"EventSource": "aws:sns", "Sns": {"Subject": "Heads up", "Message": "disk <full> & hot"}}]}

    notify_slack.handler(event, lambda_context)

    [message] = outbox_messages(standin.outbox)
    assert message["kind"] == "sns_message"
    assert message["blocks"][0]["text"]["text"] == ":loudspeaker: Heads up"
    assert "disk &lt;full&gt; &amp; hot" in all_text(message)


def test_long_cause_is_truncated_within_block_kit_limits(secrets: Any, standin: SlackStandin, notify_slack: Any,
                                                        sample_event: Any, lambda_context: Any) -> None:
    secrets.use_webhook(standin.url)
    notice = sample_event("notice_run_failed.json")
    notice["error"] = {"Error": "States.Runtime", "Cause": "x & y " * 3000}

    notify_slack.handler(notice, lambda_context)

    [message] = outbox_messages(standin.outbox)
    sections = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section" and "text" in b]
    cause = next(s for s in sections if "States.Runtime" in s)
    assert len(cause) <= 3000
    assert cause.endswith("(truncated)```")
    assert "&amp" in cause and not cause.split("```")[1].rsplit(" …", 1)[0].endswith("&")


def test_no_webhook_logs_a_warning_and_writes_nothing(secrets: Any, notify_slack: Any, sample_event: Any,
                                                     lambda_context: Any, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    secrets.use_webhook("")
    monkeypatch.setenv("SLACK_OUTBOX_DIR", str(tmp_path / "outbox"))  # the old local outbox is gone from the function

    result = notify_slack.handler(sample_event("notice_run_started.json"), lambda_context)

    assert result == {"status": "not_configured", "messages": [{"kind": "run_started", "delivery": "not_configured"}]}
    assert "Slack webhook not configured" in caplog.text
    assert not (tmp_path / "outbox").exists()


def test_no_secret_configured_counts_as_no_webhook(aws_env: None, monkeypatch: pytest.MonkeyPatch,
                                                   notify_slack: Any, sample_event: Any, lambda_context: Any,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("SLACK_WEBHOOK_SECRET_ARN", raising=False)

    result = notify_slack.handler(sample_event("notice_run_started.json"), lambda_context)

    assert result["status"] == "not_configured"
    assert "Slack webhook not configured" in caplog.text


def test_webhook_receives_the_block_kit_message(secrets: Any, fake_slack: Any, notify_slack: Any,
                                                sample_event: Any, lambda_context: Any,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secrets.use_webhook(fake_slack.url)

    result = notify_slack.handler(sample_event("notice_run_started.json"), lambda_context)

    assert result["status"] == "sent"
    [request] = fake_slack.requests
    assert request["path"] == "/services/T000/B000/secret-token"
    assert request["content_type"].startswith("application/json")
    assert request["json"]["blocks"][0]["text"]["text"].startswith(":arrow_forward: Run started")
    assert "1.8 KB" in json.dumps(request["json"]["blocks"])
    assert set(request["json"]) == {"text", "blocks"}  # Slack's payload only: nothing it would refuse
    assert "secret-token" not in threadline_logs(caplog)


def test_slack_error_raises_slack_delivery_error_without_the_url(
    secrets: Any, fake_slack: Any, notify_slack: Any, sample_event: Any, lambda_context: Any,
    caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets.use_webhook(fake_slack.url)
    fake_slack.status, fake_slack.body = 404, "no_service"

    with pytest.raises(Exception) as raised:
        notify_slack.handler(sample_event("notice_run_started.json"), lambda_context)

    assert type(raised.value).__name__ == "SlackDeliveryError"
    assert "404" in str(raised.value) and "no_service" in str(raised.value)
    assert "secret-token" not in str(raised.value)
    assert "secret-token" not in threadline_logs(caplog)
    assert len(fake_slack.requests) == 1  # a 4xx is not retried


def test_unreachable_slack_raises_slack_delivery_error(secrets: Any, notify_slack: Any, sample_event: Any,
                                                       lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from threadline_common import slack

    monkeypatch.setattr(slack, "WEBHOOK_RETRIES", 0)
    secrets.use_webhook("http://127.0.0.1:9/services/T000/B000/secret-token")

    with pytest.raises(slack.SlackDeliveryError, match="could not be reached"):
        notify_slack.handler(sample_event("notice_run_started.json"), lambda_context)


def test_too_little_time_left_fails_without_posting(secrets: Any, fake_slack: Any, notify_slack: Any,
                                                    sample_event: Any, make_context: Any) -> None:
    secrets.use_webhook(fake_slack.url)

    with pytest.raises(Exception) as raised:
        notify_slack.handler(sample_event("notice_run_started.json"), make_context(remaining_ms=2500))  # < 2 s + 1 s

    assert type(raised.value).__name__ == "SlackDeliveryError"
    assert "Slack was not tried" in str(raised.value)
    assert fake_slack.requests == []
    result = notify_slack.handler(sample_event("notice_run_started.json"), make_context(remaining_ms=30_000))
    assert result["status"] == "sent" and len(fake_slack.requests) == 1


def test_retries_stop_within_the_invocation_s_remaining_time(secrets: Any, fake_slack: Any, notify_slack: Any,
                                                             sample_event: Any, make_context: Any) -> None:
    secrets.use_webhook(fake_slack.url)
    # A first notice loads what the function imports on first use (the secret provider, slack_sdk's
    # webhook client): on a busy machine that alone can take most of the 1.6 s this test gives the retries.
    notify_slack.handler(sample_event("notice_run_started.json"), make_context(remaining_ms=30_000))
    fake_slack.requests.clear()
    fake_slack.status, fake_slack.body = 503, "busy"

    started = time.monotonic()
    with pytest.raises(Exception) as raised:
        notify_slack.handler(sample_event("notice_run_started.json"), make_context(remaining_ms=3600))
    elapsed = time.monotonic() - started

    assert type(raised.value).__name__ == "SlackDeliveryError"
    assert "HTTP 503: busy" in str(raised.value) and "no time left to retry" in str(raised.value)
    assert "secret-token" not in str(raised.value)
    assert len(fake_slack.requests) >= 2  # 1.6 s to use: room for at least one retry
    assert elapsed < 1.6 + 0.25  # the last 2 s of the 3.6 s are left alone


def test_an_oversized_notice_reaches_slack_within_the_limits(secrets: Any, fake_slack: Any, notify_slack: Any,
                                                             sample_event: Any, lambda_context: Any) -> None:
    from threadline_common.slack_format import FIELD_MAX, check_limits

    secrets.use_webhook(fake_slack.url)
    notice = sample_event("notice_run_failed.json")
    notice["source"]["uri"] = "s3://in/" + "&" * 5000
    notice["error"] = {"Error": "States.TaskFailed", "Cause": "<&>" * 5000}

    result = notify_slack.handler(notice, lambda_context)

    assert result["status"] == "sent"
    [request] = fake_slack.requests
    check_limits(request["json"])
    fields = [f["text"] for b in request["json"]["blocks"] for f in b.get("fields", [])]
    source = next(f for f in fields if f.startswith("*Input*"))
    assert len(source) <= FIELD_MAX and "(truncated)`" in source


def test_webhook_url_is_cached(secrets: Any, fake_slack: Any, notify_slack: Any, sample_event: Any,
                               make_context: Any) -> None:
    from aws_lambda_powertools.utilities import parameters

    arn = secrets.use_webhook(fake_slack.url)
    notify_slack.handler(sample_event("notice_run_started.json"), make_context())
    secrets.put_secret_value(SecretId=arn, SecretString=json.dumps({"webhook_url": ""}))

    result = notify_slack.handler(sample_event("notice_run_started.json"), make_context())

    assert result["status"] == "sent"
    assert len(fake_slack.requests) == 2
    parameters.clear_caches()  # a new execution environment reads the secret again
    assert notify_slack.handler(sample_event("notice_run_started.json"), make_context())["status"] == "not_configured"


def test_secret_that_is_not_json_fails_clearly(secrets: Any, notify_slack: Any, sample_event: Any,
                                               lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    arn = secrets.create_secret(Name="threadline/slack-raw", SecretString="https://hooks.slack.com/x")["ARN"]
    monkeypatch.setenv("SLACK_WEBHOOK_SECRET_ARN", arn)

    with pytest.raises(Exception) as raised:
        notify_slack.handler(sample_event("notice_run_started.json"), lambda_context)

    assert type(raised.value).__name__ == "SlackConfigError"
    assert "hooks.slack.com" not in str(raised.value)


@pytest.mark.parametrize(
    "notice",
    [
        {},
        "run_started",
        {"notice": "run_exploded", "run_id": "r"},
        {"notice": "run_started"},
        {"notice": "run_started", "run_id": ""},
        {"Records": [{"EventSource": "aws:sqs", "body": "{}"}]},
        {"Records": [{"EventSource": "aws:sns", "Sns": {}}]},
    ],
)
def test_malformed_notices_are_skipped_not_raised(secrets: Any, standin: SlackStandin, notify_slack: Any,
                                                  notice: Any, lambda_context: Any) -> None:
    secrets.use_webhook(standin.url)

    result = notify_slack.handler(notice, lambda_context)

    assert result["status"] == "skipped"
    assert result["reason"]
    assert standin.received == [] and list(standin.outbox.iterdir()) == []


def test_a_rate_limited_message_is_sent_again_after_retry_after(secrets: Any, standin: SlackStandin,
                                                                notify_slack: Any, sample_event: Any,
                                                                lambda_context: Any) -> None:
    secrets.use_webhook(standin.url)
    standin.fail_next(429, 1, retry_after=0.2)

    started = time.monotonic()
    result = notify_slack.handler(sample_event("notice_run_started.json"), lambda_context)

    assert result["status"] == "sent"
    assert [r.answer for r in standin.received] == [429, 200]
    assert time.monotonic() - started >= 0.2
    assert [m["kind"] for m in outbox_messages(standin.outbox)] == ["run_started"]


def test_a_stalled_webhook_counts_as_a_timeout_and_is_tried_again(secrets: Any, standin: SlackStandin,
                                                                  notify_slack: Any, sample_event: Any,
                                                                  lambda_context: Any,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from threadline_common import slack

    monkeypatch.setattr(slack, "WEBHOOK_TIMEOUT_SECONDS", 1)
    secrets.use_webhook(standin.url)
    standin.fail_next(STALL, 1, stall_s=5)

    result = notify_slack.handler(sample_event("notice_run_started.json"), lambda_context)

    assert result["status"] == "sent"
    assert [r.answer for r in standin.received] == [STALL, 200]


def test_failures_for_one_run_leave_other_messages_alone(secrets: Any, standin: SlackStandin, notify_slack: Any,
                                                         sample_event: Any, make_context: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from threadline_common import slack

    monkeypatch.setattr(slack, "WEBHOOK_RETRIES", 1)
    secrets.use_webhook(standin.url)
    failing = sample_event("notice_run_failed.json")
    other = {**failing, "run_id": "other-run-0123456789abcdef"}
    standin.fail_next(500, None, run_id=failing["run_id"])

    with pytest.raises(slack.SlackDeliveryError, match=r"HTTP 500: internal_error \(after 2 attempts\)"):
        notify_slack.handler(failing, make_context())
    assert notify_slack.handler(other, make_context())["status"] == "sent"

    assert [(r.run_id, r.answer) for r in standin.received] == [
        (failing["run_id"], 500), (failing["run_id"], 500), (other["run_id"], 200)]
    assert [m["run_id"] for m in outbox_messages(standin.outbox)] == [other["run_id"]]
