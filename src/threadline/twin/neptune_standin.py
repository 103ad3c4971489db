"""A local stand-in for Neptune's openCypher HTTP API, served over the twin's GraphStore.

It speaks what boto3's `neptunedata` client sends for ExecuteOpenCypherQuery
(rest-json): `POST /opencypher` with the JSON body `{"query": ..., "parameters":
"<JSON object as a string>"}`, answered by `{"results": [...]}`. Errors come back
as Neptune sends them, `{"code": "<ExceptionName>", "requestId": ..,
"detailedMessage": ..}` with the exception's HTTP status, so boto3 raises the
named exception (`client.exceptions.MalformedQueryException`, ...). Like
Neptune's own endpoint it also takes form-encoded POSTs and GET with a query
string (curl), and answers `GET /status`. Requests are not authenticated (boto3
still signs them).

`set_down(True)` makes it answer 503 (or drop connections) for tests of
"Neptune is down".
"""

from __future__ import annotations

import json
import threading
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .graph_store import GraphQueryError, GraphStore
from .local_http import serve, shut

OPENCYPHER_PATH = "/opencypher"
STATUS_PATH = "/status"

# GraphQueryError.kind -> (Neptune exception, HTTP status)
_ERRORS: dict[str, tuple[str, int]] = {
    "parser": ("MalformedQueryException", 400),
    "binder": ("MalformedQueryException", 400),
    "catalog": ("MalformedQueryException", 400),
    "parameter": ("InvalidParameterException", 400),
    "interrupted": ("CancelledByUserException", 500),
}
_RUNTIME_ERROR = ("FailureByQueryException", 500)
_CONSTRAINT_ERROR = ("ConstraintViolationException", 400)

DOWN_UNAVAILABLE = "unavailable"  # answer 503
DOWN_RESET = "reset"  # close the connection without an answer


class NeptuneStandin:
    """A threaded HTTP server on 127.0.0.1 (port 0 picks a free port).

    Serves an open GraphStore, or the graph at a path, which it then opens on
    start() and closes on stop().
    """

    def __init__(self, store: GraphStore | str | Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._graph_path = None if isinstance(store, GraphStore) else Path(store)
        self.store: GraphStore | None = store if isinstance(store, GraphStore) else None
        self._address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._down: str | None = None
        self._lock = threading.Lock()
        self.queries_served = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def host(self) -> str:
        return str(self._bound_address()[0])

    @property
    def port(self) -> int:
        return int(self._bound_address()[1])

    def _bound_address(self) -> tuple[Any, ...]:
        if self._server is None:
            raise RuntimeError("the Neptune stand-in is not started")
        return tuple(self._server.server_address)

    def start(self) -> NeptuneStandin:
        if self._server is not None:
            return self
        if self._graph_path is not None:
            self.store = GraphStore(self._graph_path)
        self._server, self._thread = serve(self._address, _Handler, self, "neptune-standin")
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        shut(self._server, self._thread)
        self._server = None
        self._thread = None
        if self._graph_path is not None and self.store is not None:
            self.store.close()
            self.store = None

    def set_down(self, down: bool = True, *, mode: str = DOWN_UNAVAILABLE) -> None:
        """Make every request fail (503, or a dropped connection with mode="reset") until set_down(False)."""
        if mode not in (DOWN_UNAVAILABLE, DOWN_RESET):
            raise ValueError(f"unknown mode {mode!r}")
        self._down = mode if down else None

    @property
    def down(self) -> str | None:
        return self._down

    def execute(self, query: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        if self.store is None:
            raise RuntimeError("the Neptune stand-in has no graph open")
        rows = self.store.run(query, parameters)
        with self._lock:
            self.queries_served += 1
        ids: dict[str, str] = {}
        for row in rows:
            _collect_ids(list(row.values()), ids)
        return [{column: _to_neptune(value, ids) for column, value in row.items()} for row in rows]

    def __enter__(self) -> NeptuneStandin:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _RequestError(Exception):
    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


class _Handler(BaseHTTPRequestHandler):
    standin: NeptuneStandin
    protocol_version = "HTTP/1.1"  # keep-alive, as boto3 pools connections
    disable_nagle_algorithm = True  # else every small response waits ~40 ms for a delayed ACK
    server_version = "threadline-neptune-standin"

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path.rstrip("/").lower() == STATUS_PATH and not self._refused():
            self._send(200, {"status": "healthy", "role": "writer"})
            return
        self._serve(parse_qs(parts.query))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            if self.headers.get_content_type() == "application/x-www-form-urlencoded":
                fields: dict[str, Any] = parse_qs(body.decode("utf-8"))
            else:
                fields = json.loads(body or b"{}")
                if not isinstance(fields, dict):
                    raise ValueError("the body is not a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            if not self._refused():
                self._send_error(_RequestError("BadRequestException", 400, f"unreadable request body: {exc}"))
            return
        self._serve(fields)

    def _serve(self, fields: dict[str, Any]) -> None:
        if self._refused():
            return
        if urlsplit(self.path).path.rstrip("/").lower() != OPENCYPHER_PATH:
            self._send_error(_RequestError("UnsupportedOperationException", 400,
                                           f"the stand-in serves only {OPENCYPHER_PATH}, not {self.path}"))
            return
        try:
            query = _field(fields, "query")
            if not query:
                raise _RequestError("MissingParameterException", 400, "the request has no 'query'")
            parameters = _parameters(_field(fields, "parameters"))
            try:
                results = self.standin.execute(query, parameters)
            except GraphQueryError as exc:
                raise _graph_error(exc) from exc
            except RuntimeError as exc:  # no graph open
                raise _RequestError("ServiceUnavailableException", 503, str(exc)) from exc
        except _RequestError as exc:
            self._send_error(exc)
            return
        self._send(200, {"results": results})

    def _refused(self) -> bool:
        """Answer as a Neptune that is down, when the stand-in is set down."""
        mode = self.standin.down
        if mode is None:
            return False
        if mode == DOWN_RESET:
            self.close_connection = True
            return True
        self._send_error(_RequestError("ServiceUnavailableException", 503, "the lineage graph is not available"))
        return True

    def _send_error(self, error: _RequestError) -> None:
        request_id = str(uuid.uuid4())
        self._send(error.status, {
            "requestId": request_id,
            "code": error.code,
            "detailedMessage": error.message,
        }, request_id)

    def _send(self, status: int, payload: dict[str, Any], request_id: str | None = None) -> None:
        body = json.dumps(payload, default=str).encode("utf-8")
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", request_id or str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        """Quiet: the twin's tests would otherwise print one line per query."""


def _field(fields: dict[str, Any], name: str) -> Any:
    value = fields.get(name)
    if isinstance(value, list):  # parse_qs gives lists
        return value[0] if value else None
    return value


def _parameters(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _RequestError("InvalidParameterException", 400, f"'parameters' is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise _RequestError("InvalidParameterException", 400, "'parameters' must be a JSON object")
    return raw


def _graph_error(exc: GraphQueryError) -> _RequestError:
    constraint_words = ("duplicate", "primary key", "constraint")
    if exc.kind == "runtime" and any(word in exc.message.lower() for word in constraint_words):
        code, status = _CONSTRAINT_ERROR
    else:
        code, status = _ERRORS.get(exc.kind, _RUNTIME_ERROR)
    return _RequestError(code, status, str(exc))


def _collect_ids(value: Any, ids: dict[str, str]) -> None:
    """The `~id` of every node in an answer, by ladybug's internal id (for the ends of its relationships)."""
    if isinstance(value, dict) and "_LABEL" in value and "_ID" in value and "_SRC" not in value:
        if value.get("~id") is not None:
            ids[_entity_id(value["_ID"])] = str(value["~id"])
    elif isinstance(value, list):
        for item in value:
            _collect_ids(item, ids)
    elif isinstance(value, dict):
        _collect_ids(list(value.values()), ids)


def _to_neptune(value: Any, ids: dict[str, str]) -> Any:
    """Nodes and relationships as Neptune's openCypher JSON shows them; other values unchanged.

    A node's `~id` is its own (the primary key); a relationship has no id of its own
    here, so it gets ladybug's internal one, and its ends the `~id` of nodes that are
    in the same answer.
    """
    if isinstance(value, dict) and "_LABEL" in value and "_ID" in value:
        properties = {k: _to_neptune(v, ids) for k, v in value.items()
                      if not k.startswith(("_", "~")) and v is not None}
        internal = _entity_id(value["_ID"])
        if "_SRC" in value:
            start, end = _entity_id(value["_SRC"]), _entity_id(value["_DST"])
            return {"~id": internal, "~entityType": "relationship",
                    "~start": ids.get(start, start), "~end": ids.get(end, end),
                    "~type": value["_LABEL"], "~properties": properties}
        return {"~id": ids.get(internal, internal), "~entityType": "node",
                "~labels": [value["_LABEL"]], "~properties": properties}
    if isinstance(value, list):
        return [_to_neptune(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _to_neptune(v, ids) for k, v in value.items()}
    return value


def _entity_id(internal: Any) -> str:
    if isinstance(internal, dict):
        return f"{internal.get('table')}:{internal.get('offset')}"
    return str(internal)
