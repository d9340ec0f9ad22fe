"""The block lists of a real ``rsnode run`` process survive SIGKILL: what a control command
answered for is on disk by then (a banned range, file and identity, a denied profile, a
changed setting), and so is what a later command lifted."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from pqi.identity.account import Account
from services.cli.common import PASSWORD_ENV
from services.node.control_channel import ControlClientError, NodeNotRunningError, call
from tests.processes import stop

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180), pytest.mark.slow]

PASSWORD = "banlist-sigkill-password"
PROFILE = "0123456789ABCDEF"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(base, port: int, log) -> subprocess.Popen:
    env = dict(os.environ, **{PASSWORD_ENV: PASSWORD})
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", "--base-dir", str(base), "--port",
         str(port), "--interface", "127.0.0.1"], env=env, stdout=log, stderr=subprocess.STDOUT,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        start_new_session=True)


def _listing_of(base, pid: int) -> dict | None:
    """The node's block list once the process ``pid`` answers (None before)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with open(os.path.join(base, "control.json")) as f:
                if json.load(f)["pid"] == pid:
                    return call(base, "block_list", timeout=5)
        except (NodeNotRunningError, ControlClientError, OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    return None


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def _summary(listing: dict) -> tuple:
    return ([b["range"] for b in listing["ips"]], [f["hash"] for f in listing["files"]],
            [i["id"] for i in listing["ids"]], [d["id"] for d in listing["friends"]],
            listing["settings"]["from_dht"])


def test_block_lists_survive_sigkill(tmp_path) -> None:
    """Block, kill -9 right after the answers, restart: everything is there; lift part of
    it, kill -9 again, restart: the lifted entries stay lifted, the others stay."""
    base = tmp_path / "alice"
    Account.create(base, "alice", "alice-loc", PASSWORD, bits=2048)
    port = _free_port()
    log = open(tmp_path / "alice.log", "ab")
    proc = _start(base, port, log)
    try:
        assert _listing_of(base, proc.pid) is not None, "the node did not come up"
        call(base, "block_ip", {"range": "11.22.33.0/24", "comment": "scanner"})
        call(base, "block_file", {"hash": "ab" * 20, "name": "x.bin"})
        call(base, "block_id", {"id": "cd" * 16, "reason": "troll"})
        call(base, "block_friend", {"friend": PROFILE, "reason": "spam"})
        call(base, "block_settings", {"from_dht": True})
        _kill(proc)
        proc = _start(base, port, log)
        first = _listing_of(base, proc.pid)
        call(base, "unblock_ip", {"range": "11.22.33.0/24"})
        call(base, "unblock_file", {"hash": "ab" * 20})
        _kill(proc)
        proc = _start(base, port, log)
        second = _listing_of(base, proc.pid)
    finally:
        stop(proc)
        log.close()
    assert first is not None and second is not None
    assert _summary(first) == (["11.22.33.0/24"], ["ab" * 20], ["cd" * 16], [PROFILE], True)
    assert _summary(second) == ([], [], ["cd" * 16], [PROFILE], True)
