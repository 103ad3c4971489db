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
