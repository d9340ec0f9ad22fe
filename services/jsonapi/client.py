# -*- test-case-name: tests.test_jsonapi_events -*-
"""A small Python client of the JSON API (rsnode's or retroshare-service's), on Twisted.

    client = JsonApiClient(reactor, "127.0.0.1", 9092, "alice", "secret")
    friends = await client.call("/rsPeers/getFriendList")
    async with client.events() as stream:
        async for event in stream:
            print(event["mType"], event)

Calls answer the JSON object (``retval`` and the output parameters); an HTTP error raises
`ApiError`.  The event stream is an async iterator of event records (keep-alives skipped);
its queue is bounded (`MAX_CLIENT_QUEUE`): a consumer that falls that far behind ends the
stream with `StreamOverflowError`.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Final

from twisted.internet import defer, protocol
from twisted.web.client import Agent
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

from .credentials import ApiCredentials
from .events import EXT_KEEPALIVE

__all__ = ["JsonApiClient", "ApiError", "EventStream", "StreamOverflowError",
           "MAX_CLIENT_QUEUE", "MAX_FRAME_BYTES"]

#: Events buffered for a slow consumer.
MAX_CLIENT_QUEUE: Final = 4096
#: Largest event frame accepted from the server.
MAX_FRAME_BYTES: Final = 16 << 20


class ApiError(Exception):
    """The server answered a call with an HTTP error (``status``)."""

    def __init__(self, status: int, path: str, body: bytes) -> None:
        super().__init__(f"{path}: HTTP {status}")
        self.status = status
        self.path = path
        self.body = body


class StreamOverflowError(Exception):
    """The event consumer fell `MAX_CLIENT_QUEUE` events behind (or a frame was too big)."""


@implementer(IBodyProducer)
class _Bytes:
    """A request body written at once (FileBodyProducer would need the global reactor)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.length = len(data)

    def startProducing(self, consumer: Any) -> defer.Deferred[None]:  # noqa: N802
        consumer.write(self.data)
        return defer.succeed(None)

    def pauseProducing(self) -> None:  # noqa: N802
        pass

    def resumeProducing(self) -> None:  # noqa: N802
        pass

    def stopProducing(self) -> None:  # noqa: N802
        pass


class _Collect(protocol.Protocol):
    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.done: defer.Deferred[bytes] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        self.data.append(data)

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802
        self.done.callback(b"".join(self.data))


class _End:
    def __init__(self, reason: BaseException | None) -> None:
        self.reason = reason


class _FrameReader(protocol.Protocol):
    def __init__(self, stream: EventStream) -> None:
        self.stream = stream
        self.buffer = b""

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        self.buffer += data
        while b"\n\n" in self.buffer:
            raw, self.buffer = self.buffer.split(b"\n\n", 1)
            self.stream._frame(raw)
        if len(self.buffer) > MAX_FRAME_BYTES:
            self.stream._fail(StreamOverflowError("event frame too large"))

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802
        self.stream._put(_End(None))


class EventStream:
    """The events of one ``registerEventsHandler`` subscription, as an async iterator."""

    def __init__(self, skip_keepalive: bool = True) -> None:
        self.skip_keepalive = skip_keepalive
        self.registration: dict[str, Any] | None = None
        self._queue: defer.DeferredQueue[Any] = defer.DeferredQueue()
        self._reader: _FrameReader | None = None
        self.ready: defer.Deferred[EventStream] = defer.Deferred()
        self.closed = False

    def _put(self, item: Any) -> None:
        if self.closed and not isinstance(item, _End):
            return
        if len(self._queue.pending) >= MAX_CLIENT_QUEUE:
            self._fail(StreamOverflowError(f"more than {MAX_CLIENT_QUEUE} events waiting"))
            return
        self._queue.put(item)

    def _fail(self, reason: BaseException) -> None:
        self._queue.pending.clear()
        self._queue.put(_End(reason))
        self.close()

    def _frame(self, raw: bytes) -> None:
        lines = [line[5:].lstrip() for line in raw.split(b"\n") if line.startswith(b"data:")]
        if not lines:
            return  # an SSE comment (keep-alive of a filtered stream)
        try:
            value = json.loads(b"\n".join(lines))
        except ValueError:
            return
        if self.registration is None and isinstance(value, dict) and "retval" in value:
            self.registration = value
            if not self.ready.called:
                self.ready.callback(self)
            return
        event = value.get("event") if isinstance(value, dict) else None
        if not isinstance(event, dict):
            return
        if self.skip_keepalive and event.get("mType") == EXT_KEEPALIVE:
            return
        self._put(event)

    def __aiter__(self) -> EventStream:
        return self

    def __anext__(self) -> defer.Deferred[dict[str, Any]]:
        def unpack(item: Any) -> dict[str, Any]:
            if isinstance(item, _End):
                self._queue.put(item)  # later calls end too
                if item.reason is not None:
                    raise item.reason
                raise StopAsyncIteration
            return item  # type: ignore[no-any-return]

        return self._queue.get().addCallback(unpack)

    def next(self) -> defer.Deferred[dict[str, Any]]:
        """The next event (a Deferred; errback StopAsyncIteration once the stream ended)."""
        return self.__anext__()

    def close(self) -> None:
        """Stop receiving (closes the connection)."""
        if self.closed:
            return
        self.closed = True
        reader = self._reader
        if reader is not None and reader.transport is not None:
            reader.transport.stopProducing()

    async def __aenter__(self) -> EventStream:
        return await self.ready

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


class JsonApiClient:
    """Calls a JSON API at ``host:port`` with HTTP Basic credentials."""

    def __init__(self, reactor: Any, host: str, port: int, user: str | None = None,
                 password: str | None = None) -> None:
        self.reactor = reactor
        self.base = f"http://{host}:{port}"
        self.agent = Agent(reactor)
        self.auth = None if user is None else "Basic " + base64.b64encode(
            f"{user}:{password or ''}".encode()).decode("ascii")

    @classmethod
    def for_account(cls, reactor: Any, base_dir: str | Path, host: str = "127.0.0.1",
                    port: int = 9092) -> JsonApiClient:
        """A client with the credentials ``rsnode init`` stored in ``base_dir``."""
        creds = ApiCredentials.load(base_dir)
        return cls(reactor, host, port, creds.user, creds.password)

    def _headers(self, extra: dict[str, str] | None = None) -> Headers:
        headers = Headers({"Content-Type": ["application/json"]})
        if self.auth is not None:
            headers.addRawHeader("Authorization", self.auth)
        for name, value in (extra or {}).items():
            headers.addRawHeader(name, value)
        return headers

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
        """(status, response headers, body) of one raw HTTP request."""
        producer = _Bytes(body) if body else None
        response = await self.agent.request(method.encode(), (self.base + path).encode(),
                                            self._headers(headers), producer)
        collect = _Collect()
        response.deliverBody(collect)
        data = await collect.done
        return response.code, response.headers, data

    async def call(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call an API method; its answer as a dict (ApiError on an HTTP error)."""
        status, _, body = await self.request("POST", path, json.dumps(params or {}).encode())
        if status != 200:
            raise ApiError(status, path, body)
        value = json.loads(body)
        if not isinstance(value, dict):
            raise ApiError(status, path, body)
        return value

    def events(self, event_type: int = 0, skip_keepalive: bool = True) -> EventStream:
        """Subscribe to events (0: all); ``async with`` waits for the registration."""
        stream = EventStream(skip_keepalive)
        body = _Bytes(json.dumps({"eventType": event_type}).encode())
        d = self.agent.request(b"POST", (self.base + "/rsEvents/registerEventsHandler")
                               .encode(), self._headers(), body)

        def got(response: Any) -> None:
            if response.code != 200:
                error = ApiError(response.code, "/rsEvents/registerEventsHandler", b"")
                stream._fail(error)
                if not stream.ready.called:
                    stream.ready.errback(error)
                return
            reader = stream._reader = _FrameReader(stream)
            response.deliverBody(reader)
            if stream.closed:
                stream.closed = False
                stream.close()

        def failed(f: Any) -> None:
            stream._fail(f.value)
            if not stream.ready.called:
                stream.ready.errback(f)

        d.addCallbacks(got, failed)
        return stream
