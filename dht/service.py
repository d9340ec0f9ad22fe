# -*- test-case-name: tests.test_dht_service -*-
"""The DHT as a Twisted service: a UDP port, persisted contacts, friend lookups.

State on disk (both optional):

* ``state_file``: JSON ``{"version": 1, "node_id": hex, "contacts": [{"id", "host", "port"}]}``,
  written atomically (temp file, fsync, rename) on stop, read on start so a restarted node keeps
  its id and knows where to start.
* ``bootstrap_file``: one ``ip port`` per line (like the draft's ``kad.ini``; ``#`` starts a
  comment); read on start and rewritten with the good contacts on stop.
"""

from __future__ import annotations

import ipaddress
import json
import pathlib
import random
from collections.abc import Callable, Iterable
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import IListeningPort, IReactorTime, IReactorUDP
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from pqi.storage import atomic_write

from .krpc import NODE_ID_LEN, Address, Connect, Error, Response
from .node import (
    ConnectReceived,
    DHTConfig,
    DHTEvent,
    DHTNode,
    Lookup,
    LookupDone,
    LookupKind,
    QueryAnswered,
    SourceFlooding,
    dht_node_id,
)
from .protocol import DHTProtocol

__all__ = [
    "DHTService", "FriendNotFoundError", "DHTNotRunningError", "read_bootstrap_file",
    "write_bootstrap_file", "STATE_VERSION",
]

STATE_VERSION = 1
#: Opens the UDP port: ``listen(reactor, port, protocol, interface=...)``.
UdpListen = Callable[..., IListeningPort]
#: Most contacts kept in the state and bootstrap files.
MAX_SAVED_CONTACTS = 200


class FriendNotFoundError(Exception):
    """The friend's DHT id did not answer before the lookup's time limit: it is probably offline
    or unreachable from here."""


class DHTNotRunningError(Exception):
    """The DHT service is not started, so it cannot send anything."""


def read_bootstrap_file(path: pathlib.Path) -> list[Address]:
    """``ip port`` lines; malformed lines are skipped (the file may be hand-edited)."""
    out: list[Address] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) != 2:
            continue
        try:
            host = str(ipaddress.ip_address(parts[0]))
            port = int(parts[1])
        except ValueError:
            continue
        if 0 < port <= 0xFFFF and (host, port) not in out:
            out.append((host, port))
    return out


def write_bootstrap_file(path: pathlib.Path, addrs: Iterable[Address]) -> None:
    atomic_write(path, "".join(f"{h} {p}\n" for h, p in addrs).encode())


def _load_state(path: pathlib.Path) -> tuple[bytes | None, list[Address]]:
    try:
        raw: Any = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None, []
    if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
        return None, []
    node_id = None
    try:
        candidate = bytes.fromhex(str(raw.get("node_id", "")))
        if len(candidate) == NODE_ID_LEN:
            node_id = candidate
    except ValueError:
        pass
    addrs: list[Address] = []
    contacts = raw.get("contacts")
    for c in contacts[:MAX_SAVED_CONTACTS] if isinstance(contacts, list) else []:
        try:
            host = str(ipaddress.ip_address(c["host"]))
            port = int(c["port"])
        except (KeyError, TypeError, ValueError):
            continue
        if 0 < port <= 0xFFFF:
            addrs.append((host, port))
    return node_id, addrs


def _listen_plain(reactor: IReactorUDP, port: int, protocol: DatagramProtocol, *,
                  interface: str = "") -> IListeningPort:
    """Twisted's own UDP port: one read per datagram."""
    return reactor.listenUDP(port, protocol, interface=interface)


class DHTService(Service):
    """Runs one DHT node on a UDP port of an injected reactor."""

    log = Logger()

    def __init__(self, reactor: IReactorUDP, port: int, *, interface: str = "",
                 node_id: bytes | None = None, ssl_id: bytes | None = None,
                 bootstrap: Iterable[Address] = (), bootstrap_file: pathlib.Path | None = None,
                 state_file: pathlib.Path | None = None, config: DHTConfig | None = None,
                 rng: random.Random | None = None,
                 other_handler: Callable[[bytes, Address], None] | None = None,
                 other_batch_handler: Callable[[list[bytes], Address], None] | None = None,
                 address_filter: Callable[[str], bool] | None = None,
                 listen: UdpListen | None = None) -> None:
        self.reactor = reactor
        #: How the port is opened; by default ``reactor.listenUDP`` (the node gives
        #: `tcponudp.udpport.listen_udp`, whose port reads bursts in one system call).
        self.listen: UdpListen = listen or _listen_plain
        #: Asked for every datagram's host in and out (`dht.protocol.DHTProtocol`).
        self.address_filter = address_filter
        self.clock: IReactorTime = reactor  # type: ignore[assignment]
        self.port_number = port
        self.interface = interface
        self.bootstrap = list(bootstrap)
        self.bootstrap_file = bootstrap_file
        self.state_file = state_file
        self.config = config
        self.rng = rng or random.SystemRandom()
        self.other_handler = other_handler
        self.other_batch_handler = other_batch_handler
        if ssl_id is not None:
            node_id = dht_node_id(ssl_id)
        self._node_id = node_id
        self.node: DHTNode | None = None
        self.protocol: DHTProtocol | None = None
        self.listening: IListeningPort | None = None
        #: Called with (ssl id, address) whenever `find_friend` locates a friend.
        self.friend_found: list[Callable[[bytes, Address], None]] = []
        #: Stoppers of the friend searches in progress (run by stopService).
        self._searches: set[Callable[[], None]] = set()
        #: Given each host the node starts ignoring for flooding it (the ban list).
        self.flooding: Callable[[str], None] | None = None
        #: Given the BitDHT ``connect`` queries (the relay layer); None: they are ignored.
        self.connect_received: Callable[[Connect, Address], None] | None = None
        #: What waits for the node's events: lookups and ping tickets (bounded by the node's
        #: own bound on queries in flight, `DHTConfig.max_pending`, and by its lookups).
        self._lookups: dict[Lookup, defer.Deferred[Lookup]] = {}
        self._pings: dict[int, defer.Deferred[Response | Error | None]] = {}

    # --- lifecycle ---------------------------------------------------------------------------

    def startService(self) -> None:
        saved_id, saved = (None, [])
        if self.state_file is not None:
            saved_id, saved = _load_state(self.state_file)
        node_id = self._node_id or saved_id or self.rng.randbytes(NODE_ID_LEN)
        now = self.clock.seconds()
        self.node = DHTNode(node_id, self.config, rng=self.rng, now=now)
        self.node.accept_connect = self.connect_received is not None
        self.protocol = DHTProtocol(self.node, self.clock, other_handler=self.other_handler,
                                    other_batch_handler=self.other_batch_handler,
                                    on_event=self._event, address_filter=self.address_filter)
        self.listening = self.listen(self.reactor, self.port_number, self.protocol,
                                     interface=self.interface)
        super().startService()
        entry = list(self.bootstrap)
        if self.bootstrap_file is not None:
            entry += [a for a in read_bootstrap_file(self.bootstrap_file) if a not in entry]
        entry += [a for a in saved if a not in entry]
        self.log.info("DHT node {node_id} on UDP port {port}, {n} entry points",
                      node_id=node_id.hex(), port=self.port, n=len(entry))
        if entry:
            self.protocol.driver.feed(self.node.bootstrap, entry)

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()
        for stop in list(self._searches):
            stop()
        self._lookups.clear()
        self._pings.clear()
        node = self.node
        if node is not None:
            now = self.clock.seconds()
            good = [c for c in node.routing if c.is_good(now)][:MAX_SAVED_CONTACTS]
            if self.state_file is not None:
                state = {"version": STATE_VERSION, "node_id": node.node_id.hex(),
                         "contacts": [{"id": c.node_id.hex(), "host": c.addr[0],
                                       "port": c.addr[1]} for c in good]}
                atomic_write(self.state_file, json.dumps(state, indent=1).encode())
            if self.bootstrap_file is not None and good:
                write_bootstrap_file(self.bootstrap_file, [c.addr for c in good])
        listening, self.listening = self.listening, None
        if listening is None:
            return defer.succeed(None)
        return defer.maybeDeferred(listening.stopListening)

    @property
    def port(self) -> int:
        """The bound UDP port (useful when started on port 0)."""
        if self.listening is None:
            raise DHTNotRunningError("DHT service is not listening")
        return int(self.listening.getHost().port)

    @property
    def node_id(self) -> bytes:
        return self._require_node().node_id

    def _require_node(self) -> DHTNode:
        if self.node is None or self.protocol is None or not self.running:
            raise DHTNotRunningError("DHT service is not running")
        return self.node

    def _event(self, event: DHTEvent) -> None:
        if isinstance(event, LookupDone):
            d = self._lookups.pop(event.lookup, None)
            if d is not None:
                d.callback(event.lookup)
        elif isinstance(event, QueryAnswered):
            waiting = self._pings.pop(event.ticket, None)
            if waiting is not None:
                waiting.callback(event.reply)
        elif isinstance(event, ConnectReceived) and self.connect_received is not None:
            self.connect_received(event.msg, event.addr)
        elif isinstance(event, SourceFlooding) and self.flooding is not None:
            self.flooding(event.host)

    # --- queries -----------------------------------------------------------------------------

    def ping(self, addr: Address) -> defer.Deferred[Response | Error | None]:
        """Ping ``addr``; fires with its answer, or None if it stayed silent."""
        node = self._require_node()
        d: defer.Deferred[Response | Error | None] = defer.Deferred()
        assert self.protocol is not None
        self._pings[node.ping(addr, self.clock.seconds())] = d
        self.protocol.driver.service()
        return d

    def lookup(self, target: bytes, kind: LookupKind = LookupKind.FIND_NODE, *,
               seeds: Iterable[Address] = (), exact: bool = False) -> defer.Deferred[Lookup]:
        """Run an iterative lookup; fires with the finished `Lookup`."""
        node = self._require_node()
        d: defer.Deferred[Lookup] = defer.Deferred()
        assert self.protocol is not None
        lk = node.lookup(target, self.clock.seconds(), kind, exact=exact, seeds=seeds)
        self._lookups[lk] = d
        self.protocol.driver.service()
        return d

    def announce(self, info_hash: bytes, port: int) -> defer.Deferred[Lookup]:
        """get_peers for ``info_hash``, then announce_peer to the closest nodes that answered."""
        def announce(lk: Lookup) -> Lookup:
            node = self._require_node()
            assert self.protocol is not None
            self.protocol.driver.feed(node.announce, lk, port)
            return lk
        return self.lookup(info_hash, LookupKind.GET_PEERS).addCallback(announce)

    def find_friend(self, ssl_id: bytes, *, retry_interval: float = 10.0,
                    timeout: float | None = None) -> defer.Deferred[Address]:
        """Locate a friend by its BitDHT id; fires with its UDP (and TCP) address.

        Repeats ``find_node`` lookups for the derived id until a node with exactly that id
        answers, every ``retry_interval`` seconds; `FriendNotFoundError` after ``timeout``,
        `DHTNotRunningError` if the service stops first.  ``ssl_id`` must be 16 bytes
        (`ValueError` otherwise).
        """
        target = dht_node_id(ssl_id)
        retry: list[Any] = []  # the pending callLater, if any

        def stop_retrying() -> None:
            self._searches.discard(on_stop)
            while retry:
                call = retry.pop()
                if call.active():
                    call.cancel()

        def on_stop() -> None:
            stop_retrying()
            result.errback(DHTNotRunningError("DHT service stopped during the lookup"))

        result: defer.Deferred[Address] = defer.Deferred(lambda _: stop_retrying())
        deadline = None if timeout is None else self.clock.seconds() + timeout

        def attempt() -> None:
            retry.clear()
            self.lookup(target, exact=True).addCallback(finished)

        def finished(lk: Lookup) -> None:
            if result.called:
                return
            if lk.found is not None:
                stop_retrying()
                self.log.info("friend {ssl_id} found at {addr}", ssl_id=ssl_id.hex(),
                              addr=lk.found)
                for cb in list(self.friend_found):
                    cb(ssl_id, lk.found)
                result.callback(lk.found)
            elif deadline is not None and self.clock.seconds() + retry_interval > deadline:
                stop_retrying()
                result.errback(FriendNotFoundError(f"no DHT node {target.hex()} answered"))
            else:
                retry.append(self.clock.callLater(retry_interval, attempt))

        self._searches.add(on_stop)
        attempt()
        return result
