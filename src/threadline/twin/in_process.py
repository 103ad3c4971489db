"""The twin's own AWS calls go straight into moto's WSGI app, without a socket.

Provisioning the template is some 180 calls; the twin's pollers (event sources,
alarms, schedules), its run helpers and moto's Step Functions interpreter (each
state's call, each `.sync` poll) call all the time. Over HTTP each call pays for
a connection, a server thread and HTTP parsing twice. Handed to the same WSGI
app the server runs (readiness gate, moto's dispatcher, its routing), a call is
answered by the same code, only without the round trip. Everything outside the
twin's process or session (the user's clients, Lambda functions, Batch jobs)
still calls the server over HTTP.

Registered as a botocore `before-send` handler (on the twin's session, and on
the interpreter's clients through `moto_speedups`): botocore signs, serialises
and parses as always; only the transport changes. A call the readiness gate
lets through goes to moto's handler directly (`moto_dispatch.py`), skipping
the WSGI app; one it would refuse, or that cannot be routed so, goes through
the gate and the WSGI app as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from io import BytesIO
from typing import Any
from urllib.parse import SplitResult, urlsplit

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from werkzeug.exceptions import InternalServerError
from werkzeug.test import EnvironBuilder, run_wsgi_app

from .moto_dispatch import MotoDispatch, header_text
from .readiness import WsgiApp

LOCAL_HOSTS = ("127.0.0.1", "localhost")  # the twin's server, as the twin and moto's interpreter name it


class ResponseBody(BytesIO):
    """The raw body botocore reads: a whole response, streamed in one piece."""

    def stream(self, **kwargs: Any) -> Any:
        chunk = self.read()
        if chunk:
            yield chunk


class InProcessTransport:
    """botocore `before-send` handler answering requests to the twin's port from `app`; others go by HTTP."""

    def __init__(self, app: WsgiApp, endpoint_url: str, direct: MotoDispatch | None = None,
                 admits: Callable[[Any], bool] | None = None) -> None:
        self.app = app
        self.port = urlsplit(endpoint_url).port
        self.direct = direct
        self.admits = admits  # the readiness gate's word on a request's headers

    def __call__(self, request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse | None:
        url = urlsplit(request.url)
        if url.port != self.port or url.hostname not in LOCAL_HOSTS:
            return None  # not the twin (the local Neptune or Slack stand-ins): a real request
        body = _body(request.body)
        if self.direct is not None and self.admits is not None and self.admits(request.headers):
            try:
                answer = self.direct.answer(request, url, body)
            except Exception:  # as werkzeug's server does: the error logged, the caller answered 500
                return _internal_error(request)
            if answer is not None:
                code, headers, content = answer
                return AWSResponse(request.url, code, headers, ResponseBody(content))
        return self._through_wsgi(request, url, body)

    def _through_wsgi(self, request: AWSPreparedRequest, url: SplitResult, body: bytes) -> AWSResponse:
        builder = EnvironBuilder(
            path=url.path or "/", base_url=f"{url.scheme}://{url.netloc}", query_string=url.query,
            method=request.method, headers=_text_headers(request.headers), data=body,
        )
        try:
            environ = builder.get_environ()
        finally:
            builder.close()
        try:
            chunks, status, headers = run_wsgi_app(self.app, environ, buffered=True)
            content = b"".join(chunks)
            if hasattr(chunks, "close"):
                chunks.close()
        except Exception:  # as werkzeug's server does: the error logged, the caller answered 500
            return _internal_error(request)
        code = int(status.split(" ", 1)[0])
        return AWSResponse(request.url, code, dict(headers.items()), ResponseBody(content))


def _internal_error(request: AWSPreparedRequest) -> AWSResponse:
    logging.getLogger("werkzeug").exception("Error on request:")
    error = InternalServerError()
    return AWSResponse(request.url, error.code, dict(error.get_headers()), ResponseBody(error.get_body().encode()))


def _text_headers(headers: Any) -> list[tuple[str, str]]:
    return [(name, header_text(value)) for name, value in headers.items()]


def _body(body: Any) -> bytes:
    """The request's body as bytes (botocore gives bytes, text, or a file-like object for uploads)."""
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    if hasattr(body, "seek"):
        body.seek(0)
    data = body.read()
    return data.encode() if isinstance(data, str) else bytes(data)
