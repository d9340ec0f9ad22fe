# -*- test-case-name: tests.test_jsonapi_server -*-
"""The HTTP side of the JSON API (twisted.web): routing, authentication, limits, encoding.

It answers like ``retroshare-service`` 0.6.7 does (see the recorded exchanges): CORS headers on
every JSON answer, ``Connection: close``, 401 without ``WWW-Authenticate``, 409 for
authenticated calls before login, 404/501 with no body, parameters from the POST body or
``?jsonData=`` on GET, lenient parsing (malformed JSON runs the call with defaults).  Where
RetroShare crashed (a ``[]`` body) or could be exhausted, rsproto answers and keeps serving:
bodies are capped, connections and calls in progress are bounded, failed authentications
are throttled per client address.
"""

from __future__ import annotations

import json
import mimetypes
import os
import urllib.parse
from pathlib import Path
from typing import Any, Final

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.resource import Resource

from .api import ApiContext, Endpoint, EndpointTable
from .credentials import ApiCredentials, AuthThrottle
from .encoding import Params, pretty

__all__ = [
    "JsonApiResource",
    "JsonApiSite",
    "ApiRequest",
    "MAX_BODY_BYTES",
    "MAX_CONNECTIONS",
    "MAX_PENDING_CALLS",
    "IDLE_TIMEOUT",
    "CORS_HEADERS",
    "EVENTS_PATH",
]

#: Largest request body read; a bigger one is refused with 413 (RetroShare takes anything).
MAX_BODY_BYTES: Final = 1 << 20
#: Open client connections (event streams included); more are closed on arrival.
MAX_CONNECTIONS: Final = 128
#: Calls whose answer is still being computed; more are answered 503 at once.
MAX_PENDING_CALLS: Final = 64
#: Largest web interface file served (``--webui``).
MAX_STATIC_BYTES: Final = 64 << 20
#: Seconds a connection may stay silent before its request is complete.
IDLE_TIMEOUT: Final = 30
#: The event stream's path (served by `EventStreams`).
EVENTS_PATH: Final = "/rsEvents/registerEventsHandler"

#: The CORS headers RetroShare puts on every answer, in its order.
CORS_HEADERS: Final = (
    (b"Access-Control-Allow-Headers",
     b"Authorization,DNT,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,"
     b"Content-Type,Range"),
    (b"Access-Control-Allow-Methods", b"GET, POST, OPTIONS"),
    (b"Access-Control-Allow-Origin", b"*"),
)
_EXPOSE = (b"Access-Control-Expose-Headers", b"Content-Length,Content-Range")
_MAX_AGE = (b"Access-Control-Max-Age", b"1728000")
_TEXT = b"text/plain; charset=utf-8"
#: Reason phrases Twisted does not know.
_REASONS: Final = {429: b"Too Many Requests"}


class ApiRequest(server.Request):
    """A request whose body is capped at `MAX_BODY_BYTES` (declared or chunked)."""

    too_large = False
    _received = 0

    def gotLength(self, length: int | None) -> None:  # noqa: N802
        if length is not None and length > MAX_BODY_BYTES:
            self.too_large = True
            length = 0
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:  # noqa: N802
        self._received += len(data)
        if self._received > MAX_BODY_BYTES:
            self.too_large = True
            return
        super().handleContentChunk(data)


class JsonApiSite(server.Site):
    """A `Site` bounding open connections to `MAX_CONNECTIONS`."""

    requestFactory = ApiRequest  # noqa: N815 (twisted.web name)

    def __init__(self, resource: Resource, reactor: Any,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        super().__init__(resource, timeout=IDLE_TIMEOUT, reactor=reactor)
        self.max_connections = max_connections
        self.open_connections = 0

    def buildProtocol(self, addr: Any) -> Any:  # noqa: N802
        if self.open_connections >= self.max_connections:
            return None
        channel = super().buildProtocol(addr)
        self.open_connections += 1
        lost = channel.connectionLost

        def connection_lost(reason: Failure) -> None:
            self.open_connections -= 1
            lost(reason)

        channel.connectionLost = connection_lost
        return channel

    def log(self, request: Any) -> None:
        """No access log line per request (RetroShare's web UI polls every second)."""


class JsonApiResource(Resource):
    """Every API path, plus optionally a static web interface (``webui``) at the root."""

    isLeaf = True  # noqa: N815 (twisted.web name)
    log = Logger()

    def __init__(self, ctx: ApiContext, credentials: ApiCredentials, table: EndpointTable,
                 streams: Any, *, webui: str | os.PathLike[str] | None = None,
                 throttle: AuthThrottle | None = None,
                 max_pending: int = MAX_PENDING_CALLS) -> None:
        super().__init__()
        self.ctx = ctx
        self.credentials = credentials
        self.table = table
        self.streams = streams
        self.webui = Path(webui).resolve() if webui is not None else None
        self.throttle = throttle if throttle is not None else AuthThrottle()
        self.max_pending = max_pending
        self.pending = 0

    # --- answers ---------------------------------------------------------------------------

    @staticmethod
    def _bare(request: Any, code: int) -> bytes:
        """404 / 501 like RetroShare: only ``Connection: close``, no body."""
        request.setResponseCode(code)
        request.defaultContentType = None
        request.setHeader(b"Content-Length", b"0")
        request.setHeader(b"Connection", b"close")
        return b""

    @staticmethod
    def _empty(request: Any, code: int, extra: tuple[tuple[bytes, bytes], ...] = ()) -> bytes:
        """401 / 409 / 204 like RetroShare: CORS headers with Max-Age, empty text body."""
        request.setResponseCode(code, _REASONS.get(code))
        for name, value in CORS_HEADERS + (_MAX_AGE,) + extra:
            request.setHeader(name, value)
        request.setHeader(b"Connection", b"close")
        request.setHeader(b"Content-Length", b"0")
        request.setHeader(b"Content-Type", _TEXT)
        return b""

    @staticmethod
    def json_headers(request: Any, code: int = 200) -> None:
        request.setResponseCode(code)
        for name, value in CORS_HEADERS + (_EXPOSE,):
            request.setHeader(name, value)
        request.setHeader(b"Connection", b"close")

    def _json(self, request: Any, value: Any, code: int = 200) -> bytes:
        body = pretty(value)
        self.json_headers(request, code)
        request.setHeader(b"Content-Length", str(len(body)).encode())
        request.setHeader(b"Content-Type", b"application/json")
        return body

    # --- dispatch --------------------------------------------------------------------------

    def render(self, request: Any) -> Any:
        """Route one request (every answer closes the connection, like RetroShare)."""
        request.channel.persistent = False
        request.responseHeaders.removeHeader(b"server")
        request.responseHeaders.removeHeader(b"date")
        method = request.method
        if method not in (b"GET", b"POST", b"OPTIONS"):
            return self._bare(request, 501)
        path = request.path.decode("latin-1")
        endpoint = self.table.get(path)
        if endpoint is None:
            if self.webui is not None and method == b"GET":
                return self._static(request, path)
            return self._bare(request, 404)
        if method == b"OPTIONS":
            return self._empty(request, 204)
        if request.too_large:
            return self._json(request, {"errorMsg": "request body too large"}, 413)
        if endpoint.login and self.ctx.node is None:
            return self._empty(request, 409)
        if endpoint.auth:
            client = getattr(request.getClientAddress(), "host", "?")
            now = self.ctx.reactor.seconds()
            if self.throttle.blocked(client, now):
                return self._empty(request, 429, ((b"Retry-After",
                                                   b"%d" % int(self.throttle.window)),))
            if not self.credentials.check_header(request.getHeader(b"authorization")):
                self.throttle.failed(client, now)
                return self._empty(request, 401)
        params = self._params(request)
        if endpoint.path == EVENTS_PATH:
            return self.streams.open(request, params)
        return self._call(request, endpoint, params)

    @staticmethod
    def _params(request: Any) -> Any:
        """The call's JSON parameters: ``?jsonData=`` on GET, the body on POST; anything
        unparsable is "no parameters"."""
        if request.method == b"GET":
            values = request.args.get(b"jsonData") or [b""]
            raw = values[0]
        else:
            request.content.seek(0)
            raw = request.content.read(MAX_BODY_BYTES)
        try:
            return json.loads(raw.decode("utf-8", "replace")) if raw.strip() else {}
        except (ValueError, RecursionError):
            return {}

    def _call(self, request: Any, endpoint: Endpoint, data: Any) -> Any:
        if self.pending >= self.max_pending:
            return self._json(request, {"errorMsg": "too many calls in progress"}, 503)
        caller = data.get("caller_data") if isinstance(data, dict) else None
        has_caller = isinstance(data, dict) and "caller_data" in data
        self.pending += 1
        d = defer.maybeDeferred(endpoint.handler, self.ctx, Params(data))
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        def answer(result: Any) -> None:
            out = {"caller_data": caller} if has_caller else {}
            out.update(result)
            body = self._json(request, out)
            if not gone:
                request.write(body)
                request.finish()

        def failed(f: Failure) -> None:
            self.log.failure("JSON API call {path} failed", f, path=endpoint.path)
            if not gone:
                request.write(self._json(request, {"errorMsg": f.getErrorMessage()}, 500))
                request.finish()

        def done(result: Any) -> Any:
            self.pending -= 1
            try:
                self.ctx.call_done()
            except OSError as e:
                self.log.error("JSON API settings not saved: {e}", e=str(e))
            return result

        d.addBoth(done)
        d.addCallbacks(answer, failed)
        d.addErrback(lambda f: self.log.failure("answering {path}", f, path=endpoint.path))
        return server.NOT_DONE_YET

    def _static(self, request: Any, path: str) -> Any:
        """A file of the web interface folder (``index.html`` for folders); never outside
        it."""
        assert self.webui is not None
        parts = [urllib.parse.unquote(p) for p in path.split("/") if p]
        if any(p in ("..", ".") or "/" in p or "\x00" in p for p in parts):
            return self._bare(request, 404)
        target = self.webui.joinpath(*parts) if parts else self.webui
        try:
            target = target.resolve()
        except (OSError, RuntimeError):
            return self._bare(request, 404)
        if target != self.webui and self.webui not in target.parents:
            return self._bare(request, 404)
        if target.is_dir():
            target = target / "index.html"
        try:
            size = target.stat().st_size
            if not target.is_file() or size > MAX_STATIC_BYTES:
                return self._bare(request, 404)
            data = target.read_bytes()
        except OSError:
            return self._bare(request, 404)
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        request.setHeader(b"Content-Type", kind.encode("ascii"))
        request.setHeader(b"Content-Length", str(len(data)).encode())
        request.setHeader(b"Cache-Control", b"no-cache")
        return data
