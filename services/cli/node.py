# -*- test-case-name: tests.test_node_cli -*-
"""``rsnode run``, ``rsnode status`` and ``rsnode demo``: a running node and a look inside it.

``run`` keeps a node in the foreground, logging one readable line per event, until Ctrl-C.
``status`` asks the running node (over the local control channel) for its friends, their
state, addresses, round-trip times and, for friends that are offline, the recent connection
attempts and why each failed.  ``demo`` shows three nodes meeting on this machine.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any, TextIO

from twisted.internet import defer, task
from twisted.logger import ILogObserver, LogLevel, formatEvent, globalLogBeginner
from zope.interface import provider

from pqi.identity.account import Account
from pqi.identity.errors import AccountError, WrongPasswordError
from pqi.identity.friends import FriendList
from pqi.link.linkmgr import AddressSource
from pqi.link.netinterface import DEFAULT_PORT
from services.cli.identity import FRIENDS_FILE, PASSWORD_ENV, CliError, default_base_dir
from services.cli.password import take_password
from services.cli.terminal import safe
from services.node.control_channel import ControlClientError, NodeNotRunningError, call
from services.node.node import Node
from services.registry import names as service_names

__all__ = ["register", "run_demo", "format_status", "readable_observer"]


def readable_observer(out: TextIO, min_level: LogLevel = LogLevel.info) -> Callable[[dict], None]:
    """A log observer writing ``HH:MM:SS message`` lines (warnings and errors marked)."""

    @provider(ILogObserver)
    def observe(event: dict[str, Any]) -> None:
        level = event.get("log_level", LogLevel.info)
        if level < min_level:
            return
        text = formatEvent(event)
        failure = event.get("log_failure")
        if failure is not None:
            text += f": {failure.getErrorMessage()}"
        mark = "" if level <= LogLevel.info else f"{level.name.upper()}: "
        stamp = time.strftime("%H:%M:%S", time.localtime(event.get("log_time", time.time())))
        out.write(f"{stamp} {mark}{text}\n")
        out.flush()

    return observe


def _password() -> str:
    env = take_password(PASSWORD_ENV)
    if env is not None:
        return env
    import getpass
    return getpass.getpass("Account password: ")


# --- run ---------------------------------------------------------------------------------------

def _run(args: argparse.Namespace) -> int:
    base: pathlib.Path = args.base_dir
    try:
        account = Account.load(base, _password())
    except WrongPasswordError as e:
        raise CliError("wrong password") from e
    except AccountError as e:
        raise CliError(f"{e} (create an account with `rsnode init`)") from e
    from twisted.internet import reactor

    globalLogBeginner.beginLoggingTo([readable_observer(sys.stdout)], redirectStandardIO=False)
    friends = FriendList(base / FRIENDS_FILE, now=reactor.seconds)  # type: ignore[attr-defined]
    node = Node(reactor, account, friends, port=args.port, interface=args.interface,
                control=True, owns_friends=True,
                upnp=args.upnp,
                udp=_udp_options(args))
    failed: list[str] = []

    def start() -> None:
        d = node.startService()

        def cannot(f: Any) -> None:
            failed.append(f.getErrorMessage())
            reactor.stop()  # type: ignore[attr-defined]

        d.addErrback(cannot)

    reactor.callWhenRunning(start)  # type: ignore[attr-defined]
    reactor.addSystemEventTrigger(  # type: ignore[attr-defined]
        "before", "shutdown", lambda: node.stopService() if node.running else None)
    reactor.run()  # type: ignore[attr-defined]
    if failed:
        raise CliError(f"cannot start the node: {failed[0]}")
    return 0


# --- UDP paths ---------------------------------------------------------------------------------

def _udp_options(args: argparse.Namespace) -> Any:
    """The UDP port's options from ``--udp-port``/``--no-udp`` and ``--bootstrap``."""
    if not args.udp:
        return None
    import ipaddress

    from services.nat.udpport import UdpOptions
    bootstrap = []
    for text in args.bootstrap:
        host, _, port = text.rpartition(":")
        try:
            bootstrap.append((str(ipaddress.ip_address(host)), int(port)))
        except ValueError:
            raise CliError(f"--bootstrap wants IP:PORT, not {text!r}") from None
    port = args.udp_port if args.udp_port is not None else (args.port + 1 if args.port else 0)
    return UdpOptions(port=port, interface=args.interface, bootstrap=tuple(bootstrap))


def _failed_paths(friend: dict[str, Any]) -> list[str]:
    """Why the better paths failed, for a friend linked by a worse one."""
    failed = [a for a in friend["attempts"][-8:]
              if a["outcome"] != "connected" and a.get("path")]
    return [f"      {a['path']} failed {a['ago']} s ago: {a['outcome']}"
            + (f" ({a['detail']})" if a["detail"] else "") for a in reversed(failed)]


def _udp_status_line(report: dict[str, Any]) -> list[str]:
    udp = report.get("udp")
    if not udp:
        return []
    return [f"UDP port {udp['port']}: NAT {udp['nat']}, external {udp['external'] or '?'}, "
            f"relaying {udp['relays_carried']} ({udp['relayed_bytes']} bytes)"]


# --- status ------------------------------------------------------------------------------------

def _service_names(ids: list[int]) -> str:
    known = service_names()
    return " ".join(known.get(i, f"0x{i:04x}") for i in ids) or "none"


def format_status(report: dict[str, Any]) -> str:
    """The ``rsnode status`` text for a node's status report."""
    lines = [f"{report['name']} ({report['location']}, {report['ssl_id']}), "
             f"status {report['status']}, listening on {report['listening'] or 'nothing'}"]
    lines += _udp_status_line(report)
    friends = report["friends"]
    if not friends:
        lines.append("no friends yet: add one with `rsnode friend add CERTIFICATE`")
    for f in friends:
        head = f"  {safe(f['name'])}/{safe(f['location'] or '?')} [{f['ssl_id']}]"
        if f["online"]:
            rtt = f["rtt_ms"]
            rtt_text = ("rtt not measured yet" if rtt is None else
                        f"rtt {rtt['last']} ms (mean {rtt['mean']} ms over {rtt['count']})")
            via = f" by {f['path']}" if f.get("path") else ""
            lines.append(f"{head}: online ({f['status']}) at {f['connected_address']}{via}, "
                         f"{rtt_text}")
            lines.append(f"      services: {_service_names(f['services'])}")
            lines += _failed_paths(f)
            continue
        addresses = ", ".join(f["addresses"]) or "no known address"
        lines.append(f"{head}: offline; addresses: {addresses}")
        attempts = f["attempts"][-5:]
        if attempts:
            lines.append("      recent connection attempts:")
            for a in reversed(attempts):
                where = a["address"] or a.get("path") or "?"
                detail = f" ({safe(a['detail'])})" if a["detail"] else ""
                lines.append(f"        {a['ago']:>6} s ago  {a['direction']:<8} {where}: "
                             f"{a['outcome']}{detail}")
        else:
            lines.append("      no connection attempt yet")
        if f["next_attempt_in"] is not None:
            lines.append(f"      next attempt in {f['next_attempt_in']} s")
    for p in report.get("pending", []):
        via = f", learned from {safe(p['learned_from'])}" if p["learned_from"] else ""
        lines.append(f"  pending approval: {safe(p['name'])} ({p['pgp_id']}{via})")
    return "\n".join(lines)


def _status(args: argparse.Namespace) -> int:
    try:
        report = call(args.base_dir, "status")
    except NodeNotRunningError as e:
        raise CliError(f"{e}; start it with `rsnode run`") from e
    except (ControlClientError, OSError) as e:
        raise CliError(f"the node did not answer: {e}") from e
    if args.json:
        import json
        print(json.dumps(report, indent=2))
    else:
        print(format_status(report))
    return 0


# --- demo --------------------------------------------------------------------------------------

def _say(out: TextIO, text: str) -> None:
    out.write(text + "\n")
    out.flush()


async def _until(reactor: Any, predicate: Callable[[], bool], timeout: float) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await task.deferLater(reactor, 0.02, lambda: None)
    raise CliError("the demo did not get there in time (is loopback networking available?)")


async def run_demo(reactor: Any, out: TextIO, workdir: pathlib.Path, bits: int = 2048) -> None:
    """Three nodes on 127.0.0.1: A-B and B-C friends; A learns about C through B; then A and
    C approve each other and connect directly."""
    names = ("alice", "bob", "carol")
    _say(out, "rsproto demo: three RetroShare-compatible nodes on this machine (127.0.0.1)")
    _say(out, f"  creating the accounts of {', '.join(names)} ({bits}-bit keys) in {workdir}")
    nodes: dict[str, Node] = {}
    for name in names:
        account = Account.create(workdir / name, name, f"{name}-loc", "demo-password",
                                 bits=bits)
        friends = FriendList(workdir / name / FRIENDS_FILE, now=reactor.seconds)
        nodes[name] = Node(reactor, account, friends, port=0, owns_friends=True,
                           rtt_period=0.5)
    a, b, c = (nodes[n] for n in names)
    try:
        for name, node in nodes.items():
            await node.startService()
            _say(out, f"  {name:<5} listens on {node.listening}  (location {node.ssl_id})")
        _say(out, "  alice and bob exchange certificates and accept each other; "
                  "so do bob and carol")
        b.add_friend(a.account.certificate_text(local_addr=a.listening))
        b.add_friend(c.account.certificate_text(local_addr=c.listening))
        a.add_friend(b.account.certificate_text(local_addr=b.listening))
        c.add_friend(b.account.certificate_text(local_addr=b.listening))
        await _until(reactor, lambda: bool(a.control.enabled(b.ssl_id))
                     and bool(c.control.enabled(b.ssl_id)), 15)
        _say(out, f"✓ alice ⇄ bob connected; common services: "
                  f"{_service_names(sorted(a.control.enabled(b.ssl_id)))}")
        _say(out, "✓ bob ⇄ carol connected")
        await _until(reactor, lambda: any(p.pgp_id == c.pgp_id for p in a.pending()), 15)
        pending = next(p for p in a.pending() if p.pgp_id == c.pgp_id)
        _say(out, f"✓ alice learned about {pending.name} ({pending.pgp_id}) through bob's "
                  "discovery: carol's key waits for alice's approval (not a friend yet)")
        _say(out, "  alice approves carol, and carol approves alice (who reached her the "
                  "same way)")
        await _until(reactor, lambda: any(p.pgp_id == a.pgp_id for p in c.pending()), 15)
        a.approve(c.pgp_id)
        c.approve(a.pgp_id)
        await _until(reactor, lambda: bool(a.control.enabled(c.ssl_id)), 20)
        learned = [str(r.address) for r in a.net.manager.addresses(c.ssl_id)
                   if r.source == AddressSource.DISCOVERY]
        _say(out, f"✓ alice ⇄ carol connected directly; bob's discovery told alice where "
                  f"carol is: {', '.join(learned) or '(carol dialled first)'}")
        await _until(reactor, lambda: a.rtt.stats(b.ssl_id) is not None, 5)
        rtt = a.rtt.stats(b.ssl_id)
        if rtt is not None:
            _say(out, f"  round trip alice → bob: {rtt.last * 1000:.2f} ms")
        from services.cli.chat import demo_chat_and_mail
        await demo_chat_and_mail(reactor, lambda text: _say(out, text), a, b, c)
        from services.transfer.demo import demo_file_sharing
        await demo_file_sharing(reactor, lambda text: _say(out, text), c, a, "carol",
                                "alice", workdir / "carol-share")
        _say(out, "  alice's friends: " + ", ".join(
            f"{f.name} ({'online' if f.online else 'offline'})" for f in a.friends()))
    finally:
        _say(out, "  stopping the three nodes")
        for node in nodes.values():
            if node.running:
                await node.stopService()
            else:
                node.friends_list.close()
    _say(out, "done.")


def _demo(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="rsproto-demo-") as tmp:
        def main(reactor: Any) -> defer.Deferred[None]:
            return defer.ensureDeferred(run_demo(reactor, sys.stdout, pathlib.Path(tmp)))
        try:
            task.react(main)
        except SystemExit as e:
            return int(e.code or 0)
    return 0


# --- registration ------------------------------------------------------------------------------

def register(subparsers: Any) -> None:
    """Add ``run``, ``status`` and ``demo``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--base-dir", type=pathlib.Path, default=default_base_dir(),
                        help="account directory (default: %(default)s)")
    p = subparsers.add_parser("run", parents=[common], help="run the node in the foreground")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help="TCP port to listen on, 0 for any (default: %(default)s)")
    p.add_argument("--interface", default="0.0.0.0",
                   help="address to listen on (default: all)")
    p.add_argument("--upnp", action=argparse.BooleanOptionalAction, default=False,
                   help="map our TCP port on the home router with UPnP and announce the "
                        "external address (default: off)")
    p.add_argument("--udp", action=argparse.BooleanOptionalAction, default=True,
                   help="run the UDP port: DHT, hole punching, relays (default: on)")
    p.add_argument("--udp-port", type=int, default=None,
                   help="UDP port for DHT, stunner, relay and TOU (default: the TCP port + 1, "
                        "so 7813 with the default TCP port; any free one with --port 0)")
    p.add_argument("--bootstrap", action="append", default=[], metavar="IP:PORT",
                   help="a DHT entry point (repeatable)")
    p.set_defaults(func=_run)
    p = subparsers.add_parser("status", parents=[common],
                              help="friends, links, round-trip times of the running node")
    p.add_argument("--json", action="store_true", help="print the raw report as JSON")
    p.set_defaults(func=_status)
    subparsers.add_parser(
        "demo", help="nodes meet, chat, mail and share files on this machine (loopback only)"
    ).set_defaults(func=_demo)

