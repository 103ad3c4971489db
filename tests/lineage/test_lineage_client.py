"""Where the lineage client sends its queries, and what goes over the wire to Neptune."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from threadline_common import aws
from threadline_common.lineage import LineageGraphError, NeptuneCypher
from threadline_common.lineage.neptune import endpoint_url

NEPTUNE_HOST = "threadline.cluster-abc123.us-east-1.neptune.amazonaws.com"


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


@pytest.fixture
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_NEPTUNEDATA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws.client.cache_clear()
    yield
    aws.client.cache_clear()


def test_endpoint_comes_from_the_neptune_variables_unless_an_override_is_set() -> None:
    assert endpoint_url({"NEPTUNE_ENDPOINT": NEPTUNE_HOST, "NEPTUNE_PORT": "8182"}) == f"https://{NEPTUNE_HOST}:8182"
    assert endpoint_url({"NEPTUNE_ENDPOINT": NEPTUNE_HOST}) == f"https://{NEPTUNE_HOST}:8182"
    override = {"NEPTUNE_ENDPOINT": NEPTUNE_HOST, "AWS_ENDPOINT_URL_NEPTUNEDATA": "http://127.0.0.1:1"}
    assert endpoint_url(override) is None
    with pytest.raises(LineageGraphError, match="NEPTUNE_ENDPOINT is not set"):
        endpoint_url({})


def test_queries_go_to_neptune_signed_for_neptune_db(fake_credentials: None) -> None:
    runner = NeptuneCypher.from_environment({"NEPTUNE_ENDPOINT": NEPTUNE_HOST, "NEPTUNE_PORT": "8182"})
    sent: list[Any] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"},
                           _Body(b'{"results": [{"n": 1}]}'))

    runner._client.meta.events.register("before-send.neptunedata", answer)

    rows = runner.run("UNWIND $rows AS row RETURN row.n AS n", {"rows": [{"n": 1}]})

    assert rows == [{"n": 1}]
    [request] = sent
    assert request.method == "POST"
    assert request.url == f"https://{NEPTUNE_HOST}:8182/opencypher"
    assert "/us-east-1/neptune-db/aws4_request" in request.headers["Authorization"].decode()
    body = json.loads(request.body)
    assert body == {"query": "UNWIND $rows AS row RETURN row.n AS n", "parameters": '{"rows": [{"n": 1}]}'}
