"""The JSON API server's own rules: credentials (0600, constant-time Basic checks like
RetroShare's), failed-authentication throttling, body, call and connection limits, loopback
by default, the static web interface folder, and ``rsnode api-token``."""

from __future__ import annotations

import json
import os
import re
import stat
from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from services.cli.rsnode import main
from services.jsonapi.api import ApiContext, EndpointTable
from services.jsonapi.credentials import (
    CREDENTIALS_FILE,
    MAX_FAILURES,
    ApiCredentials,
    AuthThrottle,
)
from services.jsonapi.dir_handles import HandleTable
from services.jsonapi.events import EventStreams
from services.jsonapi.rs_files import CompletedDownloads
from services.jsonapi.server import MAX_BODY_BYTES, JsonApiResource, JsonApiSite
from services.jsonapi.service import JsonApiService, NonLoopbackError, parse_address


class _Server:
    """A resource over an in-memory site: a table with a version call and a call that
    never finishes."""

    def __init__(self, webui: Any = None, max_pending: int = 64,
                 max_connections: int = 128) -> None:
        self.reactor = MemoryReactorClock()
        self.creds = ApiCredentials("alice", "secret")
        table = EndpointTable()
        table.add("/rsJsonApi/version", auth=False, login=False)(
            lambda ctx, p: {"major": 0})
        table.add("/rsPeers/getFriendList")(lambda ctx, p: {"sslIds": [], "retval": True})
        table.add("/rsTest/hang")(lambda ctx, p: defer.Deferred())
        ctx = ApiContext(object(), self.reactor)
        self.resource = JsonApiResource(ctx, self.creds, table, EventStreams(self.reactor),
                                        webui=webui, max_pending=max_pending)
        self.site = JsonApiSite(self.resource, self.reactor, max_connections=max_connections)
        self.open: list[Any] = []

    def send(self, data: bytes, host: str = "127.0.0.1") -> bytes:
        channel = self.site.buildProtocol(IPv4Address("TCP", host, 5000))
        if channel is None:
            return b"<refused>"
        transport = StringTransport(peerAddress=IPv4Address("TCP", host, 5000))
        channel.makeConnection(transport)
        channel.dataReceived(data)
        self.open.append(channel)
        return transport.value()

    def post(self, path: str, body: bytes = b"{}", auth: str | None = None,
             host: str = "127.0.0.1") -> bytes:
        auth = self.creds.basic_header() if auth is None else auth
        return self.send(f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body, host)


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_credentials_file_is_private_and_reloads(tmp_path) -> None:
    """Created credentials are written 0600 and read back the same."""
    created = ApiCredentials.create(tmp_path, "alice")
    path = tmp_path / CREDENTIALS_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = ApiCredentials.load(tmp_path)
    assert (loaded.user, loaded.password) == (created.user, created.password)
    assert len(created.password) >= 20
    assert ApiCredentials.load_or_create(tmp_path, "other").password == created.password


def test_basic_header_rules() -> None:
    """Only ``Basic base64(user:password)`` with the right pair passes (scheme case-
    sensitive, like RetroShare); tokens are checked the same way."""
    c = ApiCredentials("alice", "secret")
    assert c.check_header(c.basic_header().encode())
    for bad in (None, b"", b"basic " + c.basic_header().encode()[6:], b"Bearer abc",
                b"Basic !!!notbase64!!!", b"Basic YWxpY2U=", b"Basic YWxpY2U6d3Jvbmc="):
        assert not c.check_header(bad)
    assert c.check_token("alice:secret") and not c.check_token("alice:wrong")
    with pytest.raises(ValueError):
        ApiCredentials("a:b", "x")


def test_throttle_blocks_after_failures_and_forgets_after_the_window() -> None:
    """MAX_FAILURES failures within the window block a client; the window passing
    unblocks it; other clients are unaffected."""
    t = AuthThrottle()
    for i in range(MAX_FAILURES):
        assert not t.blocked("a", i * 0.1)
        t.failed("a", i * 0.1)
    assert t.blocked("a", 2.0) and not t.blocked("b", 2.0)
    assert not t.blocked("a", 2.0 + t.window)


def test_throttle_table_is_bounded() -> None:
    """The throttle remembers at most max_clients addresses (oldest forgotten)."""
    t = AuthThrottle(max_clients=10)
    for i in range(100):
        t.failed(f"10.0.0.{i}", 1.0)
    assert len(t) == 10


def test_server_answers_429_once_a_client_guessed_too_often() -> None:
    """After MAX_FAILURES wrong passwords the client gets 429 even with the right one."""
    s = _Server()
    for _ in range(MAX_FAILURES):
        assert status(s.post("/rsPeers/getFriendList", auth="Basic YWxpY2U6d3Jvbmc=")) == 401
    answer = s.post("/rsPeers/getFriendList")
    assert status(answer) == 429 and b"Retry-After: 60" in answer
    s.reactor.advance(61)
    assert status(s.post("/rsPeers/getFriendList")) == 200


def test_401_has_no_www_authenticate_and_cors_headers() -> None:
    """A refused call: 401, empty text body, CORS headers, no WWW-Authenticate."""
    answer = JsonApiResource  # keep the name used below readable
    out = _Server().post("/rsPeers/getFriendList", auth="Bearer x")
    assert status(out) == 401 and answer is not None
    assert b"Access-Control-Allow-Origin: *" in out and b"WWW-Authenticate" not in out
    assert out.endswith(b"\r\n\r\n")


def test_body_larger_than_the_limit_is_refused() -> None:
    """A declared body over MAX_BODY_BYTES is answered 413 without being stored."""
    s = _Server()
    head = (f"POST /rsPeers/getFriendList HTTP/1.1\r\nAuthorization: "
            f"{s.creds.basic_header()}\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n")
    out = s.send(head.encode() + b"x" * (MAX_BODY_BYTES + 1))
    assert status(out) == 413


def test_calls_in_progress_are_bounded() -> None:
    """With max_pending calls unanswered, the next call is answered 503 at once; others
    (not counting) still work."""
    s = _Server(max_pending=3)
    for _ in range(3):
        assert s.post("/rsTest/hang") == b""
    assert status(s.post("/rsTest/hang")) == 503
    assert s.resource.pending == 3


def test_connections_are_bounded() -> None:
    """Beyond max_connections open connections, new ones are refused."""
    s = _Server(max_connections=4)
    for _ in range(4):
        s.post("/rsTest/hang")
    assert s.post("/rsJsonApi/version") == b"<refused>"
    s.open[0].connectionLost(Failure(ConnectionDone()))
    assert status(s.post("/rsJsonApi/version")) == 200


def test_loopback_only_unless_asked(tmp_path) -> None:
    """A non-loopback address is refused without allow_remote; loopback ones are fine."""
    creds = ApiCredentials("a", "b")
    with pytest.raises(NonLoopbackError):
        JsonApiService(MemoryReactorClock(), None, creds, host="0.0.0.0")
    JsonApiService(MemoryReactorClock(), None, creds, host="0.0.0.0", allow_remote=True)
    JsonApiService(MemoryReactorClock(), None, creds, host="::1")
    assert parse_address("127.0.0.1:9092") == ("127.0.0.1", 9092)
    assert parse_address("[::1]:80") == ("::1", 80)
    assert parse_address("9393") == ("127.0.0.1", 9393)
    for bad in ("localhost:1", "1.2.3.4", "1.2.3.4:99999"):
        with pytest.raises(ValueError):
            parse_address(bad)


def test_webui_folder_is_served_but_never_outside(tmp_path) -> None:
    """GET of a path that is no endpoint serves the web interface folder (index.html for
    the root); ``..`` escapes and missing files are 404; API paths still win."""
    webui = tmp_path / "webui"
    webui.mkdir()
    (webui / "index.html").write_text("<html>ui</html>")
    (tmp_path / "secret.txt").write_text("no")
    s = _Server(webui=webui)
    root = s.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status(root) == 200 and root.endswith(b"<html>ui</html>")
    for path in (b"/../secret.txt", b"/%2e%2e/secret.txt", b"/nothing.js"):
        assert status(s.send(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")) == 404
    assert status(s.send(b"GET /rsJsonApi/version HTTP/1.1\r\nHost: x\r\n\r\n")) == 200


def test_handle_table_is_bounded() -> None:
    """The directory handle table holds at most max_handles entries (then starts afresh,
    old handles reading as unknown)."""
    t = HandleTable(max_handles=50)
    first = t.handle(1, ("d", b"x"))
    for i in range(200):
        t.handle(1, ("d", i))
    assert len(t) <= 50
    assert t.lookup(first) is None
    assert t.lookup(1 << 40) == (1, None)


def test_completed_downloads_are_bounded() -> None:
    """At most the limit of completed downloads are remembered, the oldest dropped."""
    from pqi.wire.fields import Sha1Hash
    from services.transfer.service import TransferInfo
    done = CompletedDownloads(limit=5)
    for i in range(12):
        done.add(TransferInfo(Sha1Hash(bytes([i]) * 20), f"f{i}", 1, 1, 0.0, 0.0,
                              "complete", 1, 0))
    assert [v.name for v in done.items.values()] == [f"f{i}" for i in range(7, 12)]


def test_api_token_prints_the_credentials(tmp_path, capsys) -> None:
    """``rsnode api-token`` prints user:password, or the Authorization header."""
    creds = ApiCredentials.create(tmp_path, "alice")
    assert main(["api-token", "--base-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == creds.token
    assert main(["api-token", "--base-dir", str(tmp_path), "--header"]) == 0
    assert capsys.readouterr().out.strip() == f"Authorization: {creds.basic_header()}"
    assert main(["api-token", "--base-dir", str(tmp_path / "none")]) == 2


def test_logged_out_api_answers_409_before_checking_credentials() -> None:
    """Before login (no node), authenticated calls answer 409 whatever the credentials;
    unauthenticated calls answer."""
    s = _Server()
    s.resource.ctx.node = None
    assert status(s.post("/rsPeers/getFriendList", auth="Bearer nothing")) == 409
    assert json.loads(s.post("/rsJsonApi/version").partition(b"\r\n\r\n")[2]) == {
        "major": 0}


def test_docs_table_lists_every_endpoint() -> None:
    """docs/jsonapi.md's endpoint table names exactly the endpoints the server has."""
    from services.jsonapi import all_endpoints
    from tests.conftest import ROOT
    text = (ROOT / "docs" / "jsonapi.md").read_text()
    documented = set(re.findall(r"^\| `(/[^`]+)` \|", text, re.MULTILINE))
    assert documented == {e.path for e in all_endpoints()}
