# -*- test-case-name: tests.test_node_control_channel -*-
"""The control channel's client: one blocking call per ``rsnode`` command.

Standard library only (no Twisted, no service), so that a short command such as ``rsnode
status`` starts in a fraction of a second; the server and the protocol are in
`services.node.control_channel`, which re-exports these names.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import socket
from typing import Any, Final

__all__ = [
    "call",
    "prove",
    "ControlClientError",
    "NodeNotRunningError",
    "NotTheNodeError",
    "CONTROL_FILE",
    "PROOF_LABEL",
    "CHALLENGE_BYTES",
]

#: Name of the file, in the account directory, holding the port and the token.
CONTROL_FILE: Final = "control.json"
#: What the node's proof of the token covers, before the client's nonce.
PROOF_LABEL: Final = b"rsproto control channel: node proof\n"
#: Length of the client's challenge (bytes, sent as hex).
CHALLENGE_BYTES: Final = 32

#: Longest answer the client reads (bytes).
_MAX_REPLY: Final = 16 * 1024 * 1024


class NodeNotRunningError(Exception):
    """No node is running for this account (no control file, or nobody listens on its port).
    Start one with ``rsnode run``."""


class NotTheNodeError(NodeNotRunningError):
    """Something listens on the control file's port but cannot prove it knows the token: a
    stale ``control.json`` after a crash, and another process on the port.  The token and the
    command were not sent."""


class ControlClientError(Exception):
    """The running node refused or failed the command; the message says why."""


def prove(token: str, challenge: bytes) -> str:
    """The node's answer to ``challenge``: HMAC-SHA256 under the token, hex."""
    return hmac.new(token.encode(), PROOF_LABEL + challenge, hashlib.sha256).hexdigest()


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
