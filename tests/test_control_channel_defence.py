"""The control channel against any local user (issue 14, findings 2, 5 and the stale control
file of 8): a connection cap and an idle timeout, bad input answered and never an unhandled
error, and a client that sends its token only to a listener proving it knows it."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel, capturedLogs

from services.node.control_channel import (
    CHALLENGE_BYTES,
    CONTROL_FILE,
    IDLE_TIMEOUT,
    MAX_CONNECTIONS,
    ControlServer,
    NotTheNodeError,
    call,
    prove,
)


def _server(tmp_path: Path, **kw: Any) -> tuple[ControlServer, MemoryReactorClock]:
    reactor = MemoryReactorClock()
    server = ControlServer(reactor, tmp_path, {"echo": lambda args: args}, **kw)
    server.start()
    return server, reactor


def _connect(server: ControlServer) -> tuple[Any, StringTransport]:
    factory = server.reactor.tcpServers[-1][1]
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


def _answers(transport: StringTransport) -> list[dict[str, Any]]:
    return [json.loads(line) for line in transport.value().splitlines()]


def test_connection_cap_refuses_and_logs_each(tmp_path: Path) -> None:
    """MAX_CONNECTIONS idle connections stay; each one beyond is closed at once with one log
    line; once one closes, a new one is admitted again."""
    server, _ = _server(tmp_path)
    open_ = [_connect(server) for _ in range(MAX_CONNECTIONS)]
    assert all(not t.disconnecting for _, t in open_)
    with capturedLogs() as events:
        extra = [_connect(server) for _ in range(3)]
    assert all(t.disconnecting for _, t in extra)
    for protocol, _ in extra:
        protocol.connectionLost(None)
    refusals = [e for e in events if "refused a connection" in e.get("log_format", "")]
    assert len(refusals) == 3 and server.over_capacity == 3
    assert server.connections == MAX_CONNECTIONS
    open_[0][0].connectionLost(None)
    _, later = _connect(server)
    assert not later.disconnecting


def test_idle_connections_are_closed(tmp_path: Path) -> None:
    """A silent connection is closed after IDLE_TIMEOUT; a line resets the timer."""
    server, reactor = _server(tmp_path)
    quiet_protocol, quiet = _connect(server)
    chatty_protocol, chatty = _connect(server)
    reactor.advance(IDLE_TIMEOUT - 1)
    chatty_protocol.dataReceived(json.dumps({"token": server.token, "command": "echo",
                               "args": {"x": 1}}).encode() + b"\n")
    reactor.advance(2)
    assert quiet.disconnecting and not chatty.disconnecting
    assert _answers(chatty) == [{"ok": True, "result": {"x": 1}}]
    reactor.advance(IDLE_TIMEOUT)
    assert chatty.disconnecting
    quiet_protocol.connectionLost(None)
    chatty_protocol.connectionLost(None)
    assert server.connections == 0 and not reactor.getDelayedCalls()


@pytest.mark.parametrize("line", [
    json.dumps({"token": "\ud800", "command": "echo"}).encode(),
    b"[" * 60_000,
    b"{" * 30_000,
    json.dumps({"challenge": "zz"}).encode(),
    json.dumps({"challenge": "00"}).encode(),
    json.dumps([1, 2]).encode(),
    b"\xff\xfe",
], ids=["lone-surrogate", "deep-list", "deep-object", "bad-hex", "short-challenge",
        "not-an-object", "not-utf8"])
def test_bad_input_is_answered_not_raised(tmp_path: Path, line: bytes) -> None:
    """Lone surrogates in the token, JSON nested past the recursion limit, bad challenges and
    non-objects get "malformed request" and a closed connection; nothing is logged as an
    error or critical failure."""
    server, _ = _server(tmp_path)
    protocol, transport = _connect(server)
    with capturedLogs() as events:
        protocol.dataReceived(line + b"\n")
    assert _answers(transport) == [{"ok": False, "error": "malformed request"}]
    assert transport.disconnecting
    assert not [e for e in events if e["log_level"] >= LogLevel.error]


def test_challenge_is_answered_with_the_proof(tmp_path: Path) -> None:
    """A challenge gets HMAC(token, label + nonce); the request then runs on the same line."""
    server, _ = _server(tmp_path)
    protocol, transport = _connect(server)
    nonce = bytes(range(CHALLENGE_BYTES))
    protocol.dataReceived(json.dumps({"challenge": nonce.hex()}).encode() + b"\n")
    protocol.dataReceived(json.dumps({"token": server.token, "command": "echo",
                                      "args": {"y": 2}}).encode() + b"\n")
    assert _answers(transport) == [{"proof": prove(server.token, nonce)},
                                   {"ok": True, "result": {"y": 2}}]


@pytest.mark.integration
def test_client_sends_nothing_secret_to_an_impostor(tmp_path: Path) -> None:
    """With a stale control file whose port another process now holds, the client refuses
    (NotTheNodeError) and neither the token nor the command reached that process."""
    token = "the-real-token"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(10)
    port = listener.getsockname()[1]
    (tmp_path / CONTROL_FILE).write_text(json.dumps({"port": port, "token": token, "pid": 1}))
    received = bytearray()

    def impostor() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            try:
                received.extend(conn.recv(65536))
                conn.sendall(b'{"proof": "00"}\n')
                while chunk := conn.recv(65536):
                    received.extend(chunk)
            except OSError:
                pass

    thread = threading.Thread(target=impostor, daemon=True)
    thread.start()
    try:
        with pytest.raises(NotTheNodeError):
            call(tmp_path, "friend_add", {"certificate": "secret-args"}, timeout=5)
    finally:
        thread.join(10)
        listener.close()
    assert received.startswith(b'{"challenge"')
    assert token.encode() not in received and b"secret-args" not in received
