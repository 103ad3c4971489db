"""notify_slack: notices and CloudWatch alarms -> Slack webhook, local outbox, or a logged warning."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws


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
        monkeypatch.delenv("SLACK_OUTBOX_DIR", raising=False)
        yield client


@pytest.fixture
def outbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "outbox"
    monkeypatch.setenv("SLACK_OUTBOX_DIR", str(path))
    return path


class FakeContext:
    """The one Lambda context method the handler reads for its time budget."""

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def outbox_messages(outbox: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(outbox.iterdir())]


def threadline_logs(caplog: pytest.LogCaptureFixture) -> str:
    """Log lines of threadline and slack_sdk (botocore's own DEBUG lines show request bodies, the test's too)."""
    return "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("botocore", "boto3", "urllib3")))


def all_text(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"], ensure_ascii=False)


def test_empty_webhook_writes_each_message_to_the_outbox_in_order(
    secrets: Any, outbox: Path, notify_slack: Any, sample_event: Any
) -> None:
    secrets.use_webhook("")

    first = notify_slack.handler(sample_event("notice_run_started.json"), None)
    second = notify_slack.handler(sample_event("notice_run_failed.json"), None)

    assert first["status"] == second["status"] == "outbox"
    files = sorted(outbox.iterdir())
    assert [p.name for p in files] == sorted(p.name for p in files)
    assert len(files) == 2 and all(p.suffix == ".json" and not p.name.startswith(".") for p in files)
    started, failed = outbox_messages(outbox)
    assert started["kind"] == "run_started" and failed["kind"] == "run_failed"
    assert second["messages"][0]["path"] == str(files[1])
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
    secrets: Any, outbox: Path, notify_slack: Any, sample_event: Any
) -> None:
    secrets.use_webhook("")
    notice = sample_event("notice_validation_failed.json")

    notify_slack.handler(notice, None)
    notice["notice"] = "run_failed"  # the state machine may send it as a failed run with Error ValidationFailed
    notify_slack.handler(notice, None)

    for message in outbox_messages(outbox):
        assert message["kind"] == "validation_failed"
        text = all_text(message)
        assert "Validation summary" in text
        assert "412 of 1843 rows (22.4%) were rejected" in text
        assert notice["quarantine_uri"] in text


def test_cloudwatch_alarm_from_sns_is_formatted(secrets: Any, outbox: Path, notify_slack: Any,
                                                sample_event: Any) -> None:
    secrets.use_webhook("")

    result = notify_slack.handler(sample_event("sns_cloudwatch_alarm.json"), None)

    assert result["status"] == "outbox"
    [message] = outbox_messages(outbox)
    assert message["kind"] == "alarm"
    assert message["blocks"][0]["text"]["text"] == ":rotating_light: ALARM: threadline-executions-failed"
    text = all_text(message)
    assert "OK → *ALARM*" in text
    assert "AWS/States/ExecutionsFailed" in text
    assert "Threshold Crossed" in text
    assert "us-east-1.console.aws.amazon.com/cloudwatch" in text


def test_plain_sns_message_is_quoted(secrets: Any, outbox: Path, notify_slack: Any) -> None:
    secrets.use_webhook("")
    event = {"Records": [{"EventSource": "aws:sns", "Sns": {"Subject": "Heads up", "Message": "disk <full> & hot"}}]}

    notify_slack.handler(event, None)

    [message] = outbox_messages(outbox)
    assert message["blocks"][0]["text"]["text"] == ":loudspeaker: Heads up"
    assert "disk &lt;full&gt; &amp; hot" in all_text(message)


def test_long_cause_is_truncated_within_block_kit_limits(secrets: Any, outbox: Path, notify_slack: Any,
                                                        sample_event: Any) -> None:
    secrets.use_webhook("")
    notice = sample_event("notice_run_failed.json")
    notice["error"] = {"Error": "States.Runtime", "Cause": "x & y " * 3000}

    notify_slack.handler(notice, None)

    [message] = outbox_messages(outbox)
    sections = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section" and "text" in b]
    cause = next(s for s in sections if "States.Runtime" in s)
    assert len(cause) <= 3000
    assert cause.endswith("(truncated)```")
    assert "&amp" in cause and not cause.split("```")[1].rsplit(" …", 1)[0].endswith("&")


def test_no_webhook_and_no_outbox_logs_a_warning(secrets: Any, notify_slack: Any, sample_event: Any,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    secrets.use_webhook("")

    result = notify_slack.handler(sample_event("notice_run_started.json"), None)

    assert result["status"] == "not_configured"
    assert "Slack webhook not configured" in caplog.text


def test_no_secret_configured_counts_as_no_webhook(aws_env: None, monkeypatch: pytest.MonkeyPatch,
                                                   outbox: Path, notify_slack: Any, sample_event: Any) -> None:
    monkeypatch.delenv("SLACK_WEBHOOK_SECRET_ARN", raising=False)

    result = notify_slack.handler(sample_event("notice_run_started.json"), None)

    assert result["status"] == "outbox"
    assert len(outbox_messages(outbox)) == 1


def test_webhook_receives_the_block_kit_message(secrets: Any, fake_slack: Any, outbox: Path, notify_slack: Any,
                                                sample_event: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secrets.use_webhook(fake_slack.url)

    result = notify_slack.handler(sample_event("notice_run_started.json"), None)

    assert result["status"] == "sent"
    [request] = fake_slack.requests
    assert request["path"] == "/services/T000/B000/secret-token"
    assert request["content_type"].startswith("application/json")
    assert request["json"]["blocks"][0]["text"]["text"].startswith(":arrow_forward: Run started")
    assert "1.8 KB" in json.dumps(request["json"]["blocks"])
    assert not outbox.exists()  # a configured webhook wins over the outbox
    assert "secret-token" not in threadline_logs(caplog)


def test_slack_error_raises_slack_delivery_error_without_the_url(
    secrets: Any, fake_slack: Any, notify_slack: Any, sample_event: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets.use_webhook(fake_slack.url)
    fake_slack.status, fake_slack.body = 404, "no_service"

    with pytest.raises(Exception) as raised:
        notify_slack.handler(sample_event("notice_run_started.json"), None)

    assert type(raised.value).__name__ == "SlackDeliveryError"
    assert "404" in str(raised.value) and "no_service" in str(raised.value)
    assert "secret-token" not in str(raised.value)
    assert "secret-token" not in threadline_logs(caplog)
    assert len(fake_slack.requests) == 1  # a 4xx is not retried


def test_unreachable_slack_raises_slack_delivery_error(secrets: Any, notify_slack: Any, sample_event: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from threadline_common import slack

    monkeypatch.setattr(slack, "WEBHOOK_RETRIES", 0)
    secrets.use_webhook("http://127.0.0.1:9/services/T000/B000/secret-token")

    with pytest.raises(slack.SlackDeliveryError, match="could not be reached"):
        notify_slack.handler(sample_event("notice_run_started.json"), None)


def test_too_little_time_left_fails_without_posting(secrets: Any, fake_slack: Any, notify_slack: Any,
                                                    sample_event: Any) -> None:
    secrets.use_webhook(fake_slack.url)

    with pytest.raises(Exception) as raised:
        notify_slack.handler(sample_event("notice_run_started.json"), FakeContext(2500))  # under margin + 1 s

    assert type(raised.value).__name__ == "SlackDeliveryError"
    assert "Slack was not tried" in str(raised.value)
    assert fake_slack.requests == []
    result = notify_slack.handler(sample_event("notice_run_started.json"), FakeContext(30_000))
    assert result["status"] == "sent" and len(fake_slack.requests) == 1


def test_retries_stop_within_the_invocation_s_remaining_time(secrets: Any, fake_slack: Any, notify_slack: Any,
                                                             sample_event: Any) -> None:
    secrets.use_webhook(fake_slack.url)
    fake_slack.status, fake_slack.body = 503, "busy"

    started = time.monotonic()
    with pytest.raises(Exception) as raised:
        notify_slack.handler(sample_event("notice_run_started.json"), FakeContext(3600))
    elapsed = time.monotonic() - started

    assert type(raised.value).__name__ == "SlackDeliveryError"
    assert "HTTP 503: busy" in str(raised.value) and "no time left to retry" in str(raised.value)
    assert "secret-token" not in str(raised.value)
    assert len(fake_slack.requests) >= 2  # 1.6 s to use: room for at least one retry
    assert elapsed < 1.6 + 0.25  # the last 2 s of the 3.6 s are left alone


def test_an_oversized_notice_reaches_slack_within_the_limits(secrets: Any, fake_slack: Any, notify_slack: Any,
                                                             sample_event: Any) -> None:
    from threadline_common.slack_format import FIELD_MAX, check_limits

    secrets.use_webhook(fake_slack.url)
    notice = sample_event("notice_run_failed.json")
    notice["source"]["uri"] = "s3://in/" + "&" * 5000
    notice["error"] = {"Error": "States.TaskFailed", "Cause": "<&>" * 5000}

    result = notify_slack.handler(notice, FakeContext(30_000))

    assert result["status"] == "sent"
    [request] = fake_slack.requests
    check_limits(request["json"])
    fields = [f["text"] for b in request["json"]["blocks"] for f in b.get("fields", [])]
    source = next(f for f in fields if f.startswith("*Input*"))
    assert len(source) <= FIELD_MAX and "(truncated)`" in source


def test_webhook_url_is_cached(secrets: Any, fake_slack: Any, notify_slack: Any, sample_event: Any) -> None:
    arn = secrets.use_webhook(fake_slack.url)
    notify_slack.handler(sample_event("notice_run_started.json"), None)
    secrets.put_secret_value(SecretId=arn, SecretString=json.dumps({"webhook_url": ""}))

    result = notify_slack.handler(sample_event("notice_run_started.json"), None)

    assert result["status"] == "sent"
    assert len(fake_slack.requests) == 2


def test_secret_that_is_not_json_fails_clearly(secrets: Any, notify_slack: Any, sample_event: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    arn = secrets.create_secret(Name="threadline/slack-raw", SecretString="https://hooks.slack.com/x")["ARN"]
    monkeypatch.setenv("SLACK_WEBHOOK_SECRET_ARN", arn)

    with pytest.raises(Exception) as raised:
        notify_slack.handler(sample_event("notice_run_started.json"), None)

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
def test_malformed_notices_are_skipped_not_raised(secrets: Any, outbox: Path, notify_slack: Any, notice: Any) -> None:
    secrets.use_webhook("")

    result = notify_slack.handler(notice, None)

    assert result["status"] == "skipped"
    assert result["reason"]
    assert not outbox.exists()
