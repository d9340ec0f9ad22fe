"""``rsnode dht``: argument parsing and a real run on 127.0.0.1."""

from __future__ import annotations

import argparse
import json
import pathlib
import socket
import subprocess
import sys

import pytest

from dht import krpc
from dht.cli import parse_hostport, register

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_register_adds_dht_subcommand() -> None:
    """``register`` plugs ``dht`` into rsnode's subparsers with repeatable --bootstrap."""
    parser = argparse.ArgumentParser(prog="rsnode")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["dht", "--port", "7813", "--bootstrap", "127.0.0.1:1",
                              "--bootstrap", "[::1]:2", "--state-dir", "/tmp/x"])
    assert args.port == 7813
    assert args.bootstrap == [("127.0.0.1", 1), ("::1", 2)]
    assert args.state_dir == pathlib.Path("/tmp/x")
    assert callable(args.func)


@pytest.mark.parametrize("bad", ["nohost", "127.0.0.1:0", "127.0.0.1:70000", "1.2.3.4:x"])
def test_bad_hostport_rejected(bad: str) -> None:
    """Malformed HOST:PORT values are argument errors, not crashes later."""
    with pytest.raises(argparse.ArgumentTypeError):
        parse_hostport(bad)


@pytest.mark.slow
@pytest.mark.integration
def test_standalone_node_answers_and_saves_state(tmp_path: pathlib.Path) -> None:
    """A real ``dht`` run answers a ping on its port, logs its id and table size, and leaves
    its state behind on exit."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dht.cli", "--port", str(port), "--interface", "127.0.0.1",
         "--state-dir", str(tmp_path), "--log-interval", "0.2", "--duration", "4"],
        cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            udp.settimeout(0.2)
            reply = None
            # Our ping carries ``v`` so that the answer with ``v`` is no larger than the request
            # (the amplification guard trims replies to unverified sources).
            for _ in range(75):  # the node needs a moment to start (up to 15 s on a busy machine)
                udp.sendto(krpc.encode(krpc.Ping(b"cl", b"\x01" * 20, krpc.RS_VERSION)),
                           ("127.0.0.1", port))
                try:
                    reply = krpc.decode(udp.recv(2048))
                    break
                except TimeoutError:
                    continue
        assert isinstance(reply, krpc.Response) and reply.version == krpc.RS_VERSION
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert f"DHT node {reply.sender_id.hex()}" in err
    assert "routing table" in err
    state = json.loads((tmp_path / "dht.json").read_text())
    assert state["node_id"] == reply.sender_id.hex()
