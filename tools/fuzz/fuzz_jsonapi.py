# -*- test-case-name: tests.test_jsonapi_fuzz -*-
"""Fuzz the JSON API server: raw HTTP requests into an in-memory connection.

The input bytes are one connection's request bytes; when they start with a path byte
pattern the harness also builds a well-formed POST to a real endpoint around the rest
(so the fuzzer reaches every handler with arbitrary JSON).  The server must never raise,
every answer must be an HTTP/1.1 response, and a normal call must work afterwards.
"""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import Any

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    from twisted.internet.address import IPv4Address
    from twisted.internet.error import ConnectionDone
    from twisted.internet.testing import MemoryReactorClock, StringTransport
    from twisted.python.failure import Failure

    from pqi.identity.account import Account
    from pqi.identity.friends import FriendList
    from services.jsonapi import ApiCredentials, AuthThrottle, JsonApiService, all_endpoints
    from services.node.node import FRIENDS_FILE, Node

__all__ = ["one_input", "FuzzServer", "ENDPOINT_PATHS"]

ENDPOINT_PATHS = sorted(e.path for e in all_endpoints())


class FuzzServer:
    """A node (not started) and its API, answering over in-memory connections."""

    def __init__(self, base: Path) -> None:
        self.reactor = MemoryReactorClock()
        account = Account.create(base / "node", "fuzz", "fuzz-loc", "fuzz-password",
                                 bits=2048)
        friends = FriendList(base / "node" / FRIENDS_FILE, now=self.reactor.seconds)
        self.node = Node(self.reactor, account, friends, owns_friends=True)
        self.creds = ApiCredentials.create(base / "node", "fuzz")
        self.api = JsonApiService(self.reactor, self.node, self.creds, port=0)
        self.auth = self.creds.basic_header().encode()
        # Fuzzed requests fail authentication often; the oracle's own calls must not be
        # throttled for it (the throttle has tests of its own).
        self.api.resource.throttle = AuthThrottle(max_failures=1 << 30)

    def exchange(self, data: bytes) -> bytes:
        """Everything the server writes for ``data`` sent on one connection (an HTTP/1.0
        request gets an HTTP/1.0 status line)."""
        channel = self.api.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        channel.makeConnection(transport)
        channel.dataReceived(data)
        self.reactor.advance(0)
        self.reactor.advance(0)
        out = transport.value()
        channel.connectionLost(Failure(ConnectionDone()))
        return out

    def post(self, path: str, body: bytes, auth: bool = True) -> bytes:
        head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                .encode("latin-1"))
        if auth:
            head += b"Authorization: " + self.auth + b"\r\n"
        return self.exchange(head + b"\r\n" + body)


_server: FuzzServer | None = None


def server() -> FuzzServer:
    global _server
    if _server is None:
        _server = FuzzServer(Path(tempfile.mkdtemp(prefix="rsproto-fuzz-jsonapi-")))
    return _server


def _check(out: bytes, what: Any) -> None:
    if out and not out.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")):
        raise AssertionError(f"not an HTTP answer to {what!r}: {out[:80]!r}")


def one_input(data: bytes) -> None:
    """Raw request bytes (or, with a leading 0x01 byte, a body for an endpoint chosen by
    the next byte); the server must answer in HTTP and keep serving."""
    s = server()
    if data[:1] == b"\x01" and len(data) >= 2:
        path = ENDPOINT_PATHS[data[1] % len(ENDPOINT_PATHS)]
        if path.endswith("registerEventsHandler"):
            return
        out = s.post(path, data[2:])
        _check(out, path)
        if not out.startswith(b"HTTP/1.1 200 "):
            raise AssertionError(f"{path} answered {out[:40]!r} to {data[2:80]!r}")
    else:
        _check(s.exchange(data), data[:80])
    alive = s.post("/rsJsonApi/version", b"{}")
    if not alive.startswith(b"HTTP/1.1 200 "):
        raise AssertionError(f"server stopped answering after {data[:80]!r}")


def seed_inputs() -> list[bytes]:
    """A few inputs to start a corpus from."""
    auth = base64.b64encode(b"fuzz:x")
    return [
        b"POST /rsPeers/getFriendList HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        b"GET /rsPeers/getPeerDetails?jsonData=%7B%22sslId%22%3A1%7D HTTP/1.1\r\n\r\n",
        b"OPTIONS /rsFiles/FileDetails HTTP/1.1\r\n\r\n",
        b"POST /rsFiles/requestDirDetails HTTP/1.1\r\nAuthorization: Basic " + auth
        + b"\r\nContent-Length: 36\r\n\r\n{\"handle\":\"1099511627776\",\"flags\":4}",
        b"\x01\x05{\"sslId\": []}",
        b"\x01\x20[]",
        b"\x01\x30{\"dir\":{\"filename\":7}}",
    ]


if __name__ == "__main__":
    fuzz(one_input)
