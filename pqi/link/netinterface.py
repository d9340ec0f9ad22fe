# -*- test-case-name: tests.test_netinterface -*-
"""NetInterface: the Twisted glue that turns the link manager's decisions into sockets.

Each connection is a stack of three protocols::

    TCP ─ _LinkWire (link id, sees the whole life of the connection)
            └─ TLS (`pqi.identity.tls`: mutual authentication, only friends pass)
                 └─ _LinkStreamer (a `PQIStreamer`, built once the peer is authenticated)

The wire reports TCP up and connection loss (with the TLS refusal reason if TLS refused),
the streamer reports authentication and items; everything goes to the sans-IO
`pqi.link.linkmgr.LinkManager`, driven by a `pqi.driver.CoreDriver` (its one timer): the manager's
actions (dial, close, link up, link down) are carried out here.  A `PQIPerson` per friend
location outlives its links; `LinkEvent`s go to observers when a link is reported up or down.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Iterable
from typing import Any, Final, Literal

from OpenSSL import SSL
from twisted.application.service import Service
from twisted.internet import defer, error
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.interfaces import IAddress, IListeningPort
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from zope.interface import directlyProvides, implementer, providedBy

from pqi.driver import CoreDriver
from pqi.identity.friends import FriendList
from pqi.identity.friends import UnknownFriendError as UnknownLocationError
from pqi.identity.tls import (
    AuthenticatedPeer,
    IPeerAuthenticated,
    LocalIdentity,
    TLSOptions,
    TLSRefusal,
    client_endpoint_factory,
    server_factory,
    verdict_of,
)
from pqi.interfaces import (
    DisconnectReason,
    IItemSender,
    INetInterface,
    LinkEvent,
    LinkState,
    PeerIdentity,
)
from pqi.link.linkmgr import (
    HELLO_MIN_BYTES,
    AddressSource,
    Attempt,
    Close,
    Dial,
    DialUdp,
    LinkDown,
    LinkLimits,
    LinkManager,
    LinkUp,
    Outcome,
    Path,
)
from pqi.link.listener import listen_tcp
from pqi.link.person import ItemHandler, PQIPerson
from pqi.wire.address import DEFAULT_PORT, NetAddress
from pqi.wire.fields import SslId
from pqi.wire.streamer import Item, PQIStreamer, Sent

__all__ = ["NetInterface", "DEFAULT_PORT", "CLOSE_GRACE", "LinkObserver", "ConnectFailedError",
           "PathFailedError", "UdpDialer", "LINK_BUFFER_SIZE"]

#: Seconds a cleanly closed link may take to flush before it is aborted.
CLOSE_GRACE = 5.0
#: Bytes a link's TCP socket is read (and its write buffer filled) at a time: Twisted's
#: default is 64 KiB; a busy link then pays one reactor turn and one TLS pass per 64 KiB
#: (256 KiB reads cost a downloader 10-20 % more CPU per GiB than 1 MiB ones,
#: docs/transfer.md).
LINK_BUFFER_SIZE: Final = 1024 * 1024

LinkObserver = Callable[[LinkEvent], object]

_ABORT_REASONS = (DisconnectReason.TIMEOUT, DisconnectReason.TLS, DisconnectReason.FRAMING,
                  DisconnectReason.ERROR)


class ConnectFailedError(ConnectionError):
    """`NetInterface.connect` could not reach the friend at the address given; ``attempt``
    says how it failed (refused, timed out, TLS refused and why, wrong peer...)."""

    def __init__(self, ssl_id: SslId, attempt: Attempt) -> None:
        super().__init__(f"{ssl_id} at {attempt.address}: {attempt.outcome.value}"
                         + (f" ({attempt.detail})" if attempt.detail else ""))
        self.ssl_id = ssl_id
        self.attempt = attempt


class PathFailedError(Exception):
    """A UDP path (hole punching, relay) could not be set up; ``outcome`` is the reason the
    link manager records (`Outcome.NAT_TYPE`, `Outcome.NO_PROXY`, `Outcome.UDP_TIMEOUT`...)."""

    def __init__(self, outcome: Outcome, detail: str) -> None:
        super().__init__(f"{outcome.value}: {detail}")
        self.outcome = outcome
        self.detail = detail


#: Brings up a UDP path: ``(dial, factory)``; connects ``factory`` over TOU once the path is
#: up, fails with `PathFailedError`.  Plugged in by the node's UDP port (`services.nat.udpport`).
UdpDialer = Callable[[DialUdp, Factory], defer.Deferred]


def _net_address(addr: IAddress) -> NetAddress | None:
    if isinstance(addr, (IPv4Address, IPv6Address)):
        return NetAddress(ipaddress.ip_address(addr.host.split("%")[0]), addr.port)
    return None


def _source_of(address: NetAddress) -> AddressSource:
    host = address.host
    return AddressSource.LOCAL if (host.is_private or host.is_loopback) else AddressSource.EXTERNAL


def _tls_verdict_refusal(tls: object) -> tuple[TLSRefusal, str] | None:
    """The refusal `pqi.identity.tls` decided for this connection, if any."""
    try:
        verdict = verdict_of(tls)  # type: ignore[arg-type]
    except TypeError:  # not a connection of pqi.identity.tls's factories
        return None
    if verdict is None or verdict.refusal is None:
        return None
    return verdict.refusal, verdict.detail


def _peer_closed_tls(tls: object) -> bool:
    """Whether the peer sent its TLS close_notify: a clean close even if TCP then saw a reset
    (our own close_notify reply may hit an already closed socket)."""
    get_handle = getattr(tls, "getHandle", None)
    if get_handle is None:
        return False
    try:
        return bool(get_handle().get_shutdown() & SSL.RECEIVED_SHUTDOWN)
    except SSL.Error:
        return False


class _LinkWire(ProtocolWrapper):
    """The bottom of a link's stack: knows its link id, sees TCP up and the final loss.

    On an incoming connection the TLS layer above starts once the peer has sent
    `HELLO_MIN_BYTES` (less than any ClientHello; the client speaks first in TLS, so nothing
    changes on the wire): a socket that connects and sends nothing or trickles, as the sockets
    of an attack on the half-open slots do, costs no TLS state and is evicted or timed out
    (`pqi.link.linkmgr.TLS_HANDSHAKE_TIMEOUT`) as a bare socket.
    """

    factory: _WireFactory

    def __init__(self, factory: _WireFactory, wrapped: object, link_id: int) -> None:
        super().__init__(factory, wrapped)  # type: ignore[arg-type]
        self.link_id = link_id
        self.lost = defer.Deferred()
        self.streamer: _LinkStreamer | None = None
        #: The TLS layer is connected (at once when we dialled, else once the peer sent
        #: `HELLO_MIN_BYTES`); the bytes before that wait here.
        self.tls_started = factory.link_id is not None
        self._early = b""

    def makeConnection(self, transport: Any) -> None:  # noqa: N802
        if self.tls_started:
            super().makeConnection(transport)
            return
        # ProtocolWrapper's makeConnection, less connecting the TLS layer.
        directlyProvides(self, providedBy(transport))
        Protocol.makeConnection(self, transport)
        self.factory.registerProtocol(self)

    def connectionMade(self) -> None:
        # Called by ProtocolWrapper.makeConnection before TLS starts: this is "TCP up".
        # The streamer already groups small items per write; Nagle would only add delay.
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)
        if hasattr(self.transport, "bufferSize"):
            self.transport.bufferSize = LINK_BUFFER_SIZE
        self.factory.net._wire_made(self)

    def dataReceived(self, data: bytes) -> None:
        if self.streamer is None:  # still in the handshake: progress matters for eviction
            self.factory.net.manager.data_received(self.link_id, len(data))
        if not self.tls_started:
            self._early += data
            if len(self._early) < HELLO_MIN_BYTES:  # less than any ClientHello: wait
                return
            data, self._early = self._early, b""
            self.tls_started = True
            self.wrappedProtocol.makeConnection(self)
        super().dataReceived(data)

    def connectionLost(self, reason: Failure) -> None:
        if not self.tls_started:  # the peer never sent a byte: no TLS layer to tell
            self.factory.unregisterProtocol(self)
            self.wrappedProtocol = None
            self.factory.net._wire_lost(self, reason, None, False)
            self.lost.callback(None)
            return
        refusal = _tls_verdict_refusal(self.wrappedProtocol)
        said_goodbye = _peer_closed_tls(self.wrappedProtocol)
        super().connectionLost(reason)
        self.factory.net._wire_lost(self, reason, refusal, said_goodbye)
        self.lost.callback(None)


class _WireFactory(WrappingFactory):
    """Wraps a TLS factory; for a listener it also admits (or refuses) each connection."""

    #: No "Starting factory" line per connection in the node's log.
    noisy = False

    protocol = _LinkWire

    def __init__(self, net: NetInterface, tls_factory: Factory, link_id: int | None,
                 path: Path | None = None) -> None:
        super().__init__(tls_factory)
        self.net = net
        self.link_id = link_id
        self.path = path

    def buildProtocol(self, addr: IAddress) -> _LinkWire | None:
        link_id = self.link_id
        if link_id is None:
            link_id = self.net._admit(addr, self.path)
            if link_id is None:
                return None
        return _LinkWire(self, self.wrappedFactory.buildProtocol(addr), link_id)


@implementer(IPeerAuthenticated)
class _LinkStreamer(PQIStreamer):
    """The streamer of one authenticated link; tells the NetInterface who and what arrived."""

    def __init__(self, net: NetInterface) -> None:
        super().__init__(net.reactor, on_item=self._on_item)
        self.net = net
        self.auth: AuthenticatedPeer | None = None
        self.wire: _LinkWire | None = None
        self.person: PQIPerson | None = None  # set while this is the person's current link

    def peerAuthenticated(self, peer: AuthenticatedPeer) -> None:  # noqa: N802
        self.auth = peer
        self.peer = str(peer.ssl_id)

    def connectionMade(self) -> None:
        super().connectionMade()
        wire = getattr(self.transport, "transport", None)
        if isinstance(wire, _LinkWire) and self.auth is not None:
            self.wire = wire
            wire.streamer = self
            self.net._authenticated(wire, self.auth)
        else:  # not under our wire: nothing can route it
            self.transport.abortConnection()

    def dataReceived(self, data: bytes | memoryview) -> None:  # noqa: N802
        # Any read proves the link alive (a large sliced item takes a while to complete).
        if self.person is not None:
            self.person.last_received = self.net.reactor.seconds()
        super().dataReceived(data)

    def _on_item(self, item: Item) -> None:
        if self.wire is not None:
            self.net._item(self.wire.link_id, item, first=self.items_in == 1)


class _StreamerFactory(Factory):
    #: No "Starting factory" line per connection in the node's log.
    noisy = False

    def __init__(self, net: NetInterface) -> None:
        self.net = net

    def buildProtocol(self, addr: IAddress) -> _LinkStreamer:  # noqa: N802
        return _LinkStreamer(self.net)


@implementer(INetInterface, IItemSender)
class NetInterface(Service):
    """Listener, dialler and link bookkeeping of one location.

    ``identity`` is our account (`pqi.identity.account.Account` or anything
    `pqi.identity.tls.LocalIdentity`),
    ``friends`` the friend list the TLS layer admits from and the friend locations (with their
    addresses) are loaded from when the service starts.  ``port`` is the TCP port to listen on
    (0: any free one, None: do not listen) on ``interface``; ``bind_host`` the source address of
    outgoing connections (None: the system's choice).  ``handler(peer, item)`` receives every
    item of every friend.
    """

    log = Logger()

    def __init__(self, reactor: Any, identity: LocalIdentity, friends: FriendList, *,
                 port: int | None = DEFAULT_PORT, interface: str = "127.0.0.1",
                 bind_host: str | None = None, handler: ItemHandler | None = None,
                 limits: LinkLimits = LinkLimits(), rng: random.Random | None = None,
                 tls_options: TLSOptions | None = None) -> None:
        self.reactor = reactor
        self.identity = identity
        self.friends = friends
        self.port_number = port
        self.interface = interface
        self.bind_host = bind_host
        self.handler = handler
        self.ssl_id: SslId = identity.certificate.ssl_id
        self.manager = LinkManager(self.ssl_id, rng=rng, limits=limits)
        self.tls_options = tls_options or TLSOptions(
            handshake_timeout=limits.tls_handshake_timeout)
        self.persons: dict[SslId, PQIPerson] = {}
        self.listening: IListeningPort | None = None
        self._observers: list[LinkObserver] = []
        self._dials: dict[int, defer.Deferred] = {}
        self._wires: dict[int, _LinkWire] = {}
        self._waiters: dict[SslId, list[tuple[defer.Deferred, NetAddress, float]]] = {}
        #: Drives the manager: carries out its actions, then fails the `connect` callers
        #: whose address has failed, and keeps the manager's timer.
        self.driver = CoreDriver(self.manager, reactor, self._do, after=self._fail_waiters)
        self._streamers = _StreamerFactory(self)
        #: How UDP paths are brought up (None: no UDP port, so no UDP paths).
        self.udp_dialer: UdpDialer | None = None
        self._server_tls = server_factory(identity, friends, self._streamers,
                                          options=self.tls_options, clock=reactor)
        #: The ban list (`pqi.interfaces.IAddressFilter`); None accepts every address.
        self.address_filter: Any = None
        #: Connections refused (in) and dials not made (out) because of ``address_filter``.
        self.banned_refusals = 0

    def accepts_address(self, host: Any) -> bool:
        """Whether ``host`` passes the address filter (UDP traffic asks this too)."""
        if self.address_filter is None or self.address_filter.accepts(host):
            return True
        self.banned_refusals += 1
        return False

    def link_address(self, ssl_id: SslId) -> NetAddress | None:
        """Where the peer's current link comes from: its TCP peer, or for a TOU link the UDP
        address its segments come from (a link set up by UDP has no dialled address)."""
        person = self.persons.get(ssl_id)
        wire = getattr(person.link, "wire", None) if person is not None else None
        transport = getattr(wire, "transport", None)
        if transport is None:
            return None if person is None else person.address
        return _net_address(transport.getPeer())

    def report_abuse(self, host: Any, what: str) -> bool:
        """Our DHT or relay caught ``host`` abusing it: the address filter (the ban list) is
        told, when it takes reports; returns whether it took this one."""
        report = getattr(self.address_filter, "report_abuse", None)
        return bool(report(host, what)) if report is not None else False

    # -- Service ---------------------------------------------------------------------------

    def startService(self) -> defer.Deferred:  # noqa: N802
        """Load the friend locations, listen, and start dialling."""
        super().startService()
        now = self.reactor.seconds()
        for location in self.friends.locations():
            self._load_location(location.ssl_id, now)
        self.manager.start(now)
        self.driver.service()
        if self.port_number is None:
            return defer.succeed(None)
        return self.listen(self.port_number)

    def stopService(self) -> defer.Deferred:  # noqa: N802
        """Stop listening, close every link cleanly; fires when all connections are gone."""
        super().stopService()
        waits = []
        if self.listening is not None:
            waits.append(defer.maybeDeferred(self.listening.stopListening))
            self.listening = None
        self.manager.stop(self.reactor.seconds())
        self.driver.service()
        waits.extend(w.lost for w in self._wires.values())
        return defer.DeferredList(waits, consumeErrors=True).addCallback(lambda _: None)

    # -- INetInterface ---------------------------------------------------------------------

    def listen(self, port: int) -> defer.Deferred:
        """Accept connections on ``port`` (0: any); fires with the `IListeningPort` (a
        `pqi.link.listener.BoundedPort`: a bounded number of accepts per reactor turn)."""
        def listening(p: IListeningPort) -> IListeningPort:
            self.listening = p
            self.log.info("listening on {interface}:{port}", interface=self.interface,
                          port=p.getHost().port)
            return p

        factory = _WireFactory(self, self._server_tls, None)
        return defer.maybeDeferred(listen_tcp, self.reactor, port, factory,
                                   self.interface).addCallback(listening)

    def connect(self, ssl_id: SslId, address: NetAddress) -> defer.Deferred:
        """Dial ``address`` for friend ``ssl_id`` now (it is remembered as a manual address).

        Fires with the friend's `PQIPerson` when its link is up (at once if it already is), or
        fails with `ConnectFailedError` when an attempt at ``address`` fails first.
        """
        person = self.persons.get(ssl_id)
        if person is not None and person.connected:
            return defer.succeed(person)
        d: defer.Deferred = defer.Deferred()
        self._waiters.setdefault(ssl_id, []).append((d, address, self.reactor.seconds()))
        self.add_address(ssl_id, address, AddressSource.MANUAL)
        self.manager.redial(ssl_id, self.reactor.seconds())
        self.driver.service()
        return d

    def add_link_observer(self, observer: LinkObserver) -> None:
        self._observers.append(observer)

    def remove_link_observer(self, observer: LinkObserver) -> None:
        self._observers.remove(observer)

    # -- friends ---------------------------------------------------------------------------

    def add_friend(self, ssl_id: SslId, addresses: Iterable[NetAddress] = ()) -> None:
        """Look after a friend location (already accepted in the friend list)."""
        now = self.reactor.seconds()
        self.manager.add_friend(ssl_id, now, [(a, _source_of(a)) for a in addresses])
        self.driver.service()

    def redial(self, ssl_id: SslId) -> None:
        """Dial a friend location now (the user asked), unless linked or being dialled."""
        self.manager.redial(ssl_id, self.reactor.seconds())
        self.driver.service()

    def remove_friend(self, ssl_id: SslId) -> None:
        """Forget a friend location and close its link."""
        self.manager.remove_friend(ssl_id, self.reactor.seconds())
        self.driver.service()
        self.persons.pop(ssl_id, None)

    def add_address(self, ssl_id: SslId, address: NetAddress,
                    source: AddressSource = AddressSource.DISCOVERY,
                    seen: float | None = None) -> None:
        """Learn an address of a friend location (from discovery, a certificate, the user)."""
        now = self.reactor.seconds()
        if not self.manager.is_friend(ssl_id):
            self.manager.add_friend(ssl_id, now)
        self.manager.add_address(ssl_id, address, source, now, seen)
        self.driver.service()

    # -- IItemSender -----------------------------------------------------------------------

    def send(self, peer: SslId, item: object) -> Sent | Literal[False]:
        """Queue ``item`` for ``peer``: its `Sent` handle, or False when it has no link."""
        person = self.persons.get(peer)
        if person is None or not person.connected:
            return False
        return person.send_item(item)  # type: ignore[arg-type]

    def connected_peers(self) -> list[PeerIdentity]:
        return [p.peer for p in self.persons.values() if p.connected]

    def person(self, ssl_id: SslId) -> PQIPerson | None:
        return self.persons.get(ssl_id)

    # -- from the protocols ----------------------------------------------------------------

    def incoming_factory(self, path: Path) -> Factory:
        """The factory for a connection the peer set up with us over a UDP ``path`` (we are
        the TLS server), e.g. for `tcponudp.TouSocket.connect`."""
        return _WireFactory(self, self._server_tls, None, path)

    def client_factory(self, dial: DialUdp) -> Factory:
        """The factory for our side of ``dial`` (we are the TLS client)."""
        tls = client_endpoint_factory(self.identity, self.friends, self._streamers, dial.ssl_id,
                                      options=self.tls_options, clock=self.reactor)
        return _WireFactory(self, tls, dial.link, dial.path)

    def _admit(self, addr: IAddress, path: Path | None = None) -> int | None:
        address = _net_address(addr)
        if address is None or not self.running:
            return None
        if not self.accepts_address(address.host):
            self.log.info("refused connection from {address}: banned address",
                          address=str(address))
            return None
        link_id = self.manager.incoming(address, self.reactor.seconds(), path)
        self.driver.service()
        if link_id is None:
            self.log.debug("refused connection from {address}: half-open limit",
                           address=str(address))
        return link_id

    def _wire_made(self, wire: _LinkWire) -> None:
        self._wires[wire.link_id] = wire
        self._dials.pop(wire.link_id, None)
        self.manager.tcp_connected(wire.link_id, self.reactor.seconds())
        self.driver.service()

    def _authenticated(self, wire: _LinkWire, peer: AuthenticatedPeer) -> None:
        now = self.reactor.seconds()
        if not self.manager.is_friend(peer.ssl_id):
            # TLS admitted it: a new location of an accepted profile (RetroShare adds those).
            self.manager.add_friend(peer.ssl_id, now)
        self.manager.authenticated(wire.link_id, peer.ssl_id, now)
        self.driver.service()

    def _item(self, link_id: int, item: Item, first: bool = True) -> None:
        """An item arrived on ``link_id`` (``first``: the link's first; only that one can
        change the link manager, so a flood's later items skip it)."""
        if first and self.manager.item_received(link_id, self.reactor.seconds()):
            self.driver.service()
        wire = self._wires.get(link_id)
        if wire is None or wire.streamer is None or wire.streamer.auth is None:
            return
        person = self.persons.get(wire.streamer.auth.ssl_id)
        if person is not None:
            person.deliver(link_id, item)

    def _wire_lost(self, wire: _LinkWire, reason: Failure,
                   refusal: tuple[TLSRefusal, str] | None, said_goodbye: bool) -> None:
        self._wires.pop(wire.link_id, None)
        outcome: Outcome | None = None
        detail = reason.getErrorMessage()
        if wire.streamer is not None and wire.streamer.framing_errors:
            why = DisconnectReason.FRAMING
        elif refusal is not None:
            why = DisconnectReason.TLS
            outcome = (Outcome.WRONG_PEER if refusal[0] is TLSRefusal.WRONG_SSL_ID
                       else Outcome.TLS_TIMEOUT if refusal[0] is TLSRefusal.HANDSHAKE_TIMEOUT
                       else Outcome.TLS_REFUSED)
            detail = f"{refusal[0].value}: {refusal[1]}"
        elif said_goodbye or reason.check(error.ConnectionDone):
            why = DisconnectReason.CLOSED
            detail = "closed by peer" if said_goodbye else detail
        else:
            why = DisconnectReason.ERROR
        self.manager.closed(wire.link_id, why, detail, self.reactor.seconds(), outcome)
        self.driver.service()

    # -- carrying out the manager's actions ------------------------------------------------

    def _fail_waiters(self) -> None:
        """Fail `connect` Deferreds whose address has seen a failed attempt since the call."""
        if not self._waiters:
            return
        failures = []
        for ssl_id in list(self._waiters):
            if not self.manager.is_friend(ssl_id):
                continue
            attempts = self.manager.status(ssl_id).attempts
            keep = []
            for d, address, since in self._waiters[ssl_id]:
                failed = next((a for a in attempts if a.address == address
                               and a.started >= since and a.outcome is not Outcome.CONNECTED),
                              None)
                if failed is None:
                    keep.append((d, address, since))
                else:
                    failures.append((d, ConnectFailedError(ssl_id, failed)))
            if keep:
                self._waiters[ssl_id] = keep
            else:
                del self._waiters[ssl_id]
        for d, e in failures:  # after the bookkeeping: callbacks may re-enter
            d.errback(e)

    def _do(self, action: object) -> None:
        if isinstance(action, Dial):
            self._dial(action)
        elif isinstance(action, DialUdp):
            self._dial_udp(action)
        elif isinstance(action, Close):
            self._close(action)
        elif isinstance(action, LinkUp):
            self._link_up(action)
        elif isinstance(action, LinkDown):
            self._link_down(action)

    def _dial(self, dial: Dial) -> None:
        host = str(dial.address.host)
        if not self.accepts_address(dial.address.host):
            self.manager.dial_failed(dial.link, Outcome.REFUSED, "banned address",
                                     self.reactor.seconds())
            self.driver.service()
            return
        bind = (self.bind_host, 0) if self.bind_host is not None else None
        if dial.address.host.version == 6:
            endpoint = TCP6ClientEndpoint(self.reactor, host, dial.address.port,
                                          timeout=dial.timeout, bindAddress=bind)
        else:
            endpoint = TCP4ClientEndpoint(self.reactor, host, dial.address.port,
                                          timeout=dial.timeout, bindAddress=bind)
        tls = client_endpoint_factory(self.identity, self.friends, self._streamers, dial.ssl_id,
                                      options=self.tls_options, clock=self.reactor)
        d = endpoint.connect(_WireFactory(self, tls, dial.link))
        self._dials[dial.link] = d
        self.log.debug("dialling {ssl_id} at {address}", ssl_id=str(dial.ssl_id),
                       address=str(dial.address))

        def failed(f: Failure) -> None:
            self._dials.pop(dial.link, None)
            if f.check(defer.CancelledError):
                return
            outcome = (Outcome.REFUSED if f.check(error.ConnectionRefusedError)
                       else Outcome.TCP_TIMEOUT if f.check(error.TimeoutError)
                       else Outcome.ERROR)
            self.manager.dial_failed(dial.link, outcome, f.getErrorMessage(),
                                     self.reactor.seconds())
            self.driver.service()

        d.addCallbacks(lambda _: None, failed)

    def _dial_udp(self, dial: DialUdp) -> None:
        if self.udp_dialer is None:
            self.manager.dial_failed(dial.link, Outcome.ERROR, "no UDP port",
                                     self.reactor.seconds())
            return
        d = self.udp_dialer(dial, self.client_factory(dial))
        self._dials[dial.link] = d
        self.log.debug("setting up {path} to {ssl_id}", path=dial.path.value,
                       ssl_id=str(dial.ssl_id))

        def failed(f: Failure) -> None:
            self._dials.pop(dial.link, None)
            if f.check(defer.CancelledError):
                return
            if f.check(PathFailedError):
                outcome, detail = f.value.outcome, f.value.detail
            else:
                outcome, detail = Outcome.ERROR, f.getErrorMessage()
            self.manager.dial_failed(dial.link, outcome, detail, self.reactor.seconds())
            self.driver.service()

        d.addCallbacks(lambda _: None, failed)

    def _close(self, close: Close) -> None:
        dial = self._dials.pop(close.link, None)
        if dial is not None:
            dial.cancel()
            return
        wire = self._wires.get(close.link)
        if wire is None:
            return
        tls = wire.wrappedProtocol
        if close.reason in _ABORT_REASONS or tls is None or wire.streamer is None:
            wire.transport.abortConnection()
            return
        # A registered producer makes TLS wait for it before shutting down: let go first.
        tls.unregisterProducer()
        tls.loseConnection()
        abort = self.reactor.callLater(CLOSE_GRACE, wire.transport.abortConnection)
        wire.lost.addBoth(lambda _: abort.cancel() if abort.active() else None)

    def _link_up(self, up: LinkUp) -> None:
        wire = self._wires.get(up.link)
        if wire is None or wire.streamer is None or wire.streamer.auth is None:
            return
        auth = wire.streamer.auth
        person = self.persons.get(up.ssl_id)
        if person is None:
            person = PQIPerson(PeerIdentity(auth.ssl_id, auth.pgp_id, self._location_name(auth)),
                               self.reactor, self._close_link, self.handler)
            self.persons[up.ssl_id] = person
        person.attach(up.link, wire.streamer, up.address)
        wire.streamer.person = person
        self.log.info("link to {ssl_id} up ({direction}, {address}, {path})",
                      ssl_id=str(up.ssl_id), direction=up.direction.value,
                      address=str(up.address), path=up.path.value if up.path else "?")
        self._emit(LinkEvent(person.peer, LinkState.CONNECTED, address=up.address))
        for d, _, _ in self._waiters.pop(up.ssl_id, []):
            d.callback(person)

    def _link_down(self, down: LinkDown) -> None:
        person = self.persons.get(down.ssl_id)
        if person is None or person.link_id != down.link:
            # Not the link we reported up (it never reached the person, or another one
            # replaced it): the friend did not go down, so nothing is logged or told.
            self.log.debug("link {link} of {ssl_id} gone: {reason}", link=down.link,
                           ssl_id=str(down.ssl_id), reason=down.reason.value)
            return
        address = person.address
        if isinstance(person.link, _LinkStreamer):
            person.link.person = None
        person.detach(down.link)
        self.log.info("link to {ssl_id} down: {reason} ({detail})", ssl_id=str(down.ssl_id),
                      reason=down.reason.value, detail=down.detail)
        self._emit(LinkEvent(person.peer, LinkState.DISCONNECTED, down.reason, address,
                             down.detail))

    def _close_link(self, link_id: int, reason: DisconnectReason) -> None:
        """A person (the heartbeat service, the user) asked to drop its link."""
        wire = self._wires.get(link_id)
        if wire is None:
            return
        self.manager.closed(link_id, reason, "closed locally", self.reactor.seconds())
        self.driver.service()
        self._close(Close(link_id, reason))

    def _emit(self, event: LinkEvent) -> None:
        for observer in list(self._observers):
            try:
                observer(event)
            except Exception:
                self.log.failure("link observer failed on {event}", event=event)

    def _location_name(self, auth: AuthenticatedPeer) -> str:
        try:
            return self.friends.location(auth.ssl_id).name
        except UnknownLocationError:
            return ""

    def _load_location(self, ssl_id: SslId, now: float) -> None:
        location = self.friends.location(ssl_id)
        addresses = [(a.addr, _source_of(a.addr)) for a in location.addresses
                     if a.addr is not None]
        self.manager.add_friend(ssl_id, now, addresses)
