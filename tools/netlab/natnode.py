# -*- test-case-name: tests.test_lab_nat -*-
"""An rsproto node with its UDP port, for the NAT lab: ``python3 -m tools.netlab.natnode DIR
NAME --host IP`` inside a namespace.

Like `tools.netlab.labnode` it talks to the test through files in ``DIR``:

- writes ``cert.txt`` (our certificate, with ``--host:--port`` as its address) once started;
- reads ``peers.txt`` (friends' certificates, one per line) whenever it grows, and adds them;
- writes ``status.json`` (the node's status report, as ``rsnode status --json`` shows it)
  every 0.2 s;
- stops when ``stop`` appears or after ``--lifetime`` seconds, and writes ``stopped.json``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
from pathlib import Path
from typing import Any

from twisted.internet import defer, task
from twisted.logger import globalLogBeginner, textFileLogObserver

from pqi.identity.account import Account
from pqi.identity.friends import FriendList
from pqi.storage import atomic_write
from pqi.wire.address import NetAddress
from services.nat.udpport import PUNCH_TTL, UdpOptions
from services.node.node import Node

POLL: float = 0.2


def _write(path: Path, data: Any) -> None:
    """Publish ``data`` (text, or JSON of it) whole: the lab reads these files while we run."""
    atomic_write(path, (data if isinstance(data, str) else json.dumps(data)).encode(), 0o644)


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return str(ipaddress.ip_address(host)), int(port)


@defer.inlineCallbacks
def main(reactor: Any, args: argparse.Namespace) -> Any:
    base: Path = args.dir
    log = open(base / "node.log", "a")
    globalLogBeginner.beginLoggingTo([textFileLogObserver(log)], redirectStandardIO=False)
    account = Account.create(base / "account", args.name, f"{args.name}-lab", "lab-password",
                             bits=2048)
    friends = FriendList(base / "friends.sqlite", now=reactor.seconds)
    udp = UdpOptions(port=args.udp_port, interface="0.0.0.0",
                     bootstrap=tuple(_address(b) for b in args.bootstrap),
                     punch_ttl=args.punch_ttl)
    node = Node(reactor, account, friends, port=args.port, interface="0.0.0.0",
                advertise_host=args.host, owns_friends=True, udp=udp, file_sharing=None)
    yield node.startService()
    _write(base / "cert.txt", account.certificate_text(
        local_addr=NetAddress(ipaddress.ip_address(args.host), args.port)))
    added: set[str] = set()
    for _ in range(int(args.lifetime / POLL)):
        peers = base / "peers.txt"
        if peers.exists():
            for line in peers.read_text().split():
                if line not in added:
                    node.add_friend(line)
                    added.add(line)
        _write(base / "status.json", node.status_report())
        if (base / "stop").exists():
            break
        yield task.deferLater(reactor, POLL, lambda: None)
    yield node.stopService()
    _write(base / "stopped.json", {"stopped": True})
    log.close()


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("name")
    parser.add_argument("--host", required=True, type=lambda s: str(ipaddress.ip_address(s)))
    parser.add_argument("--port", type=int, default=7812)
    parser.add_argument("--udp-port", type=int, default=7813)
    parser.add_argument("--bootstrap", action="append", default=[], metavar="IP:PORT")
    parser.add_argument("--punch-ttl", type=int, default=PUNCH_TTL,
                        help="TTL of the first hole-punching SYNs (the lab needs "
                             "tools.netlab.lab.PUNCH_TTL)")
    parser.add_argument("--lifetime", type=float, default=80.0)
    args = parser.parse_args()
    task.react(main, (args,))


if __name__ == "__main__":
    _cli()
