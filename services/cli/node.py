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
import shutil
import sys
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from services.cli.common import (
    EXIT_FAILURE,
    EXIT_LOCKED,
    CliError,
    NodeNotRunningCliError,
    ask_node,
    base_dir_parent,
    password,
)
from services.cli.identity import FRIENDS_FILE, require_account
from services.cli.terminal import safe
from services.node.lock import AccountLock, AccountLockedError
from services.node.netsettings import NetworkSettings, certificate_addresses

if TYPE_CHECKING:
    from twisted.internet import defer

    from services.node.node import Node

# The node, its services and Twisted are imported by the commands that run one (``run``,
# ``demo``), so that ``status`` and the other short commands start fast.

__all__ = ["register", "run_demo", "format_status"]


# --- run ---------------------------------------------------------------------------------------

def _run(args: argparse.Namespace) -> int:
    base: pathlib.Path = args.base_dir
    require_account(base)
    lock = AccountLock(base)
    try:
        lock.acquire()
    except AccountLockedError as e:
        raise CliError(str(e), EXIT_LOCKED) from e
    try:
        return _run_locked(args, lock)
    finally:
        lock.release()  # the node released it already when it ran; not when it failed early


def _run_locked(args: argparse.Namespace, lock: AccountLock) -> int:
    from twisted.internet import defer
    from twisted.logger import globalLogBeginner

    from pqi.identity.account import Account
    from pqi.identity.errors import AccountError, WrongPasswordError
    from pqi.identity.friends import FriendList
    from pqi.logs import readable_observer
    from services.node.node import Node

    base: pathlib.Path = args.base_dir
    try:
        saved = NetworkSettings.load(base)
        settings = NetworkSettings(saved.port if args.port is None else args.port,
                                   saved.interface if args.interface is None
                                   else args.interface)
    except ValueError as e:
        raise CliError(str(e)) from e
    try:
        account = Account.load(base, password(take=True))
    except WrongPasswordError as e:
        raise CliError("wrong password") from e
    except AccountError as e:
        raise CliError(str(e)) from e
    from twisted.internet import reactor

    globalLogBeginner.beginLoggingTo([readable_observer(sys.stdout)], redirectStandardIO=False)
    friends = FriendList(base / FRIENDS_FILE, now=reactor.seconds)  # type: ignore[attr-defined]
    # Friends are told the address the certificate gives (the machine's, not 0.0.0.0).
    advertise = certificate_addresses(settings)[0].host
    node = Node(reactor, account, friends, port=settings.port, interface=settings.interface,
                advertise_host=str(advertise), control=True, owns_friends=True,
                upnp=args.upnp, udp=_udp_options(args, settings), lock=lock)
    from services.cli.jsonapi import api_service, start_api
    api = api_service(reactor, node, args)
    failed: list[str] = []

    def start() -> None:
        from services.node.heap import freeze_startup_heap, keep_freed_memory

        keep_freed_memory()
        d = node.startService()
        if api is not None:
            d.addCallback(lambda _: start_api(api))
        d.addCallback(lambda _: freeze_startup_heap())

        def cannot(f: Any) -> None:
            failed.append(f.getErrorMessage())
            reactor.stop()  # type: ignore[attr-defined]

        d.addErrback(cannot)

    reactor.callWhenRunning(start)  # type: ignore[attr-defined]
    def stop() -> Any:
        waits = []
        if api is not None and api.running:
            waits.append(api.stopService())
        if node.running:
            waits.append(node.stopService())
        return defer.gatherResults(waits)

    reactor.addSystemEventTrigger("before", "shutdown", stop)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    if failed:
        raise CliError(f"cannot start the node: {failed[0]}", EXIT_FAILURE)
    return 0


# --- UDP paths ---------------------------------------------------------------------------------

def _udp_options(args: argparse.Namespace, settings: NetworkSettings) -> Any:
    """The UDP port's options from ``--udp-port``/``--no-udp`` and ``--bootstrap``."""
    if not args.udp:
        return None
    from services.nat.udpport import UdpOptions
    port = (args.udp_port if args.udp_port is not None
            else (settings.port + 1 if settings.port else 0))
    return UdpOptions(port=port, interface=settings.interface, bootstrap=tuple(args.bootstrap))


def _failed_paths(friend: dict[str, Any]) -> list[str]:
    """Why the better paths failed, for a friend linked by a worse one."""
    failed = [a for a in friend["attempts"][-8:]
              if a["outcome"] != "connected" and a.get("path")]
    return [f"      {a['path']} failed {a['ago']} s ago: {a['outcome']}"
            + (f" ({safe(a['detail'])})" if a["detail"] else "") for a in reversed(failed)]


def _udp_status_line(report: dict[str, Any]) -> list[str]:
    udp = report.get("udp")
    if not udp:
        return []
    return [f"UDP port {udp['port']}: NAT {udp['nat']}, external {udp['external'] or '?'}, "
            f"relaying {udp['relays_carried']} ({udp['relayed_bytes']} bytes)"]


# --- status ------------------------------------------------------------------------------------

def _service_names(ids: list[int]) -> str:
    from services.registry import names as service_names
    known = service_names()
    return " ".join(known.get(i, f"0x{i:04x}") for i in ids) or "none"


def _turtle_status_line(report: dict[str, Any]) -> list[str]:
    t = report.get("services", {}).get("turtle")
    if not t:
        return []
    n = t["tunnels"]
    share = "unlimited" if not t["relay_rate"] else f"{t['relay_rate']:.0f} B/s"
    return [f"turtle: {n['downloading']} tunnels for our downloads, {n['serving']} serving, "
            f"{n['relayed']} relayed for others ({t['relayed_bytes']} bytes in "
            f"{t['relayed_items']} items; relay share {share})"]


def format_status(report: dict[str, Any]) -> str:
    """The ``rsnode status`` text for a node's status report."""
    lines = [f"{report['name']} ({report['location']}, {report['ssl_id']}), "
             f"status {report['status']}, listening on {report['listening'] or 'nothing'}"]
    lines += _udp_status_line(report)
    lines += _turtle_status_line(report)
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
        report = ask_node(args.base_dir, "status")
    except NodeNotRunningCliError:
        require_account(args.base_dir)  # no account at all: say that, not "not running"
        raise
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
    from twisted.internet import task
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await task.deferLater(reactor, 0.02, lambda: None)
    raise CliError("the demo did not get there in time (is loopback networking available?)")


async def run_demo(reactor: Any, out: TextIO, workdir: pathlib.Path, bits: int = 2048) -> None:
    """Three nodes on 127.0.0.1: A-B and B-C friends; A learns about C through B; then A and
    C approve each other and connect directly."""
    from pqi.identity.account import Account
    from pqi.identity.friends import FriendList
    from pqi.link.linkmgr import AddressSource
    from services.node.node import Node

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
        from services.cli.social import demo_lobby
        await demo_lobby(reactor, lambda text: _say(out, text), a, b, c)
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
    from twisted.internet import defer, task

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="rsproto-demo-"))

    def main(reactor: Any) -> defer.Deferred[None]:
        return defer.ensureDeferred(run_demo(reactor, sys.stdout, tmp))

    try:
        task.react(main)
    except SystemExit as e:
        return int(e.code or 0)
    finally:
        if args.keep:
            _say(sys.stdout, f"the demo's accounts and files stay in {tmp} (--keep)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
            _say(sys.stdout, f"removed the demo's folder {tmp} (keep it with --keep)")
    return 0


# --- registration ------------------------------------------------------------------------------

def _hostport(text: str) -> tuple[str, int]:
    from dht.cli import parse_hostport
    return parse_hostport(text)


def register(subparsers: Any) -> None:
    """Add ``run``, ``status`` and ``demo``."""
    common = [base_dir_parent()]
    p = subparsers.add_parser(
        "run", parents=common, help="run the node in the foreground",
        description="Run the node in the foreground until Ctrl-C: listen, dial friends, "
                    "chat, mail, share and transfer files.  Asks for the password.  One node "
                    "per account directory.")
    p.add_argument("--port", type=int, default=None,
                   help="TCP port to listen on, 0 for any (default: the one `rsnode init` "
                        "recorded, 7812 unless told)")
    p.add_argument("--interface", default=None,
                   help="IPv4 address to listen on (default: the one `rsnode init` "
                        "recorded, every interface unless told)")
    p.add_argument("--upnp", action=argparse.BooleanOptionalAction, default=False,
                   help="map our TCP port on the home router with UPnP and announce the "
                        "external address (default: off)")
    p.add_argument("--udp", action=argparse.BooleanOptionalAction, default=True,
                   help="run the UDP port: DHT, hole punching, relays (default: on)")
    p.add_argument("--udp-port", type=int, default=None,
                   help="UDP port for DHT, stunner, relay and TOU (default: the TCP port + 1; "
                        "any free one with --port 0)")
    p.add_argument("--bootstrap", type=_hostport, action="append", default=[],
                   metavar="HOST:PORT", help="a DHT node to join through (repeatable)")
    from services.cli.jsonapi import add_run_options
    add_run_options(p)
    p.set_defaults(func=_run)
    p = subparsers.add_parser(
        "status", parents=common, help="friends, links, round-trip times of the running node",
        description="Ask the running node for its friends: online or not, where, by which "
                    "path, round-trip times, and why recent connection attempts failed.")
    p.add_argument("--json", action="store_true", help="print the raw report as JSON")
    p.set_defaults(func=_status)
    p = subparsers.add_parser(
        "demo", help="nodes meet, chat, mail and share files on this machine (loopback only)",
        description="Three throw-away nodes on 127.0.0.1 become friends, discover each other, "
                    "chat, mail and share a file; their folder is removed at the end.")
    p.add_argument("--keep", action="store_true",
                   help="keep the demo's accounts and files (the folder is printed)")
    p.set_defaults(func=_demo)
