"""Fixtures for the Lambda handler tests: handlers loaded from functions/<name>/app.py, fake AWS, a fake Slack."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
LAYER = REPO / "layers" / "common"
EVENTS = REPO / "events"

if str(LAYER) not in sys.path:
    sys.path.insert(0, str(LAYER))


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
    from threadline_common import aws, slack

    aws.client.cache_clear()
    slack.clear_cache()
    yield
    aws.client.cache_clear()
    slack.clear_cache()


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
        def do_POST(self) -> None:  # noqa: N802
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
