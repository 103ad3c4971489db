"""The twin's own signed calls answered by moto's handlers directly, without WSGI or Flask.

moto's server picks a service from the request's signature, then hands the
request to a Flask app made for that service, whose routes are the service's
`url_paths`. Going through that for a call made inside the twin's own process
costs a WSGI environ, a Flask request and app context, and, on each service's
first call, a Flask app with every route compiled (about 0.2 s of a twin's start
for 14 services). Here the service is picked by the server's own code
(`DomainDispatcherApplication.infer_service_region_host`), the route is the
first of the service's `url_paths` that matches the path, in their order, as
moto's decorator mode matches them, and the handler gets the request in the form
moto's decorator mode gives it (`Request.from_primitives`), with the same URL the
server would give. What the server answers for errors the handler raises, this answers
too: 400 for a `ClientError`, the exception's own answer for an `HTTPException`.

A request this cannot route (unsigned, moto's own `/moto-api/`, a path no route
of the service matches) returns None, and the caller takes the WSGI path.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import SplitResult

from botocore.awsrequest import AWSPreparedRequest

Handler = Callable[[Any, str, Any], Any]
Route = tuple[re.Pattern[str], Handler]
Answer = tuple[int, dict[str, str], bytes]


class MotoDispatch:
    def __init__(self, dispatcher: Any) -> None:
        self.dispatcher = dispatcher  # moto's DomainDispatcherApplication: its service inference, not its apps
        self._routes: dict[str, list[Route]] = {}
        self._lock = threading.Lock()

    def answer(self, request: AWSPreparedRequest, url: SplitResult, body: bytes) -> Answer | None:
        """Status, headers and body as moto's server would send them; None: not routable here."""
        from botocore.exceptions import ClientError
        from moto.core.request import Request
        from werkzeug.exceptions import HTTPException

        handler = self._handler(request, url)
        if handler is None:
            return None
        moto_request = Request.from_primitives(request.method or "GET", request.url, request.headers, body)
        try:
            result = handler(moto_request, moto_request.raw_url, dict(moto_request.headers))
        except ClientError as exc:  # as moto's server answers it
            result = 400, {}, exc.response["Error"]["Message"]
        except HTTPException as exc:
            result = exc.code or 500, dict(exc.get_headers()), exc.get_body()
        status, headers, content = result if len(result) == 3 else (200, {}, result)
        return _answer(int(status), headers, content)

    def _handler(self, request: AWSPreparedRequest, url: SplitResult) -> Handler | None:
        authorization = request.headers.get("Authorization")
        if not authorization or url.path.startswith("/moto-api"):
            return None
        environ = {"HTTP_AUTHORIZATION": header_text(authorization), "PATH_INFO": url.path, "HTTP_HOST": url.netloc}
        target = request.headers.get("X-Amz-Target")
        if target:
            environ["HTTP_X_AMZ_TARGET"] = header_text(target)
        host = self.dispatcher.infer_service_region_host(environ, url.path)
        service = self.dispatcher.get_backend_for_host(host) if host else None
        if not service:
            return None
        for pattern, handler in self._service_routes(service):
            if pattern.match(url.path):
                return handler
        return None

    def _service_routes(self, service: str) -> list[Route]:
        routes = self._routes.get(service)
        if routes is None:
            with self._lock:
                routes = self._routes.get(service)
                if routes is None:
                    routes = [(re.compile(path), handler) for path, handler in _backend(service).url_paths.items()
                              if path]
                    self._routes[service] = routes
        return routes


def _backend(service: str) -> Any:
    """One instance of the service's backend, as moto's server takes one to read its routes."""
    import moto.backends as backends
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.base_backend import BackendDict

    backend_dict = backends.get_backend(service)  # type: ignore[call-overload]
    if isinstance(backend_dict, BackendDict):
        regions = backend_dict[DEFAULT_ACCOUNT_ID]
        return regions["us-east-1"] if "us-east-1" in regions else regions["aws"]
    return backend_dict["global"]


def _answer(status: int, headers: Any, content: Any) -> Answer:
    """The handler's answer with the headers moto's Flask app would add."""
    body = _bytes(content)
    text_headers = {str(name): str(value) for name, value in (headers or {}).items()}
    names = {name.lower() for name in text_headers}
    if "content-type" not in names:
        text_headers["Content-Type"] = "text/html; charset=utf-8"  # Flask's default
    if "content-length" not in names:
        text_headers["Content-Length"] = str(len(body))
    return status, text_headers, body


def _bytes(content: Any) -> bytes:
    if content is None:
        return b""
    if isinstance(content, str):
        return content.encode()
    if isinstance(content, (bytes, bytearray, memoryview)):
        return bytes(content)
    return b"".join(part.encode() if isinstance(part, str) else bytes(part) for part in content)


def header_text(value: Any) -> str:
    """A header's value as text (botocore's prepared headers may hold bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)
