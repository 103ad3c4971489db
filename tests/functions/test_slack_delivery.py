"""Webhook delivery against a scripted Slack on 127.0.0.1: what is retried, how long it waits, when it gives up."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from typing import Any

import pytest
from threadline_common import slack
from threadline_common.slack import RetryPolicy, SlackDeliveryError, deliver, retry_after_seconds, send_webhook
from threadline_common.slack_format import SlackMessage, notice_message

TOKEN = "T000/B000/secret-token"

# Small delays so that the tests run in about a second each; the logic is the production one.
FAST = RetryPolicy(retries=4, base_delay=0.01, max_delay=0.05, timeout=0.5, margin=0.5, min_attempt=0.1)


@dataclass
class Reply:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds between reading the request and answering
    drop: bool = False  # close the connection without an answer


@dataclass
class ScriptedSlack:
    """A webhook endpoint that answers with `replies` in turn, then with `then`; it records each request."""

    url: str = ""
    replies: list[Reply] = field(default_factory=list)
    then: Reply = field(default_factory=Reply)
    requests: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # (time.monotonic(), JSON body)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_reply(self, body: dict[str, Any]) -> Reply:
        with self.lock:
            self.requests.append((time.monotonic(), body))
            return self.replies.pop(0) if self.replies else self.then

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [body for _, body in self.requests]

    def gaps(self) -> list[float]:
        times = [t for t, _ in self.requests]
        return [b - a for a, b in pairwise(times)]


@pytest.fixture
def scripted() -> Iterator[ScriptedSlack]:
    state = ScriptedSlack()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            reply = state.next_reply(json.loads(raw))
            time.sleep(reply.delay)
            if reply.drop:
                self.close_connection = True
                return
            body = reply.body.encode()
            try:
                self.send_response(reply.status)
                for name, value in {"Content-Type": "text/plain", **reply.headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the client gave up waiting
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/services/{TOKEN}"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def message() -> SlackMessage:
    notice = {"notice": "run_started", "run_id": "run-1", "source": {"uri": "s3://in/a.csv", "size": 10}}
    return notice_message(notice, "threadline")


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/services/{TOKEN}"


def test_429_502_504_and_a_read_timeout_are_retried_until_the_message_arrives(
    scripted: ScriptedSlack, message: SlackMessage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    scripted.replies = [
        Reply(429, "rate_limited", {"Retry-After": "1"}),
        Reply(502, "bad gateway"),
        Reply(504, "gateway timeout"),
        Reply(delay=2.0),  # answers after the attempt's 0.5 s timeout
    ]

    attempts = send_webhook(scripted.url, message, policy=FAST)

    assert attempts == 5
    assert len(scripted.requests) == 5
    assert scripted.bodies[-1] == message.payload()
    assert all(body == message.payload() for body in scripted.bodies)
    assert scripted.gaps()[0] >= 1.0  # Retry-After was waited for
    assert all(gap < 1.0 for gap in scripted.gaps()[1:3])  # the 5xx retries back off briefly
    assert caplog.text.count("Slack delivery failed, retrying") == 4
    assert "secret-token" not in caplog.text


def test_retries_stop_after_the_policy_s_count(scripted: ScriptedSlack, message: SlackMessage) -> None:
    scripted.then = Reply(502, "bad gateway")

    with pytest.raises(SlackDeliveryError, match=r"HTTP 502: bad gateway \(after 3 attempts\)"):
        send_webhook(scripted.url, message, policy=replace(FAST, retries=2))

    assert len(scripted.requests) == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(scripted: ScriptedSlack, message: SlackMessage, status: int) -> None:
    scripted.replies = [Reply(status, "oops")]

    assert send_webhook(scripted.url, message, policy=FAST) == 2
    assert len(scripted.requests) == 2


@pytest.mark.parametrize("status", [400, 403, 404, 410, 413, 501])
def test_other_errors_are_not_retried(scripted: ScriptedSlack, message: SlackMessage, status: int) -> None:
    scripted.then = Reply(status, "invalid_payload")

    with pytest.raises(SlackDeliveryError) as raised:
        send_webhook(scripted.url, message, policy=FAST)

    assert f"HTTP {status}: invalid_payload (after 1 attempt)" in str(raised.value)
    assert "secret-token" not in str(raised.value)
    assert len(scripted.requests) == 1


def test_retry_after_is_capped(scripted: ScriptedSlack, message: SlackMessage) -> None:
    scripted.replies = [Reply(429, "rate_limited", {"Retry-After": "120"})]

    assert send_webhook(scripted.url, message, policy=replace(FAST, retry_after_max=0.3)) == 2
    assert 0.3 <= scripted.gaps()[0] < 1.5


def test_429_without_retry_after_backs_off(scripted: ScriptedSlack, message: SlackMessage) -> None:
    scripted.replies = [Reply(429, "rate_limited"), Reply(429, "rate_limited")]

    assert send_webhook(scripted.url, message, policy=FAST) == 3
    assert all(gap < 0.5 for gap in scripted.gaps())


def test_a_dropped_connection_is_retried(scripted: ScriptedSlack, message: SlackMessage) -> None:
    scripted.replies = [Reply(drop=True), Reply(drop=True)]

    assert send_webhook(scripted.url, message, policy=FAST) == 3
    assert scripted.bodies[-1] == message.payload()


def test_a_refused_connection_is_retried_then_reported_without_the_url(message: SlackMessage) -> None:
    with pytest.raises(SlackDeliveryError) as raised:
        send_webhook(closed_port_url(), message, policy=replace(FAST, retries=2))

    assert "could not be reached: URLError (ConnectionRefusedError) (after 3 attempts)" in str(raised.value)
    assert "secret-token" not in str(raised.value)


def test_delivery_gives_up_before_the_time_budget_runs_out(scripted: ScriptedSlack, message: SlackMessage) -> None:
    scripted.then = Reply(503, "busy")
    policy = RetryPolicy(retries=1000, base_delay=0.05, max_delay=0.2, timeout=0.5, margin=0.5, min_attempt=0.1)
    budget = 1.5

    started = time.monotonic()
    with pytest.raises(SlackDeliveryError, match=r"HTTP 503: busy \(after \d+ attempts; no time left to retry\)"):
        send_webhook(scripted.url, message, deadline=started + budget, policy=policy)
    elapsed = time.monotonic() - started

    assert len(scripted.requests) >= 3  # it did retry while there was time
    assert elapsed < budget - policy.margin + 0.25  # nothing (no wait, no attempt) ran into the margin
    assert scripted.requests[-1][0] - started < budget - policy.margin


def test_a_slow_slack_is_cut_off_at_the_budget_not_at_the_attempt_timeout(
    scripted: ScriptedSlack, message: SlackMessage
) -> None:
    scripted.then = Reply(delay=5.0)
    policy = RetryPolicy(retries=5, base_delay=0.05, timeout=10.0, margin=0.5, min_attempt=0.1)

    started = time.monotonic()
    with pytest.raises(SlackDeliveryError, match="no time left to retry"):
        send_webhook(scripted.url, message, deadline=started + 1.5, policy=policy)
    elapsed = time.monotonic() - started

    assert len(scripted.requests) == 1
    assert 0.9 <= elapsed < 1.25


def test_a_retry_after_longer_than_the_budget_gives_up_at_once(scripted: ScriptedSlack, message: SlackMessage) -> None:
    scripted.then = Reply(429, "rate_limited", {"Retry-After": "5"})

    started = time.monotonic()
    with pytest.raises(SlackDeliveryError, match=r"HTTP 429: rate_limited \(after 1 attempt; no time left"):
        send_webhook(scripted.url, message, deadline=started + 1.5, policy=FAST)

    assert time.monotonic() - started < 0.5
    assert len(scripted.requests) == 1


def test_no_attempt_is_started_without_enough_time(scripted: ScriptedSlack, message: SlackMessage) -> None:
    with pytest.raises(SlackDeliveryError, match="Slack was not tried"):
        send_webhook(scripted.url, message, deadline=time.monotonic() + 0.3, policy=FAST)

    assert scripted.requests == []


def test_the_default_policy_keeps_two_seconds_back(scripted: ScriptedSlack, message: SlackMessage) -> None:
    with pytest.raises(SlackDeliveryError, match="Slack was not tried"):
        send_webhook(scripted.url, message, deadline=time.monotonic() + 2.5)
    assert send_webhook(scripted.url, message, deadline=time.monotonic() + 3.5) == 1


def test_a_url_that_is_not_http_is_a_config_error_that_does_not_show_it(message: SlackMessage) -> None:
    with pytest.raises(slack.SlackConfigError) as raised:
        send_webhook(f"hooks.slack.com/services/{TOKEN}", message, policy=FAST)

    assert "secret-token" not in str(raised.value)


def test_an_answer_that_repeats_the_url_is_redacted(scripted: ScriptedSlack, message: SlackMessage) -> None:
    scripted.then = Reply(404, f"no webhook at /services/{TOKEN}")

    with pytest.raises(SlackDeliveryError) as raised:
        send_webhook(scripted.url, message, policy=FAST)

    assert "HTTP 404" in str(raised.value) and "secret-token" not in str(raised.value)


def test_deliver_refuses_a_message_over_the_limits_before_sending(scripted: ScriptedSlack) -> None:
    too_long = SlackMessage(kind="run_started", text="x",
                            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}])

    with pytest.raises(SlackDeliveryError, match=r"blocks\[0\]\.text\.text is 3001 characters, over 3000"):
        deliver(too_long, scripted.url, policy=FAST)

    assert scripted.requests == []


def test_retry_after_is_read_as_seconds_or_as_a_date() -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)

    assert retry_after_seconds({"Retry-After": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": " 0 "}) == 0.0
    assert 25 <= (retry_after_seconds({"Retry-After": soon}) or 0) <= 30
    assert retry_after_seconds({"Retry-After": "-4"}) == 0.0
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({"Retry-After": "nan"}) is None
    assert retry_after_seconds({}) is None


def test_backoff_is_full_jitter_under_a_doubling_ceiling() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0)

    for attempt, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (9, 3.0)):
        delays = [slack.backoff_delay(policy, attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2 and min(delays) < ceiling / 2  # spread over the range, not fixed

    assert slack.backoff_delay(policy, 1, retry_after=7.0) == 7.0
    assert slack.backoff_delay(policy, 1, retry_after=90.0) == policy.retry_after_max
