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

import hmac
import json
import os
import secrets
from collections.abc import Callable
from typing import Any, Final

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IListeningPort, IReactorTCP
from twisted.internet.protocol import Factory
from twisted.logger import Logger, LogLevel
from twisted.protocols.basic import LineOnlyReceiver

from pqi.storage import atomic_write
from services.node.control_client import (
    CHALLENGE_BYTES,
    CONTROL_FILE,
    PROOF_LABEL,
    ControlClientError,
    NodeNotRunningError,
    NotTheNodeError,
    call,
    prove,
)

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

#: Longest request line accepted (bytes).
MAX_LINE: Final = 65536
#: Most control connections open at once (the CLI uses one per command).
MAX_CONNECTIONS: Final = 16
#: A connection that sends nothing for this long is closed (s).
IDLE_TIMEOUT: Final = 30.0

Command = Callable[[dict[str, Any]], Any]


def _message(error: BaseException) -> str:
    """An error as the one line the CLI prints (a KeyError's message without its quotes)."""
    if isinstance(error, KeyError) and len(error.args) == 1 and isinstance(error.args[0], str):
        return error.args[0]
    return str(error) or type(error).__name__


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
