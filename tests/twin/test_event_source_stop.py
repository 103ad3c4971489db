"""Stopping the event-source pollers: a long poll is not waited for; what it brings after the stop is not delivered."""

from __future__ import annotations

import threading
from typing import Any

from threadline.twin.event_sources import WAIT_SECONDS, EventSourcePoller

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:lineage"
QUEUE_URL = "http://127.0.0.1:1/123456789012/lineage"
MESSAGE = {"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": "{}", "Attributes": {}, "MessageAttributes": {},
           "MD5OfBody": "", "EventSource": "aws:sqs"}


class FakeSqs:
    """ReceiveMessage blocks (as a long poll does) until the test releases it, then hands back one message."""

    def __init__(self) -> None:
        self.polling = threading.Event()
        self.release = threading.Event()
        self.deleted: list[str] = []

    def get_queue_url(self, **kwargs: Any) -> dict[str, str]:
        return {"QueueUrl": QUEUE_URL}

    def get_queue_attributes(self, **kwargs: Any) -> dict[str, Any]:
        return {"Attributes": {"VisibilityTimeout": "180"}}

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["WaitTimeSeconds"] == WAIT_SECONDS
        self.polling.set()
        self.release.wait(timeout=30)
        return {"Messages": [MESSAGE]}

    def delete_message_batch(self, **kwargs: Any) -> None:
        self.deleted += [entry["ReceiptHandle"] for entry in kwargs["Entries"]]


class FakeLambda:
    def __init__(self) -> None:
        self.invoked: list[str] = []

    def list_event_source_mappings(self) -> dict[str, Any]:
        return {"EventSourceMappings": [{"UUID": "0123456789abcdef", "FunctionArn": "arn:fn",
                                         "EventSourceArn": QUEUE_ARN, "State": "Enabled", "BatchSize": 10}]}

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.invoked.append(kwargs["FunctionName"])
        raise AssertionError("a message received after the stop was delivered")


class FakeSession:
    def __init__(self) -> None:
        self.clients = {"sqs": FakeSqs(), "lambda": FakeLambda()}

    def client(self, service: str, **kwargs: Any) -> Any:
        return self.clients[service]


def test_stop_does_not_wait_for_a_long_poll_and_a_message_it_brings_later_is_left_in_the_queue():
    session = FakeSession()
    sqs, lam = session.clients["sqs"], session.clients["lambda"]
    poller = EventSourcePoller(session, "http://127.0.0.1:1").start()
    assert sqs.polling.wait(timeout=30), "the poller never polled"
    poller.stop()
    # The long poll is still under way (the fake holds it until released): stop did not wait for it.
    assert not sqs.release.is_set()
    (thread,) = [t for t in threading.enumerate() if t.name.startswith("sqs-poller-0123")]
    assert thread.is_alive()

    sqs.release.set()  # the poll ends, bringing a message after the stop
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert lam.invoked == [] and sqs.deleted == []  # not delivered, not deleted: SQS gives it back later
    assert poller.deliveries == []
