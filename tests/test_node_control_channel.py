"""The local control channel: token file permissions, token check, commands, errors."""

from __future__ import annotations

import json
import os
import socket
import stat

import pytest
from twisted.internet import threads

from services.node.control_channel import (
    CONTROL_FILE,
    ControlClientError,
    ControlServer,
    NodeNotRunningError,
    call,
)
from tests.service_fakes import on_fresh_reactor


def no_such_mail(args: dict) -> None:
    raise KeyError("no mail 999 in the inbox")  # as UnknownMailError (a KeyError) does


@pytest.mark.integration
def test_token_file_is_private_and_commands_run(tmp_path) -> None:
    """The control file is mode 0600; a client with the token runs commands (sync and
    failing ones, a KeyError's message without its quotes); the file is gone after stop."""
    async def body(reactor):
        server = ControlServer(reactor, tmp_path, {
            "echo": lambda args: {"you said": args.get("x")},
            "fail": lambda args: 1 / 0,
            "lookup": no_such_mail,
        })
        server.start()
        mode = stat.S_IMODE(os.stat(tmp_path / CONTROL_FILE).st_mode)
        pool = reactor.getThreadPool()
        try:
            echoed = await threads.deferToThreadPool(reactor, pool, call, tmp_path, "echo",
                                                     {"x": 5})
            errors = []
            for command in ("fail", "nope", "lookup"):
                try:
                    await threads.deferToThreadPool(reactor, pool, call, tmp_path, command)
                except ControlClientError as e:
                    errors.append(str(e))
        finally:
            await server.stop()
        return mode, echoed, errors

    mode, echoed, errors = on_fresh_reactor(body)
    assert mode == 0o600
    assert echoed == {"you said": 5}
    assert "division by zero" in errors[0] and "unknown command" in errors[1]
    assert errors[2] == "no mail 999 in the inbox"  # a KeyError's message, without quotes
    assert not (tmp_path / CONTROL_FILE).exists()


@pytest.mark.integration
def test_wrong_token_refused(tmp_path) -> None:
    """A request with a wrong token gets "bad token", the connection is closed, and the
    command never runs."""
    ran = []

    async def body(reactor):
        server = ControlServer(reactor, tmp_path, {"status": lambda a: ran.append(a)})
        port = server.start()

        def raw() -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(json.dumps({"token": "guess", "command": "status"}).encode() + b"\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
                return data
        try:
            return await threads.deferToThreadPool(reactor, reactor.getThreadPool(), raw), \
                server.refused
        finally:
            await server.stop()

    data, refused = on_fresh_reactor(body)
    assert json.loads(data) == {"ok": False, "error": "bad token"}
    assert refused == 1 and ran == []


def test_no_node_running(tmp_path) -> None:
    """Without a control file the client says no node is running."""
    with pytest.raises(NodeNotRunningError):
        call(tmp_path, "status")
