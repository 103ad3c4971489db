"""Fixtures for the lineage tests: the embedded graph, the Neptune stand-in over it, the real client code, and
the lineage function with the context Lambda passes it."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from threadline_common import aws
from threadline_common.lineage import NeptuneCypher

from threadline.twin.graph_store import GraphStore
from threadline.twin.neptune_standin import NeptuneStandin

REPO = Path(__file__).resolve().parents[2]


def load_event(name: str) -> Any:
    return json.loads((REPO / "events" / name).read_text(encoding="utf-8"))


@pytest.fixture
def sample_event() -> Callable[[str], Any]:
    """Loads a sample event from events/ by file name."""
    return load_event


@pytest.fixture
def graph(tmp_path: Path) -> Iterator[GraphStore]:
    store = GraphStore(tmp_path / "lineage" / "graph.lbug")
    yield store
    store.close()


@pytest.fixture
def standin(graph: GraphStore) -> Iterator[NeptuneStandin]:
    server = NeptuneStandin(graph).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A local S3 (moto) for what the lineage function reads about a run's outputs."""
    from moto.server import ThreadedMotoServer

    from threadline.twin.server import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def neptune_env(standin: NeptuneStandin, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[NeptuneStandin]:
    """The environment the twin gives the lineage function: fake credentials and the stand-in's endpoint."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "NEPTUNE_ENDPOINT", "NEPTUNE_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    urllib.request.urlopen(urllib.request.Request(f"{s3_endpoint}/moto-api/reset", method="POST"), timeout=10).read()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_NEPTUNEDATA", standin.url)
    monkeypatch.setenv("PIPELINE_NAME", "threadline")
    aws.client.cache_clear()
    yield standin
    aws.client.cache_clear()


@pytest.fixture
def runner(neptune_env: NeptuneStandin) -> NeptuneCypher:
    """The production openCypher client (boto3 neptunedata), pointed at the stand-in."""
    return NeptuneCypher.from_environment()


class InvocationContext(LambdaContext):
    """What Lambda's Python runtime passes a handler, as Powertools types it: the function's names, the
    request id, and the time left of the template's 30 s timeout."""

    def __init__(self, function_name: str = "threadline-RecordLineageFunction", timeout_ms: int = 30_000) -> None:
        request_id = str(uuid.uuid4())
        self._function_name = function_name
        self._function_version = "$LATEST"
        self._invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self._memory_limit_in_mb = 256
        self._aws_request_id = request_id
        self._log_group_name = f"/aws/lambda/{function_name}"
        self._log_stream_name = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{request_id.replace('-', '')}"
        self._ends_at = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]  # a staticmethod in the stub
        return max(0, round((self._ends_at - time.monotonic()) * 1000))


@pytest.fixture
def lambda_context() -> InvocationContext:
    """The context of one invocation of the lineage function."""
    return InvocationContext()


@pytest.fixture
def record_lineage() -> ModuleType:
    """functions/record_lineage/app.py under a module name of its own (every function's file is app.py)."""
    spec = importlib.util.spec_from_file_location(
        "threadline_function_record_lineage", REPO / "functions" / "record_lineage" / "app.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
