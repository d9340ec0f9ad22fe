# -*- test-case-name: tests.test_node_control_channel -*-
"""The local control channel: how ``rsnode status`` (and friends) talk to a running node.

A line protocol on 127.0.0.1: the client sends one JSON object per line,
``{"token": ..., "command": ..., "args": {...}}``, and reads one JSON object back,
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": ...}``.  The node listens on a
random loopback port and writes the port and a fresh random token into ``control.json`` in the
account directory, created with mode 0600: only the account's user can read the token, and a
request without the right token is refused (and the connection closed) before any command runs.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import socket
from collections.abc import Callable
from typing import Any, Final

from twisted.internet import defer
from twisted.internet.interfaces import IListeningPort, IReactorTCP
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver

from pqi.storage import atomic_write

__all__ = [
    "ControlServer",
    "ControlClientError",
    "NodeNotRunningError",
    "call",
    "CONTROL_FILE",
    "MAX_LINE",
]

#: Name of the file, in the account directory, holding the port and the token.
CONTROL_FILE: Final = "control.json"
#: Longest request line accepted (bytes).
MAX_LINE: Final = 65536

#: Longest answer the client reads (bytes).
_MAX_REPLY: Final = 16 * 1024 * 1024

Command = Callable[[dict[str, Any]], Any]


class NodeNotRunningError(Exception):
    """No node is running for this account (no control file, or nobody listens on its port).
    Start one with ``rsnode run``."""


class ControlClientError(Exception):
    """The running node refused or failed the command; the message says why."""


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

    def lineReceived(self, line: bytes) -> None:  # noqa: N802
        try:
            request = json.loads(line)
            token = request["token"]
            command = request["command"]
            args = request.get("args", {})
            if not (isinstance(token, str) and isinstance(command, str)
                    and isinstance(args, dict)):
                raise TypeError("malformed request")
        except (ValueError, KeyError, TypeError):
            self._reply({"ok": False, "error": "malformed request"}, close=True)
            return
        if not hmac.compare_digest(token.encode(), self.server.token.encode()):
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

    def lineLengthExceeded(self, line: bytes) -> None:  # noqa: N802
        self._reply({"ok": False, "error": "request too long"}, close=True)

    def _reply(self, obj: dict[str, Any], close: bool = False) -> None:
        if self.transport is None:
            return
        self.transport.write(json.dumps(obj).encode() + b"\n")
        if close:
            self.transport.loseConnection()


class ControlServer:
    """Serves ``commands`` (name -> callable(args) returning JSON data or a Deferred of it)."""

    log = Logger()

    def __init__(self, reactor: IReactorTCP, account_dir: str | os.PathLike[str],
                 commands: dict[str, Command]) -> None:
        self.reactor = reactor
        self.path = os.path.join(os.fspath(account_dir), CONTROL_FILE)
        self.commands = commands
        self.token = secrets.token_urlsafe(32)
        self.refused = 0
        self.port: IListeningPort | None = None

    def start(self) -> int:
        """Listen on a random loopback port and publish it with the token; returns the port."""
        factory = Factory.forProtocol(lambda: _ControlProtocol(self))
        self.port = self.reactor.listenTCP(0, factory, interface="127.0.0.1")
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


def call(account_dir: str | os.PathLike[str], command: str,
         args: dict[str, Any] | None = None, timeout: float = 10.0) -> Any:
    """Run ``command`` on the node of ``account_dir`` (blocking; for the CLI)."""
    path = os.path.join(os.fspath(account_dir), CONTROL_FILE)
    try:
        with open(path) as f:
            info = json.load(f)
    except FileNotFoundError:
        raise NodeNotRunningError(f"no node is running for {account_dir}") from None
    request = {"token": info["token"], "command": command, "args": args or {}}
    try:
        with socket.create_connection(("127.0.0.1", int(info["port"])), timeout=timeout) as s:
            s.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n") and len(data) < _MAX_REPLY:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except ConnectionRefusedError:
        raise NodeNotRunningError(f"no node is running for {account_dir}") from None
    try:
        reply = json.loads(data)
    except ValueError:
        raise ControlClientError("the node sent an unreadable answer") from None
    if not reply.get("ok"):
        raise ControlClientError(str(reply.get("error")))
    return reply.get("result")
