"""The twin's in-process transport answers as moto's HTTP server does, through the same readiness gate."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from threadline.twin.in_process import InProcessTransport
from threadline.twin.moto_dispatch import MotoDispatch
from threadline.twin.readiness import STARTING, ReadinessGate
from threadline.twin.server import free_port

NO_RETRIES = Config(retries={"total_max_attempts": 1})


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, ReadinessGate]]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    gate = ReadinessGate(moto._server.app)
    moto._server.app = gate
    try:
        yield f"http://127.0.0.1:{port}", gate
    finally:
        moto.stop()


def _client(service: str, endpoint: str, transport: InProcessTransport | None = None,
            signer: ReadinessGate | None = None) -> Any:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    if transport is not None:
        session.events.register("before-send", transport)
    if signer is not None:
        session.events.register("request-created", signer.sign)
    return session.client(service, endpoint_url=endpoint, config=NO_RETRIES)


def test_what_one_path_creates_the_other_reads_alike_and_errors_are_the_same(server):
    endpoint, gate = server
    gate.open()
    transport = InProcessTransport(gate, endpoint)
    calls = []
    transport.app = lambda environ, start_response: calls.append(environ["PATH_INFO"]) or gate(environ, start_response)
    near, far = _client("sqs", endpoint, transport), _client("sqs", endpoint)

    made = near.create_queue(QueueName="in-process-made")["QueueUrl"]
    assert far.get_queue_url(QueueName="in-process-made")["QueueUrl"] == made
    far.send_message(QueueUrl=made, MessageBody="over http")
    assert [m["Body"] for m in near.receive_message(QueueUrl=made)["Messages"]] == ["over http"]
    assert calls, "the in-process client did not go through the transport"

    with pytest.raises(ClientError) as near_error:
        near.get_queue_url(QueueName="no-such-queue")
    with pytest.raises(ClientError) as far_error:
        far.get_queue_url(QueueName="no-such-queue")
    assert near_error.value.response["Error"] == far_error.value.response["Error"]
    assert near_error.value.response["ResponseMetadata"]["HTTPStatusCode"] == \
        far_error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    s3_near, s3_far = _client("s3", endpoint, transport), _client("s3", endpoint)
    s3_near.create_bucket(Bucket="in-process-bucket")
    s3_near.put_object(Bucket="in-process-bucket", Key="a.csv", Body=b"x,y\n1,2\n")
    assert s3_far.get_object(Bucket="in-process-bucket", Key="a.csv")["Body"].read() == b"x,y\n1,2\n"
    assert s3_near.get_object(Bucket="in-process-bucket", Key="a.csv")["Body"].read() == b"x,y\n1,2\n"


def test_until_the_gate_opens_only_signed_in_process_calls_pass():
    def moto(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0")])
        return [b'{"QueueUrls": ["http://queue"]}']

    gate = ReadinessGate(moto)
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there: only the transport can answer
    transport = InProcessTransport(gate, endpoint)
    unsigned, signed = _client("sqs", endpoint, transport), _client("sqs", endpoint, transport, signer=gate)

    with pytest.raises(ClientError) as refused:
        unsigned.list_queues()
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert refused.value.response["Error"]["Message"] == STARTING
    assert signed.list_queues()["QueueUrls"] == ["http://queue"]

    gate.open()
    assert unsigned.list_queues()["QueueUrls"] == ["http://queue"]


def test_an_error_inside_moto_answers_500_as_the_server_does_and_other_ports_go_by_http():
    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise AttributeError("moto raced itself")

    endpoint = f"http://127.0.0.1:{free_port()}"
    transport = InProcessTransport(broken, endpoint)
    with pytest.raises(ClientError) as failed:
        _client("sqs", endpoint, transport).list_queues()
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500

    class Request:
        method, headers, body = "GET", {}, b""

        def __init__(self, url: str) -> None:
            self.url = url

    # moto's interpreter names the twin `localhost`; the local stand-ins listen on other ports.
    assert transport(Request(endpoint.replace("127.0.0.1", "localhost"))).status_code == 500  # type: ignore[arg-type,union-attr]
    assert transport(Request("http://127.0.0.1:1/elsewhere")) is None  # type: ignore[arg-type]


def _direct_transport(endpoint: str, gate: ReadinessGate) -> tuple[InProcessTransport, list[str]]:
    """A transport that answers from moto's handlers, counting what still reaches the WSGI app."""
    through_wsgi: list[str] = []
    transport = InProcessTransport(gate, endpoint, MotoDispatch(gate.app), gate.admits)
    transport.app = lambda environ, start_response: through_wsgi.append(environ["PATH_INFO"]) or gate(
        environ, start_response)
    return transport, through_wsgi


def test_calls_routed_to_moto_directly_answer_as_the_server_does(server):
    endpoint, gate = server
    gate.open()
    transport, through_wsgi = _direct_transport(endpoint, gate)

    sqs_near, sqs_far = _client("sqs", endpoint, transport), _client("sqs", endpoint)
    made = sqs_near.create_queue(QueueName="direct-made", Attributes={"VisibilityTimeout": "7"})["QueueUrl"]
    assert sqs_far.get_queue_url(QueueName="direct-made")["QueueUrl"] == made
    for client in (sqs_near, sqs_far):
        assert client.get_queue_attributes(QueueUrl=made, AttributeNames=["VisibilityTimeout"])["Attributes"] == \
            {"VisibilityTimeout": "7"}
    for client in (sqs_near, sqs_far):
        with pytest.raises(ClientError) as missing:
            client.get_queue_url(QueueName="no-such-queue")
        assert missing.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
        assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    s3_near, s3_far = _client("s3", endpoint, transport), _client("s3", endpoint)
    s3_near.create_bucket(Bucket="direct-bucket")
    payload = bytes(range(256)) * 64  # every byte value: the body is passed as bytes, not text
    s3_near.put_object(Bucket="direct-bucket", Key="dir/a b+c.bin", Body=payload, ContentType="application/x-test")
    for client in (s3_near, s3_far):
        got = client.get_object(Bucket="direct-bucket", Key="dir/a b+c.bin")
        assert got["Body"].read() == payload
        assert got["ContentType"] == "application/x-test"
        assert client.head_object(Bucket="direct-bucket", Key="dir/a b+c.bin")["ContentLength"] == len(payload)
        listed = client.list_objects_v2(Bucket="direct-bucket", Prefix="dir/")["Contents"]
        assert [item["Key"] for item in listed] == ["dir/a b+c.bin"]
        with pytest.raises(ClientError) as absent:
            client.get_object(Bucket="direct-bucket", Key="absent")
        assert absent.value.response["Error"]["Code"] == "NoSuchKey"
        assert absent.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    ddb_near, ddb_far = _client("dynamodb", endpoint, transport), _client("dynamodb", endpoint)
    ddb_near.create_table(TableName="direct-table", BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    ddb_far.put_item(TableName="direct-table", Item={"id": {"S": "r1"}, "n": {"N": "3"}})
    assert ddb_near.get_item(TableName="direct-table", Key={"id": {"S": "r1"}})["Item"] == \
        {"id": {"S": "r1"}, "n": {"N": "3"}}

    assert through_wsgi == [], "a call routable to moto's handler went through the WSGI app"


def test_with_direct_routing_the_gate_still_refuses_other_calls_until_it_opens():
    def moto(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0")])
        return [b'{"QueueUrls": ["http://queue"]}']

    gate = ReadinessGate(moto)
    endpoint = f"http://127.0.0.1:{free_port()}"
    routed: list[str] = []

    class Dispatch:
        def answer(self, request: Any, url: Any, body: bytes) -> None:
            routed.append(url.path)
            return None  # not routable: the gate and the WSGI app answer

    transport = InProcessTransport(gate, endpoint, Dispatch(), gate.admits)  # type: ignore[arg-type]
    unsigned, signed = _client("sqs", endpoint, transport), _client("sqs", endpoint, transport, signer=gate)
    with pytest.raises(ClientError) as refused:
        unsigned.list_queues()
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert routed == [], "a call the gate refuses reached moto's handlers"
    assert signed.list_queues()["QueueUrls"] == ["http://queue"]
    assert routed == ["/"]
