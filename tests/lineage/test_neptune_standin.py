"""The Neptune stand-in speaks ExecuteOpenCypherQuery as boto3's neptunedata client expects."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError


@pytest.fixture
def client(neptune_env: Any) -> Any:
    return boto3.client("neptunedata", config=Config(retries={"total_max_attempts": 1}))


def post(url: str, body: bytes, content_type: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_query_with_parameters_returns_rows(client: Any, neptune_env: Any) -> None:
    client.execute_open_cypher_query(
        openCypherQuery="UNWIND $rows AS row MERGE (r:Run {`~id`: row.id}) SET r.run_id = row.name",
        parameters=json.dumps({"rows": [{"id": "Run:a", "name": "a"}, {"id": "Run:b", "name": "b"}]}),
    )

    response = client.execute_open_cypher_query(
        openCypherQuery="MATCH (r:Run) RETURN r.run_id AS name ORDER BY name")

    assert response["results"] == [{"name": "a"}, {"name": "b"}]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert neptune_env.queries_served == 2


def test_nodes_and_relationships_come_back_in_neptune_form(client: Any) -> None:
    client.execute_open_cypher_query(openCypherQuery=(
        "MERGE (r:Run {`~id`: 'Run:r1'}) SET r.run_id = 'r1', r.status = 'RUNNING' "
        "MERGE (p:StepAttempt {`~id`: 'StepAttempt:a1'}) MERGE (p)-[:PART_OF]->(r)"
    ))

    [row] = client.execute_open_cypher_query(openCypherQuery="MATCH (p)-[e:PART_OF]->(r:Run) RETURN r, e, p")["results"]

    assert row["r"]["~id"] == "Run:r1" and row["p"]["~id"] == "StepAttempt:a1"  # the node's own `~id`
    assert row["r"]["~entityType"] == "node" and row["r"]["~labels"] == ["Run"]
    assert row["r"]["~properties"] == {"run_id": "r1", "status": "RUNNING"}  # nulls are absent, as in Neptune
    assert row["e"]["~entityType"] == "relationship" and row["e"]["~type"] == "PART_OF"
    assert (row["e"]["~start"], row["e"]["~end"]) == (row["p"]["~id"], row["r"]["~id"])


@pytest.mark.parametrize(
    "query",
    ["MATCH (n RETURN n", "MATCH (n:NoSuchLabel) RETURN n", "RETURN toInteger('1')"],
)
def test_bad_queries_raise_malformed_query_exception(client: Any, query: str) -> None:
    with pytest.raises(client.exceptions.MalformedQueryException) as raised:
        client.execute_open_cypher_query(openCypherQuery=query)

    response = raised.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["code"] == "MalformedQueryException"
    assert response["detailedMessage"] and response["requestId"]


def test_parameters_that_are_not_a_json_object_raise_invalid_parameter(client: Any) -> None:
    for parameters in ("{not json", "[1, 2]"):
        with pytest.raises(client.exceptions.InvalidParameterException):
            client.execute_open_cypher_query(openCypherQuery="RETURN 1", parameters=parameters)


def test_missing_query_and_unknown_paths_are_refused(neptune_env: Any) -> None:
    status, body = post(neptune_env.url + "/opencypher", b"{}", "application/json")
    assert (status, body["code"]) == (400, "MissingParameterException")

    status, body = post(neptune_env.url + "/gremlin", b'{"gremlin": "g.V()"}', "application/json")
    assert (status, body["code"]) == (400, "UnsupportedOperationException")


def test_curl_style_form_post_and_get_work_like_neptune(neptune_env: Any) -> None:
    form = urllib.parse.urlencode({"query": "RETURN $x AS x", "parameters": json.dumps({"x": 7})}).encode()
    assert post(neptune_env.url + "/openCypher", form, "application/x-www-form-urlencoded") == (
        200, {"results": [{"x": 7}]})

    query = urllib.parse.urlencode({"query": "RETURN 'hi' AS greeting"})
    with urllib.request.urlopen(f"{neptune_env.url}/openCypher?{query}", timeout=5) as response:
        assert json.loads(response.read()) == {"results": [{"greeting": "hi"}]}
    with urllib.request.urlopen(f"{neptune_env.url}/status", timeout=5) as response:
        assert json.loads(response.read())["status"] == "healthy"


def test_down_answers_503_or_drops_the_connection(neptune_env: Any, client: Any) -> None:
    neptune_env.set_down(True)
    with pytest.raises(ClientError) as raised:
        client.execute_open_cypher_query(openCypherQuery="RETURN 1")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503

    neptune_env.set_down(True, mode="reset")
    with pytest.raises(ConnectionClosedError):
        client.execute_open_cypher_query(openCypherQuery="RETURN 1")

    neptune_env.set_down(False)
    assert client.execute_open_cypher_query(openCypherQuery="RETURN 1 AS one")["results"] == [{"one": 1}]


def test_small_requests_do_not_stall_on_delayed_acks(client: Any) -> None:
    client.execute_open_cypher_query(openCypherQuery="RETURN 1")  # open the pooled connection
    durations = []
    for _ in range(15):
        started = time.perf_counter()
        client.execute_open_cypher_query(openCypherQuery="RETURN 1 AS one")
        durations.append(time.perf_counter() - started)

    # With Nagle's algorithm on, every keep-alive request waits ~40 ms for a delayed ACK
    # (measured: fastest of 15 at 44 ms; without it, 2 ms). The fastest request is
    # the check, since a busy machine only ever makes requests slower.
    assert min(durations) < 0.035


def test_standin_given_a_path_opens_the_graph_on_start_and_closes_it_on_stop(tmp_path: Any) -> None:
    from threadline.twin.graph_store import GraphStore
    from threadline.twin.neptune_standin import NeptuneStandin

    path = tmp_path / "graph.lbdb"
    with NeptuneStandin(path) as standin:
        assert standin.url == f"http://127.0.0.1:{standin.port}"
        status, _ = post(standin.url + "/opencypher",
                         b'{"query": "MERGE (r:Run {`~id`: \\"Run:tl\\"}) SET r.run_id = \\"tl\\""}',
                         "application/json")
        assert status == 200
    assert standin.store is None

    with GraphStore(path, read_only=True) as graph:  # closed by stop(): another open sees the write
        assert graph.run("MATCH (r:Run) RETURN r.run_id AS name") == [{"name": "tl"}]
