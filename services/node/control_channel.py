# -*- test-case-name: tests.test_node_control_channel -*-
"""The local control channel: how ``rsnode status`` (and friends) talk to a running node.

A line protocol on 127.0.0.1: the client sends one JSON object per line,
``{"token": ..., "command": ..., "args": {...}}``, and reads one JSON object back,
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": ...}``.  The node listens on a
random loopback port and writes the port and a fresh random token into ``control.json`` in the
account directory, created with mode 0600: only the account's user can read the token, and a
request without the right token is refused (and the connection closed) before any command runs.

Any local user can connect, so the server defends itself (issue 14):

- at most `MAX_CONNECTIONS` connections at once; one more is closed at once, with one log line
  per refused connection; a connection idle for `IDLE_TIMEOUT` seconds is closed;
- every input path (JSON of any depth, any string in the token, lines over `MAX_LINE`) ends
  in an answer and a closed connection, never an unhandled error;
- the node proves it knows the token before the client sends it: after a crash, a stale
  ``control.json`` names a port some other process may now hold.  The client first sends
  ``{"challenge": <hex nonce>}``; the node answers ``{"proof": HMAC-SHA256(token,
  PROOF_LABEL + nonce)}``; the client sends its request only when the proof checks out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import socket
from collections.abc import Callable
from typing import Any, Final

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IListeningPort, IReactorTCP
from twisted.internet.protocol import Factory
from twisted.logger import Logger, LogLevel
from twisted.protocols.basic import LineOnlyReceiver

from pqi.storage import atomic_write

__all__ = [
    "ControlServer",
    "ControlClientError",
    "NodeNotRunningError",
    "NotTheNodeError",
    "call",
    "prove",
    "CONTROL_FILE",
    "MAX_LINE",
    "MAX_CONNECTIONS",
    "IDLE_TIMEOUT",
    "PROOF_LABEL",
]

#: Name of the file, in the account directory, holding the port and the token.
CONTROL_FILE: Final = "control.json"
#: Longest request line accepted (bytes).
MAX_LINE: Final = 65536
#: Most control connections open at once (the CLI uses one per command).
MAX_CONNECTIONS: Final = 16
#: A connection that sends nothing for this long is closed (s).
IDLE_TIMEOUT: Final = 30.0
#: What the node's proof of the token covers, before the client's nonce.
PROOF_LABEL: Final = b"rsproto control channel: node proof\n"
#: Length of the client's challenge (bytes, sent as hex).
CHALLENGE_BYTES: Final = 32

#: Longest answer the client reads (bytes).
_MAX_REPLY: Final = 16 * 1024 * 1024

Command = Callable[[dict[str, Any]], Any]


class NodeNotRunningError(Exception):
    """No node is running for this account (no control file, or nobody listens on its port).
    Start one with ``rsnode run``."""


class NotTheNodeError(NodeNotRunningError):
    """Something listens on the control file's port but cannot prove it knows the token: a
    stale ``control.json`` after a crash, and another process on the port.  The token and the
    command were not sent."""


class ControlClientError(Exception):
    """The running node refused or failed the command; the message says why."""


def _message(error: BaseException) -> str:
    """An error as the one line the CLI prints (a KeyError's message without its quotes)."""
    if isinstance(error, KeyError) and len(error.args) == 1 and isinstance(error.args[0], str):
        return error.args[0]
    return str(error) or type(error).__name__


def prove(token: str, challenge: bytes) -> str:
    """The node's answer to ``challenge``: HMAC-SHA256 under the token, hex."""
    return hmac.new(token.encode(), PROOF_LABEL + challenge, hashlib.sha256).hexdigest()


class _ControlProtocol(LineOnlyReceiver):
    delimiter = b"\n"
    MAX_LENGTH = MAX_LINE

    def __init__(self, server: ControlServer) -> None:
        self.server = server
        self._idle: IDelayedCall | None = None

    def connectionMade(self) -> None:  # noqa: N802
        if not self.server.admit(self):
            self.transport.loseConnection()
            return
        self._idle = self.server.reactor.callLater(self.server.idle_timeout, self._timed_out)

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802
        if self._idle is not None and self._idle.active():
            self._idle.cancel()
        self._idle = None
        self.server.release(self)

    def _timed_out(self) -> None:
        self._idle = None
        self.server.log.info("control channel: closed a connection idle for {timeout} s",
                             timeout=self.server.idle_timeout)
        self.transport.loseConnection()

    def lineReceived(self, line: bytes) -> None:  # noqa: N802
        if self._idle is not None and self._idle.active():
            self._idle.reset(self.server.idle_timeout)
        try:
            self._request(line)
        except Exception:  # the last guard: a bad line never becomes an unhandled error
            self.server.log.failure("control channel: request failed; connection closed",
                                    level=LogLevel.error)
            self._reply({"ok": False, "error": "internal error"}, close=True)

    def _request(self, line: bytes) -> None:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise TypeError("malformed request")
            if "challenge" in request and "token" not in request:
                challenge = bytes.fromhex(request["challenge"])
                if len(challenge) != CHALLENGE_BYTES:
                    raise ValueError("bad challenge")
                self._reply({"proof": prove(self.server.token, challenge)})
                return
            token = request["token"]
            command = request["command"]
            args = request.get("args", {})
            if not (isinstance(token, str) and isinstance(command, str)
                    and isinstance(args, dict)):
                raise TypeError("malformed request")
            presented = token.encode("utf-8")
        except (ValueError, KeyError, TypeError, RecursionError, UnicodeError):
            self._reply({"ok": False, "error": "malformed request"}, close=True)
            return
        if not hmac.compare_digest(presented, self.server.token.encode()):
            self.server.refused += 1
            self.server.log.warn("control channel: request with a wrong token refused")
            self._reply({"ok": False, "error": "bad token"}, close=True)
            return
        handler = self.server.commands.get(command)
        if handler is None:
            self._reply({"ok": False, "error": f"unknown command {command!r}"})
            return
        d = defer.maybeDeferred(handler, args)
        d.addCallbacks(lambda result: self._reply({"ok": True, "result": result}),
                       lambda f: self._reply({"ok": False, "error": _message(f.value)}))
        d.addErrback(self._unanswerable)

    def _unanswerable(self, failure: Any) -> None:
        """A result that is not JSON data: an error answer instead of an unhandled one."""
        self.server.log.failure("control channel: answer not sendable", failure,
                                level=LogLevel.error)
        self._reply({"ok": False, "error": "the command's result is not JSON data"})

    def lineLengthExceeded(self, line: bytes) -> None:  # noqa: N802
        self._reply({"ok": False, "error": "request too long"}, close=True)

    def _reply(self, obj: dict[str, Any], close: bool = False) -> None:
        if self.transport is None or self.transport.disconnecting:
            return
        self.transport.write(json.dumps(obj).encode() + b"\n")
        if close:
            self.transport.loseConnection()


class ControlServer:
    """Serves ``commands`` (name -> callable(args) returning JSON data or a Deferred of it).

    ``reactor`` gives TCP and time (the idle timers); ``max_connections`` and ``idle_timeout``
    default to `MAX_CONNECTIONS` and `IDLE_TIMEOUT`.
    """

    log = Logger()

    def __init__(self, reactor: Any, account_dir: str | os.PathLike[str],
                 commands: dict[str, Command], *, max_connections: int = MAX_CONNECTIONS,
                 idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.reactor = reactor
        self.path = os.path.join(os.fspath(account_dir), CONTROL_FILE)
        self.commands = commands
        self.token = secrets.token_urlsafe(32)
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        #: Requests refused for a wrong token.
        self.refused = 0
        #: Connections closed at once because `max_connections` were open.
        self.over_capacity = 0
        self.port: IListeningPort | None = None
        self._open: set[_ControlProtocol] = set()

    @property
    def connections(self) -> int:
        """Control connections open now."""
        return len(self._open)

    def admit(self, protocol: _ControlProtocol) -> bool:
        """Whether a new connection may stay (False: it is closed, and logged once)."""
        if len(self._open) >= self.max_connections:
            self.over_capacity += 1
            self.log.warn("control channel: refused a connection, {count} already open",
                          count=len(self._open))
            return False
        self._open.add(protocol)
        return True

    def release(self, protocol: _ControlProtocol) -> None:
        self._open.discard(protocol)

    def start(self) -> int:
        """Listen on a random loopback port and publish it with the token; returns the port."""
        factory = Factory.forProtocol(lambda: _ControlProtocol(self))
        tcp: IReactorTCP = self.reactor
        self.port = tcp.listenTCP(0, factory, interface="127.0.0.1")
        number = self.port.getHost().port
        atomic_write(self.path, json.dumps({"port": number, "token": self.token,
                                            "pid": os.getpid()}).encode())
        return number

    def stop(self) -> defer.Deferred[None]:
        """Stop listening and remove the control file."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        port, self.port = self.port, None
        if port is None:
            return defer.succeed(None)
        return defer.maybeDeferred(port.stopListening)


def _read_line(s: socket.socket, limit: int) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < limit:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def call(account_dir: str | os.PathLike[str], command: str,
         args: dict[str, Any] | None = None, timeout: float = 10.0) -> Any:
    """Run ``command`` on the node of ``account_dir`` (blocking; for the CLI).

    The listener must first prove it knows the token (`NotTheNodeError` otherwise: nothing
    secret was sent)."""
    path = os.path.join(os.fspath(account_dir), CONTROL_FILE)
    try:
        with open(path) as f:
            info = json.load(f)
    except FileNotFoundError:
        raise NodeNotRunningError(f"no node is running for {account_dir}") from None
    token = str(info["token"])
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    request = {"token": token, "command": command, "args": args or {}}
    try:
        with socket.create_connection(("127.0.0.1", int(info["port"])), timeout=timeout) as s:
            s.sendall(json.dumps({"challenge": challenge.hex()}).encode() + b"\n")
            try:
                proof = json.loads(_read_line(s, 4096)).get("proof")
            except (ValueError, AttributeError):
                proof = None
            if not (isinstance(proof, str)
                    and hmac.compare_digest(proof.encode(), prove(token, challenge).encode())):
                raise NotTheNodeError(
                    f"the process on port {info['port']} is not the node of {account_dir} "
                    "(a stale control file?); nothing was sent to it")
            s.sendall(json.dumps(request).encode() + b"\n")
            data = _read_line(s, _MAX_REPLY)
    except (ConnectionRefusedError, ConnectionResetError):
        raise NodeNotRunningError(f"no node is running for {account_dir}") from None
    try:
        reply = json.loads(data)
    except ValueError:
        raise ControlClientError("the node sent an unreadable answer") from None
    if not reply.get("ok"):
        raise ControlClientError(str(reply.get("error")))
    return reply.get("result")
