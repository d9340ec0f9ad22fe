# -*- test-case-name: tests.test_udp_node -*-
"""The node's one UDP port: DHT, stunner, relay and TOU, and the UDP paths to friends.

`UdpPort` is a Twisted service that runs a `dht.DHTService` on the port (default 7813, the
draft's) and hangs the rest off it: every datagram that is not bencoded goes to a
`tcponudp.UdpMux`, which answers stunner requests, forwards relayed datagrams we carry, unwraps
relayed datagrams for us and hands TOU segments to a `tcponudp.TouSocket`.  BitDHT ``connect``
queries go to a `services.nat.punch.ConnectCoordinator`.  The port is a `tcponudp.BatchUdpPort`:
a burst the kernel coalesces (``UDP_GRO``) is read in one system call, and a run of TOU segments
in it reaches the `tcponudp.TouSocket` in one call.

It brings up the link manager's UDP paths (`pqi.link.netinterface.NetInterface.udp_dialer`):

``hole-punched TOU``  refused at once when the stunner found our NAT symmetric; otherwise the
                      DHT contacts nearest the friend's DHT id are asked in turn to be the
                      proxy of a PROXY exchange; on START both ends open a TOU connection to
                      each other's mapped address (a simultaneous open that punches both NATs)
                      and TLS runs over it, the requester as TLS client.  The first SYNs
                      leave with a small TTL (``UdpOptions.punch_ttl``, RetroShare's 4) so that
                      they open our NAT but never reach the far one before its own host has
                      sent (`tcponudp.HolePunch`, docs/nat.md);
``relay``             our friends in the DHT table are asked in turn to be the proxy of a RELAY
                      exchange; on START both ends wrap TOU in "RLY1" to the proxy.

A failure is a `pqi.link.netinterface.PathFailedError` with the reason the link manager records:
the NAT type, no proxy, the friend refused, or the TOU handshake timed out.

It also looks friends up in the DHT (docs/dht.md, "Friend lookup"): every
``UdpOptions.lookup_period`` seconds, each friend the link manager has no link to and no
recently working address for (`pqi.link.linkmgr.LinkManager.needs_address`) gets one
`dht.DHTService.find_friend` search (at most one at a time per friend; cancelled when the
friend connects or the port stops).  Where the friend answers, ``host:port``, gives two TCP
candidates, both `pqi.link.linkmgr.AddressSource.DHT`: ``host:port`` (RetroShare listens for TCP on
its UDP port number) and ``host:port-1`` (rsproto's default UDP port is its TCP port + 1).
Adding them starts a dialling round unless one is under way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from twisted.application.service import MultiService
from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from dht import DHTNotRunningError, DHTService, FriendNotFoundError, dht_node_id
from dht.krpc import CONNECT_MODE_PROXY, CONNECT_MODE_RELAY, Connect
from pqi.core import Datagram
from pqi.driver import CoreDriver
from pqi.interfaces import LinkEvent, LinkState
from pqi.link.linkmgr import AddressSource, DialUdp, Outcome, Path
from pqi.link.netinterface import NetInterface, PathFailedError
from pqi.wire.address import NetAddress
from pqi.wire.fields import SslId
from services.nat.punch import ConnectCoordinator, ConnectError, Failed, RelayRequest, Started
from services.nat.relay import RELAY_CHECK_PERIOD, RelayPolicy, relay_end
from tcponudp import (
    HolePunch,
    NatType,
    StunClient,
    StunDone,
    TouConnectionError,
    TouSocket,
    UdpMux,
    listen_udp,
)

__all__ = ["UdpOptions", "UdpPort", "DEFAULT_UDP_PORT", "MAX_PROXIES", "PUNCH_TTL",
           "PUNCH_PERIOD", "HANDSHAKE_TIMEOUT", "FRIEND_LOOKUP_PERIOD", "dht_tcp_candidates"]

Address = tuple[str, int]

#: The draft's UDP port (RetroShare uses its TCP port number for UDP).
DEFAULT_UDP_PORT = 7813
#: Proxies asked, one after the other, for one UDP path.
MAX_PROXIES = 4
#: Seconds between stunner rounds until the NAT type is known.
STUN_RETRY = 20.0
#: Longest delay before punching we ask for (seconds): both ends start together.
PUNCH_DELAY = 1
#: TTL of the first punching SYNs: RetroShare's ``TCP_DEFAULT_FIREWALL_TTL`` (past a home
#: router or two, short of the far side's NAT on the internet).
PUNCH_TTL = 4
#: Seconds the punching SYNs keep that TTL: three SYNs at the 1 s SYN interval, so both ends'
#: mappings exist before either sends a full-TTL SYN even if they start 2 s apart.
PUNCH_PERIOD = 2.5
#: Bound on a punched or relayed TOU handshake (the answering end has no link manager
#: deadline for it; the requester's attempt is also cancelled by its link manager).
HANDSHAKE_TIMEOUT = 30.0
#: Seconds between DHT searches for a friend we cannot reach (one ``find_node`` lookup each).
FRIEND_LOOKUP_PERIOD = 60.0


@dataclasses.dataclass(frozen=True)
class UdpOptions:
    """Where the UDP port listens and whom it starts from."""

    port: int = DEFAULT_UDP_PORT
    interface: str = ""
    #: DHT entry points; also asked for our external address (the stunner).
    bootstrap: tuple[Address, ...] = ()
    #: IP TTL of the first hole-punching SYNs: enough hops to pass our own NAT, too few to
    #: reach the friend's (docs/nat.md; the network lab needs 2).
    punch_ttl: int = PUNCH_TTL
    punch_period: float = PUNCH_PERIOD
    #: Seconds between DHT searches for each friend without a working address.
    lookup_period: float = FRIEND_LOOKUP_PERIOD


class UdpPort(MultiService):
    """One UDP port for DHT, stunner, relay and TOU; the UDP paths of ``net``'s friends."""

    log = Logger()

    def __init__(self, reactor: Any, net: NetInterface, friends: Callable[[], Iterable[SslId]],
                 options: UdpOptions = UdpOptions()) -> None:
        super().__init__()
        self.reactor = reactor
        self.net = net
        self.friends = friends
        self.options = options
        self.mux = UdpMux(clock=reactor.seconds)
        self.dht = DHTService(reactor, options.port, interface=options.interface,
                              ssl_id=bytes(net.ssl_id), bootstrap=options.bootstrap,
                              other_handler=self.mux.datagram_received,
                              other_batch_handler=self.mux.datagrams_received,
                              address_filter=self._accepts_host, listen=listen_udp)
        self.dht.setServiceParent(self)
        self.dht.connect_received = self._connect_received
        self.dht.flooding = lambda host: self._report_abuse(host, "DHT flooding")
        self.relays = RelayPolicy(is_friend=self._is_friend_id, accepts_host=self._accepts_host,
                                  report_abuse=self._report_abuse)
        self.mux.relay_forwarder = self.relays.forwarder
        self.tou = TouSocket(reactor, self.mux)
        self.coordinator: ConnectCoordinator | None = None
        self._coordinator_driver: CoreDriver | None = None
        self.nat = NatType.UNKNOWN
        self.external: Address | None = None
        self._stun: StunClient | None = None
        self._stun_driver: CoreDriver | None = None
        self._tid = 0
        self._loops: list[task.LoopingCall] = []
        self._pending: dict[bytes, tuple[defer.Deferred, DialUdp, Factory, list[Address]]] = {}
        self._friend_ids: dict[bytes, SslId] = {}
        #: Per DHT id: the delayed start or the TOU handshake of a path we asked for (cancelled
        #: when the link manager gives up, so a retry does not meet a stale handshake).
        self._handshakes: dict[bytes, IDelayedCall | defer.Deferred] = {}
        #: The DHT search in progress per friend location.
        self._lookups: dict[SslId, defer.Deferred[Address]] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def startService(self) -> None:  # noqa: N802
        super().startService()
        node = self.dht.node
        assert node is not None and self.dht.protocol is not None
        transport = self.dht.protocol.transport
        self.mux.attach(self._banned_dropping(transport.write),
                        getattr(transport, "socket", None))
        self.coordinator = ConnectCoordinator(
            node.node_id, locate=self._locate, authorise=self._authorise,
            install_relay=lambda s, sa, d, da: self.relays.install(
                s, sa, d, da, self.reactor.seconds()),
            new_tid=self._new_tid, release_relay=self.relays.release)
        self._coordinator_driver = CoreDriver(self.coordinator, self.reactor,
                                              self._coordinator_output)
        self.mux.stun_handler = self._stun_received
        for period, fn in ((RELAY_CHECK_PERIOD, self._check_relays),
                           (STUN_RETRY, self._stun_round)):
            loop = task.LoopingCall(fn)
            loop.clock = self.reactor
            loop.start(period, now=fn == self._stun_round)
            self._loops.append(loop)
        # Not at once: the DHT is still bootstrapping.
        lookups = task.LoopingCall(self._look_up_friends)
        lookups.clock = self.reactor
        lookups.start(self.options.lookup_period, now=False)
        self._loops.append(lookups)
        self.net.add_link_observer(self._link_event)
        self.net.udp_dialer = self.dial
        self.net.manager.set_udp_paths([Path.TOU_PUNCHED, Path.RELAY])
        self.log.info("UDP port {port}: DHT, stunner, relay and TOU", port=self.port)

    def stopService(self) -> defer.Deferred[None]:  # noqa: N802
        self.net.udp_dialer = None
        self.net.manager.set_udp_paths([])
        with contextlib.suppress(ValueError):  # not added when the start failed early
            self.net.remove_link_observer(self._link_event)
        for lookup in list(self._lookups.values()):
            lookup.cancel()
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops.clear()
        for driver in (self._coordinator_driver, self._stun_driver):
            if driver is not None:
                driver.stop()
        self._coordinator_driver = self._stun_driver = None
        self._stun = None
        for d, _, _, _ in list(self._pending.values()):
            d.cancel()
        for target in list(self._handshakes):
            self._stop_handshake(target)
        self.tou.close()
        return defer.maybeDeferred(super().stopService)

    @property
    def port(self) -> int:
        return self.dht.port

    def status(self) -> dict[str, Any]:
        """What ``rsnode status`` shows of the UDP side."""
        return {"port": self.port if self.running else None, "nat": self.nat.value,
                "external": f"{self.external[0]}:{self.external[1]}" if self.external else None,
                "relays_carried": len(self.relays.forwarder),
                "relayed_bytes": self.relays.forwarder.forwarded_bytes}

    # -- friends ---------------------------------------------------------------------------

    def _banned_dropping(self, write: Callable[[bytes, Address], object]
                         ) -> Callable[[bytes, Address], None]:
        """``write`` for the mux (stunner, relay, TOU) that sends nothing to banned hosts."""
        def filtered(data: bytes, addr: Address) -> None:
            if self._accepts_host(addr[0]):
                write(data, addr)
            elif self.dht.protocol is not None:
                self.dht.protocol.banned_dropped += 1
        return filtered

    def _accepts_host(self, host: str) -> bool:
        """The ban list's verdict on a datagram's host (one check for DHT, stunner, relay
        and TOU, in and out)."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return self.net.accepts_address(address)

    def _report_abuse(self, host: str, what: str) -> None:
        """Tell the ban list (through ``net``) that ``host`` abused our DHT or relay."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return
        self.net.report_abuse(address, what)

    def _is_friend_id(self, node_id: bytes) -> bool:
        return node_id in self._friend_map()

    def _friend_map(self) -> dict[bytes, SslId]:
        ids = {dht_node_id(bytes(s)): s for s in self.friends()}
        self._friend_ids = ids
        return ids

    def _authorise(self, peer_id: bytes, mode: int) -> bool:
        ssl_id = self._friend_map().get(peer_id)
        return ssl_id is not None and self.net.manager.is_friend(ssl_id)

    def _locate(self, node_id: bytes) -> Address | None:
        node = self.dht.node
        contact = node.routing.get(node_id) if node is not None else None
        return None if contact is None else contact.addr

    # -- friend lookup ---------------------------------------------------------------------

    def _look_up_friends(self) -> None:
        """One DHT search for each friend we cannot reach and are not searching yet."""
        if not self.dht.running:
            return
        manager, now, period = self.net.manager, self.reactor.seconds(), self.options.lookup_period
        for ssl_id in self.friends():
            if (ssl_id in self._lookups or not manager.is_friend(ssl_id)
                    or not manager.needs_address(ssl_id, now, period)):
                continue
            # One lookup per period: the search gives up before the next one would start.
            d = self.dht.find_friend(bytes(ssl_id), retry_interval=period, timeout=period)
            self._lookups[ssl_id] = d
            d.addBoth(self._lookup_over, ssl_id, d)

    def _lookup_over(self, result: Address | Failure, ssl_id: SslId,
                     d: defer.Deferred[Address]) -> None:
        if self._lookups.get(ssl_id) is d:
            del self._lookups[ssl_id]
        if isinstance(result, Failure):
            result.trap(FriendNotFoundError, DHTNotRunningError, defer.CancelledError)
            self.log.debug("friend {ssl_id} not found in the DHT: {why}", ssl_id=str(ssl_id),
                           why=result.getErrorMessage())
            return
        if not self.net.manager.is_friend(ssl_id):
            return
        candidates = dht_tcp_candidates(result)
        self.log.info("friend {ssl_id} answers in the DHT at {addr}: dialling {candidates}",
                      ssl_id=str(ssl_id), addr=result,
                      candidates=", ".join(str(a) for a in candidates))
        for address in candidates:
            self.net.add_address(ssl_id, address, AddressSource.DHT)

    def _link_event(self, event: LinkEvent) -> None:
        if event.state is LinkState.CONNECTED:
            lookup = self._lookups.pop(event.peer.ssl_id, None)
            if lookup is not None:
                lookup.cancel()

    # -- the stunner -----------------------------------------------------------------------

    def _stun_round(self) -> None:
        if self.nat not in (NatType.UNKNOWN,) or self.dht.node is None:
            return
        peers = list(self.options.bootstrap)
        peers += [c.addr for c in self.dht.node.routing.closest(self.dht.node.node_id, 4)
                  if c.addr not in peers]
        if not peers:
            return
        host = self.options.interface or "0.0.0.0"
        if self._stun_driver is not None:
            self._stun_driver.stop()  # a round still waiting is superseded
        client = self._stun = StunClient((host, self.port))
        self._stun_driver = CoreDriver(client, self.reactor,
                                       lambda output: self._stun_output(client, output))
        self._stun_driver.feed(client.start, peers[:6])

    def _stun_received(self, data: bytes, addr: Address) -> None:
        if self._stun is not None and self._stun_driver is not None:
            self._stun_driver.feed(self._stun.datagram_received, data, addr)

    def _stun_output(self, client: StunClient, output: Datagram | StunDone) -> None:
        if isinstance(output, Datagram):
            self._send([output])
        else:
            self._stun_done(client)

    def _stun_done(self, client: StunClient) -> None:
        if client is not self._stun:
            return
        self._stun = None
        if self._stun_driver is not None:
            self._stun_driver.stop()
            self._stun_driver = None
        result = client.result()
        if result.external is not None:
            self.external = result.external
        if result.nat is not NatType.UNKNOWN:
            self.nat = result.nat
        self.log.info("stunner: external {external}, NAT {nat}", external=result.external,
                      nat=result.nat.value)

    # -- datagrams -------------------------------------------------------------------------

    def _new_tid(self) -> bytes:
        self._tid = (self._tid + 1) & 0xFFFF
        return self._tid.to_bytes(2, "big")

    def _send(self, datagrams: list[Datagram]) -> None:
        """Straight onto the socket: `UdpMux.send` would wrap a datagram for a peer we reach
        through a relay, and only TOU travels through relays (the DHT talks to it directly)."""
        protocol = self.dht.protocol
        if protocol is None or protocol.transport is None:
            return
        for d in datagrams:
            try:
                protocol.transport.write(d.data, d.addr)
            except OSError as e:
                self.log.debug("UDP send to {addr} failed: {e}", addr=d.addr, e=str(e))

    def _connect_received(self, msg: Connect, addr: Address) -> None:
        if self.coordinator is not None and self._coordinator_driver is not None:
            self._coordinator_driver.feed(self.coordinator.connect_received, msg, addr)

    def _coordinator_output(self, output: Any) -> None:
        if isinstance(output, Datagram):
            self._send([output])
        elif isinstance(output, Started):
            self._started(output)
        elif isinstance(output, Failed):
            self._failed(output)
        elif isinstance(output, RelayRequest):
            self.log.info("relay {a} <-> {b} agreed", a=output.a, b=output.b)

    def _check_relays(self) -> None:
        self.relays.check(self.reactor.seconds())

    # -- UDP paths -------------------------------------------------------------------------

    def dial(self, dial: DialUdp, factory: Factory) -> defer.Deferred:
        """`pqi.link.netinterface.UdpDialer`: set up ``dial.path`` to ``dial.ssl_id``."""
        target = dht_node_id(bytes(dial.ssl_id))
        if self.coordinator is None or self.dht.node is None:
            return defer.fail(PathFailedError(Outcome.ERROR, "UDP port not running"))
        if dial.path is Path.TOU_PUNCHED and self.nat is NatType.SYMMETRIC:
            return defer.fail(PathFailedError(
                Outcome.NAT_TYPE, "our NAT is symmetric: a punched hole would not match"))
        contacts = [c for c in self.dht.node.routing.closest(target) if c.node_id != target]
        if dial.path is Path.RELAY:
            friends = self._friend_map()
            contacts = [c for c in contacts if c.node_id in friends]
            if not contacts:
                return defer.fail(PathFailedError(Outcome.NO_PROXY,
                                                  "no friend in the DHT to relay"))
        elif not contacts:
            return defer.fail(PathFailedError(Outcome.NO_PROXY, "no DHT contact to ask"))
        proxies = [c.addr for c in contacts[:MAX_PROXIES]]

        def cancel(_: defer.Deferred) -> None:
            self._pending.pop(target, None)
            if self.coordinator is not None:
                self.coordinator.cancel(target)
            self._stop_handshake(target)

        d: defer.Deferred = defer.Deferred(cancel)
        self._pending[target] = (d, dial, factory, proxies)
        self._ask_next(target)
        return d

    def _ask_next(self, target: bytes) -> None:
        entry = self._pending.get(target)
        if entry is None or self.coordinator is None:
            return
        d, dial, _, proxies = entry
        if not proxies:
            del self._pending[target]
            d.errback(PathFailedError(Outcome.NO_PROXY, "no proxy could reach the friend"))
            return
        proxy = proxies.pop(0)
        mode = CONNECT_MODE_RELAY if dial.path is Path.RELAY else CONNECT_MODE_PROXY
        assert self._coordinator_driver is not None
        self._coordinator_driver.feed(self.coordinator.request, target, proxy, mode,
                                      max_delay=0 if dial.path is Path.RELAY else PUNCH_DELAY)

    def _failed(self, event: Failed) -> None:
        entry = self._pending.get(event.peer_id)
        if entry is None:
            return
        self.log.info("proxy {proxy} failed: {error}", proxy=event.proxy, error=event.error.name)
        if event.error is ConnectError.AUTH_DENIED:
            del self._pending[event.peer_id]
            entry[0].errback(PathFailedError(Outcome.REFUSED, "the friend refused the request"))
            return
        self._ask_next(event.peer_id)

    def _started(self, event: Started) -> None:
        relay = event.mode == CONNECT_MODE_RELAY
        path = Path.RELAY if relay else Path.TOU_PUNCHED
        if event.initiator:
            entry = self._pending.pop(event.peer_id, None)
            if entry is None:
                return
            d, _, factory, _ = entry
        else:
            ssl_id = self._friend_map().get(event.peer_id)
            if ssl_id is None:
                return
            d, factory = defer.Deferred(), self.net.incoming_factory(path)
        peer = _host_port(event.peer)
        if relay:
            self.mux.add_relay_end(relay_end(_host_port(event.own), event.proxy, peer))
        self.log.info("{path} to {peer} via {proxy}", path=path.value, peer=peer,
                      proxy=event.proxy)

        punch = None if relay else HolePunch(self.options.punch_ttl, self.options.punch_period)
        def connect() -> None:
            # A new START supersedes a handshake left over from an earlier attempt.
            tou = self.tou.connect(peer, factory, punch=punch, replace=True,
                                   timeout=HANDSHAKE_TIMEOUT)
            if event.initiator:
                self._handshakes[event.peer_id] = tou
                tou.addBoth(self._handshake_over, event.peer_id, tou)
            tou.addErrback(self._tou_failed, relay, peer)
            tou.chainDeferred(d)

        self._stop_handshake(event.peer_id)
        call = self.reactor.callLater(event.delay, connect)
        if event.initiator:
            self._handshakes[event.peer_id] = call
        if not event.initiator:
            d.addErrback(lambda f: self.log.info("{path} from {peer} failed: {why}",
                                                 path=path.value, peer=peer,
                                                 why=f.getErrorMessage()))

    def _handshake_over(self, result: Any, peer_id: bytes, tou: defer.Deferred) -> Any:
        if self._handshakes.get(peer_id) is tou:
            del self._handshakes[peer_id]
        return result

    def _stop_handshake(self, peer_id: bytes) -> None:
        """Abort the delayed start or the TOU handshake of our attempt towards ``peer_id``."""
        pending = self._handshakes.pop(peer_id, None)
        if isinstance(pending, defer.Deferred):
            pending.cancel()
        elif pending is not None and pending.active():
            pending.cancel()

    def _tou_failed(self, failure: Failure, relay: bool, peer: Address) -> Failure:
        if relay:
            self.mux.remove_relay_end(peer)
        if failure.check(TouConnectionError):
            return Failure(PathFailedError(Outcome.UDP_TIMEOUT,
                                           f"TOU handshake with {peer[0]}:{peer[1]}: "
                                           f"{failure.getErrorMessage()}"))
        return failure


def _host_port(addr: Address) -> Address:
    return (str(ipaddress.ip_address(addr[0])), int(addr[1]))


def dht_tcp_candidates(addr: Address) -> list[NetAddress]:
    """The TCP addresses worth dialling for a friend whose DHT node answers at ``addr``: its
    UDP port number (RetroShare's TCP and UDP ports are the same number), then that number
    minus one (rsproto's default UDP port is its TCP port + 1)."""
    host = ipaddress.ip_address(addr[0])
    return [NetAddress(host, port) for port in (addr[1], addr[1] - 1) if 0 < port <= 0xFFFF]
