# -*- test-case-name: tests.test_lab_upnp -*-
"""An rsproto node for the lab: ``python3 -m tools.netlab.labnode DIR NAME`` inside a namespace.

It talks to the test through files in ``DIR`` (namespaces share the file system, not the
network), so the test needs no socket into the lab:

- writes ``cert.txt`` (our certificate, with the UPnP external address as the only address)
  and ``state.json`` whenever the UPnP state changes;
- reads ``peer.txt`` (a friend's certificate) when it appears, and dials that friend;
- lists in ``state.json`` the address of each friend's current link;
- stops (unmapping its ports) when ``stop`` appears, or after ``--lifetime`` seconds, and
  writes ``stopped.json``.

The node is a real `services.node.node.Node` with ``upnp=True``: UPnP through the real miniupnpd of
the home router, TLS over real TCP through the routers' NAT.
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
from services.events import ExternalAddressChanged, FriendConnected
from services.node.node import Node

#: How often the node looks for the test's files, seconds.
POLL: float = 0.05


def _write(path: Path, data: Any) -> None:
    """Publish ``data`` (text, or JSON of it) whole: the lab reads these files while we run."""
    atomic_write(path, (data if isinstance(data, str) else json.dumps(data)).encode(), 0o644)


@defer.inlineCallbacks
def main(reactor: Any, args: argparse.Namespace) -> Any:
    base: Path = args.dir
    log = open(base / "node.log", "a")
    globalLogBeginner.beginLoggingTo([textFileLogObserver(log)], redirectStandardIO=False)
    account = Account.create(base / "account", args.name, f"{args.name}-lab", "lab-password",
                             bits=2048)
    friends = FriendList(base / "friends.sqlite", now=reactor.seconds)
    node = Node(reactor, account, friends, port=args.port, interface="0.0.0.0",
                advertise_host=args.host, upnp=True, owns_friends=True)

    def report_state() -> None:
        assert node.upnp is not None
        status = node.upnp.status
        _write(base / "state.json", {
            "state": status.state.value, "detail": status.detail,
            "external": str(node.external_address) if node.external_address else None,
            "listening": str(node.listening) if node.listening else None,
            # the address of each friend's *current* link: a simultaneous dial can bring up
            # two links for a moment, and the tie-break keeps one of them
            "links": {f.ssl_id.to_hex(): str(f.connected_address)
                      for f in node.friends() if f.online} if node.running else {}})

    def upnp_changed(event: ExternalAddressChanged) -> None:
        address: NetAddress | None = event.address
        report_state()  # before cert.txt: whoever sees the certificate sees this state
        if address is not None:
            _write(base / "cert.txt", account.certificate_text(ext_addr=address))

    node.subscribe(ExternalAddressChanged, upnp_changed)
    node.subscribe(FriendConnected, lambda event: report_state())
    yield node.startService()
    added = False
    for _ in range(int(args.lifetime / POLL)):
        report_state()
        if not added and (base / "peer.txt").exists():
            node.add_friend((base / "peer.txt").read_text())
            added = True
        if (base / "stop").exists():
            break
        yield task.deferLater(reactor, POLL, lambda: None)
    yield node.stopService()
    report_state()
    _write(base / "stopped.json", {"state": node.upnp.status.state.value if node.upnp else None})
    log.close()


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("name")
    parser.add_argument("--host", default="0.0.0.0",
                        type=lambda s: str(ipaddress.ip_address(s)),
                        help="our LAN address (announced as the local address)")
    parser.add_argument("--port", type=int, default=7812)
    parser.add_argument("--lifetime", type=float, default=50.0,
                        help="stop by itself after this many seconds")
    args = parser.parse_args()
    task.react(main, (args,))


if __name__ == "__main__":
    _cli()
