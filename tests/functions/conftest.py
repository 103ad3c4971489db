"""Fixtures for the Lambda handler tests: handlers loaded from functions/<name>/app.py, a Lambda context,
fake AWS, a fake Slack."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"


def load_function(name: str) -> ModuleType:
    """functions/<name>/app.py as module `threadline_function_<name>`: three app.py files must not share a name."""
    module_name = f"threadline_function_{name}"
    spec = importlib.util.spec_from_file_location(module_name, REPO / "functions" / name / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


@pytest.fixture
def sample_event() -> Callable[[str], Any]:
    """Loads a sample event from events/ by file name."""
    return load_event


class FunctionContext(LambdaContext):
    """A Lambda context as the Python runtime passes one: the Powertools `LambdaContext` shape, with a clock.

    `get_remaining_time_in_millis()` counts down from `remaining_ms` (the
    function's timeout, 30 s in the template) as the invocation runs.
    """

    def __init__(self, function_name: str = "threadline-test-function", remaining_ms: int = 30_000) -> None:
        self._function_name = function_name
        self._function_version = "$LATEST"
        self._invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self._memory_limit_in_mb = 128
        self._aws_request_id = str(uuid.uuid4())
        self._log_group_name = f"/aws/lambda/{function_name}"
        self._log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self._deadline = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]  # a staticmethod in the stub
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@pytest.fixture
def make_context() -> Callable[..., FunctionContext]:
    """Builds a Lambda context: `make_context(remaining_ms=2500)` for an invocation with 2.5 s left."""
    return FunctionContext


@pytest.fixture
def lambda_context() -> FunctionContext:
    """The context of one invocation with the template's 30 s timeout ahead of it."""
    return FunctionContext()


@pytest.fixture
def start_run() -> ModuleType:
    return load_function("start_run")


@pytest.fixture
def notify_slack() -> ModuleType:
    return load_function("notify_slack")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials, us-east-1, no endpoint overrides, and no boto3 client kept from another test."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_NEPTUNEDATA", "AWS_ENDPOINT_URL_SFN",
                 "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    from aws_lambda_powertools.utilities import parameters
    from threadline_common import aws

    aws.client.cache_clear()
    parameters.clear_caches()  # the Slack secret, and the Secrets Manager client that read it
    yield
    aws.client.cache_clear()
    parameters.clear_caches()


@dataclass
class FakeSlack:
    """An incoming-webhook endpoint on 127.0.0.1 that records what it is sent."""

    url: str
    status: int = 200
    body: str = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    state = FakeSlack(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.requests.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                   "json": json.loads(raw)})
            body = state.body.encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/secret-token"
    yield state
    server.shutdown()
    server.server_close()
