"""THREADLINE_SLACK_BACKOFF_SCALE: how the offline twin shortens the Slack function's waits between retries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest
from threadline_common import slack
from threadline_common.slack import BACKOFF_SCALE_ENV, RetryPolicy, SlackConfigError, default_policy, send_webhook
from threadline_common.slack_format import SlackMessage


class _AlwaysUnavailable(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(503)
        self.end_headers()
        self.wfile.write(b"unavailable")

    def log_message(self, *args: object) -> None:  # no line per request on stderr
        pass


@pytest.fixture
def unavailable_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AlwaysUnavailable)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/x"
    finally:
        server.shutdown()
        server.server_close()


def test_unset_means_the_production_policy(monkeypatch):
    monkeypatch.delenv(BACKOFF_SCALE_ENV, raising=False)
    assert default_policy() == RetryPolicy()


def test_a_scale_shortens_the_backoff_and_nothing_else(monkeypatch):
    monkeypatch.setenv(BACKOFF_SCALE_ENV, "0.01")
    policy, production = default_policy(), RetryPolicy()
    assert policy.base_delay == pytest.approx(production.base_delay / 100)
    assert policy.max_delay == pytest.approx(production.max_delay / 100)
    assert (policy.retries, policy.timeout, policy.retry_after_max, policy.margin, policy.min_attempt) == (
        production.retries, production.timeout, production.retry_after_max, production.margin,
        production.min_attempt)


@pytest.mark.parametrize("value", ["0", "-1", "fast", "nan", "inf"])
def test_a_scale_that_is_not_a_positive_number_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv(BACKOFF_SCALE_ENV, value)
    with pytest.raises(SlackConfigError, match=BACKOFF_SCALE_ENV):
        default_policy()


def test_send_webhook_waits_the_scaled_backoff(monkeypatch, unavailable_url):
    # Every wait at its ceiling: 15.5 s over five retries as deployed, 15.5 ms at 1/1000.
    monkeypatch.setattr(slack.random, "uniform", lambda low, high: high)
    monkeypatch.setenv(BACKOFF_SCALE_ENV, "0.001")
    started = time.monotonic()
    with pytest.raises(slack.SlackDeliveryError, match=r"HTTP 503.*after 6 attempts"):
        send_webhook(unavailable_url, SlackMessage(kind="test", text="hello", blocks=[]))
    assert time.monotonic() - started < 5.0
