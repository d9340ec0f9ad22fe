# -*- test-case-name: tests.test_dht_cli -*-
"""``rsnode dht``: run only a DHT node, e.g. as a bootstrap node a community can host.

`register` adds the subcommand to ``rsnode``'s parser; ``python -m dht.cli`` runs it alone.
"""

from __future__ import annotations

import argparse
import pathlib
import socket
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["register", "main", "parse_hostport"]


def parse_hostport(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) to an (IP, port) pair, resolving names once."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) <= 0xFFFF:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    host = host.strip("[]")
    try:
        info = socket.getaddrinfo(host, int(port_text), type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise argparse.ArgumentTypeError(f"cannot resolve {host!r}: {exc}") from None
    ipv4 = [i for i in info if i[0] == socket.AF_INET]
    addr = (ipv4 or info)[0][4]
    return str(addr[0]), int(addr[1])


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, required=True, help="UDP port (0: any free port)")
    p.add_argument("--interface", default="", help="address to bind (default: all IPv4)")
    p.add_argument("--bootstrap", type=parse_hostport, action="append", default=[],
                   metavar="HOST:PORT", help="a node to join through (repeatable)")
    p.add_argument("--bootstrap-file", type=pathlib.Path,
                   help="'ip port' lines, rewritten with good nodes on exit "
                        "(default: STATE_DIR/bdboot.txt)")
    p.add_argument("--state-dir", type=pathlib.Path,
                   help="where the node id and routing table are kept between runs")
    p.add_argument("--log-interval", type=float, default=60.0,
                   help="seconds between status lines (default 60)")
    p.add_argument("--duration", type=float, default=None,
                   help="stop after this many seconds (default: run until interrupted)")
    p.set_defaults(func=run)


def register(subparsers: Any) -> None:
    """Add ``dht`` to an ``argparse`` subparsers object (``rsnode``'s)."""
    p = subparsers.add_parser(
        "dht", help="run only a DHT node (a bootstrap node)",
        description="Run only a DHT node, e.g. a bootstrap node a community hosts; logs its "
                    "routing table every --log-interval seconds until Ctrl-C.")
    _add_arguments(p)


def run(args: argparse.Namespace) -> int:
    from twisted.internet import reactor, task
    from twisted.logger import Logger, globalLogBeginner

    from pqi.logs import readable_observer

    from .service import DHTService

    globalLogBeginner.beginLoggingTo([readable_observer(sys.stderr)],
                                     redirectStandardIO=False)
    log = Logger(namespace="rsnode.dht")
    state_file = bootstrap_file = None
    if args.state_dir is not None:
        state_file = args.state_dir / "dht.json"
        bootstrap_file = args.state_dir / "bdboot.txt"
    if args.bootstrap_file is not None:
        bootstrap_file = args.bootstrap_file
    svc = DHTService(reactor, args.port, interface=args.interface, bootstrap=args.bootstrap,
                     bootstrap_file=bootstrap_file, state_file=state_file)

    def status() -> None:
        node = svc.node
        if node is not None:
            now = reactor.seconds()
            log.info("DHT node {node_id} port {port}: routing table {size} contacts "
                     "({good} good), {received} datagrams in, {malformed} malformed",
                     node_id=node.node_id.hex(), port=svc.port, size=len(node.routing),
                     good=node.routing.good_count(now), received=node.counters.received,
                     malformed=node.counters.malformed)

    def start() -> None:
        try:
            svc.startService()
        except Exception:
            log.failure("DHT node failed to start")
            reactor.stop()
            return
        task.LoopingCall(status).start(args.log_interval)
        if args.duration is not None:
            reactor.callLater(args.duration, reactor.stop)

    reactor.addSystemEventTrigger("before", "shutdown",
                                  lambda: svc.stopService() if svc.running else None)
    reactor.callWhenRunning(start)
    reactor.run()
    return 0 if svc.node is not None else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rsnode dht", description=__doc__)
    _add_arguments(parser)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
