"""Lambda's SQS event source mappings, done by the twin: poll the queue, invoke, delete or leave.

Lambda polls an SQS queue for each mapping, hands the function a batch of
messages in Lambda's SQS event shape and then deletes the messages it processed.
With ReportBatchItemFailures the function answers `batchItemFailures` and only
those messages stay; a function error keeps the whole batch. A message that
stays becomes visible again after the visibility timeout, and SQS moves it to
the dead-letter queue once it has been received `maxReceiveCount` times (moto
does that part on receive). moto itself would invoke the function inside
SendMessage instead (see moto_fixes.fix_sqs_event_source_inline_delivery).

Everything goes through the AWS APIs of the twin: ListEventSourceMappings,
ReceiveMessage, Invoke, DeleteMessageBatch.

Said out loud: the queue's visibility timeout is scaled by `visibility_scale`
(TwinConfig.sqs_visibility_scale, 1/30 by default: the template's 180 s become
6 s; SQS counts whole seconds),
so a failed message comes back seconds rather than minutes later, and five
receives (the redrive policy) span about as long as a run of the twin takes.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

VISIBILITY_SCALE = 1 / 30
WAIT_SECONDS = 1  # long polling, as Lambda's pollers do


@dataclass
class Mapping:
    uuid: str
    function_arn: str
    queue_arn: str
    queue_url: str
    batch_size: int
    report_item_failures: bool
    visibility_timeout: int


@dataclass
class Delivery:
    """One invocation of a function with a batch from its queue."""

    mapping: str
    message_ids: list[str]
    failed_ids: list[str]
    function_error: str | None
    at: float
    bodies: dict[str, str] = field(default_factory=dict)


@dataclass
class EventSourcePoller:
    session: Any
    endpoint_url: str
    region: str = "us-east-1"
    visibility_scale: float = VISIBILITY_SCALE
    mappings: list[Mapping] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _clients: dict[str, Any] = field(default_factory=dict)
    _long_polling: set[threading.Thread] = field(default_factory=set)

    def client(self, service: str) -> Any:
        """One client per service for every poller (boto3 clients are thread-safe; each costs tens of ms)."""
        with self._lock:
            if service not in self._clients:
                config = Config(read_timeout=300, retries={"mode": "standard"})
                self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url,
                                                             region_name=self.region, config=config)
            return self._clients[service]

    def start(self) -> EventSourcePoller:
        """Find the SQS mappings the template created and start one poller thread for each."""
        lam, sqs = self.client("lambda"), self.client("sqs")
        for item in lam.list_event_source_mappings().get("EventSourceMappings", []):
            arn = item.get("EventSourceArn", "")
            if ":sqs:" not in arn or item.get("State", "Enabled") not in ("Enabled", "Creating", "Enabling"):
                continue
            name = arn.rsplit(":", 1)[-1]
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            timeout = int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
                          ["Attributes"].get("VisibilityTimeout", 30))
            self.mappings.append(Mapping(
                uuid=item["UUID"], function_arn=item["FunctionArn"], queue_arn=arn, queue_url=url,
                batch_size=int(item.get("BatchSize") or 10),
                report_item_failures="ReportBatchItemFailures" in (item.get("FunctionResponseTypes") or []),
                visibility_timeout=max(1, math.ceil(timeout * self.visibility_scale - 1e-9)),
            ))
        for mapping in self.mappings:
            thread = threading.Thread(target=self._poll, args=(mapping,), name=f"sqs-poller-{mapping.uuid[:8]}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop polling; a delivery under way is waited for, a long poll is not.

        A poller waiting in ReceiveMessage would hold the stop for up to
        WAIT_SECONDS. It is left to end on its own: what it receives after the
        stop is not delivered and, never deleted, comes back after its
        visibility timeout, as SQS gives back any message that was received and
        not handled.
        """
        self._stop.set()
        for thread in self._threads:
            with self._lock:
                waiting = thread in self._long_polling
            thread.join(timeout=0.05 if waiting else WAIT_SECONDS + 5)
        self._threads.clear()

    # -- observing ----------------------------------------------------------------

    def backlog(self, queue_arn: str | None = None) -> int:
        """Messages still to deliver (visible or in flight) on the mapped queues, or on one of them."""
        sqs = self.client("sqs")
        total = 0
        for mapping in self.mappings:
            if queue_arn is not None and mapping.queue_arn != queue_arn:
                continue
            attributes = sqs.get_queue_attributes(
                QueueUrl=mapping.queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            total += (int(attributes["ApproximateNumberOfMessages"])
                      + int(attributes["ApproximateNumberOfMessagesNotVisible"]))
        return total

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every mapped queue is empty; False on timeout.

        A received message stays in the queue (not visible) until its function
        returned and the poller deleted it, so an empty queue means every
        message was handled (or moved to the dead-letter queue).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.backlog() == 0:
                return True
            time.sleep(0.05)
        return False

    def delivered_ids(self) -> Counter[str]:
        """How many times each message id was handed to a function and not failed by it."""
        with self._lock:
            return Counter(i for d in self.deliveries for i in d.message_ids
                           if d.function_error is None and i not in d.failed_ids)

    # -- polling ------------------------------------------------------------------

    def _poll(self, mapping: Mapping) -> None:
        sqs, lam = self.client("sqs"), self.client("lambda")
        while not self._stop.is_set():
            try:
                self._deliver_once(mapping, sqs, lam)
            except (ClientError, BotoCoreError):
                if self._stop.is_set():
                    return
                time.sleep(0.2)  # the twin is stopping, or moto hiccuped: poll again shortly

    def _deliver_once(self, mapping: Mapping, sqs: Any, lam: Any) -> None:
        received = self._receive(mapping, sqs)
        if not received or self._stop.is_set():
            return
        event = {"Records": [self._record(mapping, message) for message in received]}
        response = lam.invoke(FunctionName=mapping.function_arn, InvocationType="RequestResponse",
                              Payload=json.dumps(event).encode())
        payload = response["Payload"].read()
        function_error = response.get("FunctionError")
        failed = [m["MessageId"] for m in received] if function_error else self._failed_ids(mapping, payload, received)
        with self._lock:
            self.deliveries.append(Delivery(mapping.uuid, [m["MessageId"] for m in received], failed,
                                            function_error, time.time(),
                                            {m["MessageId"]: m["Body"] for m in received}))
        done = [m for m in received if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(QueueUrl=mapping.queue_url, Entries=[
                {"Id": str(index), "ReceiptHandle": m["ReceiptHandle"]} for index, m in enumerate(done)])

    def _receive(self, mapping: Mapping, sqs: Any) -> list[dict[str, Any]]:
        thread = threading.current_thread()
        with self._lock:
            self._long_polling.add(thread)
        try:
            return list(sqs.receive_message(
                QueueUrl=mapping.queue_url, MaxNumberOfMessages=min(mapping.batch_size, 10),
                WaitTimeSeconds=WAIT_SECONDS, VisibilityTimeout=mapping.visibility_timeout,
                AttributeNames=["All"], MessageAttributeNames=["All"],
            ).get("Messages", []))
        finally:
            with self._lock:
                self._long_polling.discard(thread)

    @staticmethod
    def _failed_ids(mapping: Mapping, payload: bytes, received: list[dict[str, Any]]) -> list[str]:
        """Lambda's reading of a ReportBatchItemFailures answer: a malformed answer fails the batch."""
        if not mapping.report_item_failures:
            return []
        everything = [m["MessageId"] for m in received]
        try:
            answer = json.loads(payload or b"null")
        except json.JSONDecodeError:
            return everything
        if not isinstance(answer, dict) or not answer.get("batchItemFailures"):
            return []
        ids = {m["MessageId"] for m in received}
        failed: list[str] = []
        for item in answer["batchItemFailures"]:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not isinstance(identifier, str) or identifier not in ids:  # the ids are strings
                return everything
            failed.append(identifier)
        return failed

    def _record(self, mapping: Mapping, message: dict[str, Any]) -> dict[str, Any]:
        attributes = dict(message.get("Attributes", {}))
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": attributes,
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": mapping.queue_arn,
            "awsRegion": self.region,
        }
