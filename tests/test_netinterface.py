"""NetInterface: the link manager's decisions carried out with real TLS, in memory and on
127.0.0.1."""

from __future__ import annotations

import dataclasses
import ipaddress
import pathlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from twisted.internet import error, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.test import iosim

from pqi.identity.friends import FriendList
from pqi.identity.pgp import ProfileKey
from pqi.identity.sslcert import LocationCertificate, make_location_certificate
from pqi.interfaces import DisconnectReason, LinkEvent, LinkState
from pqi.items.heartbeat import HeartbeatItem
from pqi.link.linkmgr import HELLO_MIN_BYTES, AddressSource, LinkLimits, Outcome
from pqi.link.netinterface import ConnectFailedError, NetInterface
from pqi.wire.address import AddressInfo, NetAddress
from pqi.wire.fields import SslId
from tests.identity_fixtures import *  # noqa: F403
from tests.identity_fixtures import CREATED, make_rsa_key
from tests.service_fakes import on_fresh_reactor


@dataclasses.dataclass(frozen=True)
class Identity:
    """A location without account files (what `pqi.identity.tls.LocalIdentity` asks for)."""

    profile: ProfileKey
    location_key: rsa.RSAPrivateKey
    certificate: LocationCertificate

    @property
    def ssl_id(self) -> SslId:
        return self.certificate.ssl_id


@pytest.fixture(scope="session")
def alice(profile_key: ProfileKey, location_key: rsa.RSAPrivateKey,
          location_cert: LocationCertificate) -> Identity:
    """Alice's location."""
    return Identity(profile_key, location_key, location_cert)


@pytest.fixture(scope="session")
def bob(profile_key2: ProfileKey, location_key2: rsa.RSAPrivateKey,
        location_cert2: LocationCertificate) -> Identity:
    """Bob's location."""
    return Identity(profile_key2, location_key2, location_cert2)


@pytest.fixture(scope="session")
def carol() -> Identity:
    """Carol: a stranger unless a test befriends her."""
    profile = ProfileKey.generate("carol", bits=2048, created=CREATED)
    key = make_rsa_key()
    return Identity(profile, key, make_location_certificate(profile, key, signed_at=CREATED))


@pytest.fixture
def lists(tmp_path: pathlib.Path) -> Iterator[Callable[[str], FriendList]]:
    """Friend lists in sqlite files, closed at the end of the test."""
    made: list[FriendList] = []

    def make(name: str) -> FriendList:
        fl = FriendList(tmp_path / f"{name}.sqlite")
        made.append(fl)
        return fl

    yield make
    for fl in made:
        fl.close()


def befriend(friends: FriendList, other: Identity, address: NetAddress | None = None) -> None:
    """Accept ``other``'s profile and location, as the user would."""
    friends.offer(other.profile.public)
    friends.approve(other.profile.pgp_id)
    addresses = [AddressInfo(address, CREATED, 0)] if address is not None else []
    friends.add_location(other.profile.pgp_id, other.ssl_id, "loc", addresses)


def local(port: int, host: str = "127.0.0.1") -> NetAddress:
    return NetAddress(ipaddress.ip_address(host), port)


FAST = LinkLimits(backoff_base=0.2, backoff_cap=1.0)


class Recorder:
    """Link events of one NetInterface; greets every new link with a heartbeat, as the service
    layer greets with its ServiceInfo list."""

    def __init__(self, net: NetInterface) -> None:
        self.net = net
        self.events: list[LinkEvent] = []
        self.items: list[tuple[SslId, object]] = []
        net.add_link_observer(self.on_event)
        net.handler = lambda peer, item: self.items.append((peer.ssl_id, item))

    def on_event(self, event: LinkEvent) -> None:
        self.events.append(event)
        if event.state is LinkState.CONNECTED:
            self.net.send(event.peer.ssl_id, HeartbeatItem())

    def states(self) -> list[LinkState]:
        return [e.state for e in self.events]


async def until(reactor: Any, condition: Callable[[], bool], what: str,
                rounds: int = 1000) -> None:
    """Let the reactor run until ``condition`` holds (at most ``rounds`` 10 ms steps)."""
    for _ in range(rounds):
        if condition():
            return
        await task.deferLater(reactor, 0.01, lambda: None)
    raise AssertionError(f"timed out waiting for {what}")


def make_net(reactor: Any, ident: Identity, friends: FriendList, **kw: Any) -> NetInterface:
    kw.setdefault("port", 0)
    kw.setdefault("limits", FAST)
    return NetInterface(reactor, ident, friends, **kw)


def port_of(net: NetInterface) -> int:
    assert net.listening is not None
    return net.listening.getHost().port


# -- deterministic, on MemoryReactorClock -----------------------------------------------------

@pytest.mark.slow
def test_dials_with_connect_timeout_and_backs_off_after_refusal(alice: Identity, bob: Identity,
                                                               lists: Any) -> None:
    """A friend's address is dialled through a TCP endpoint with the 5 s connect timeout; a
    refusal is recorded and the next dial waits for the backoff."""
    clock = MemoryReactorClock()
    friends = lists("a")
    befriend(friends, bob, local(9999))
    net = NetInterface(clock, alice, friends, port=None, bind_host="127.0.0.7",
                       limits=LinkLimits(), )
    net.startService()
    clock.advance(1.0)  # the start spread
    (host, port, factory, timeout, bind), = clock.tcpClients
    assert (host, port, timeout, bind) == ("127.0.0.1", 9999, 5.0, ("127.0.0.7", 0))
    factory.clientConnectionFailed(None, Failure(error.ConnectionRefusedError()))
    (attempt,) = net.manager.status(bob.ssl_id).attempts
    assert attempt.outcome is Outcome.REFUSED and attempt.address == local(9999)
    clock.advance(3.9)
    assert len(clock.tcpClients) == 1
    clock.advance(1.2)
    assert len(clock.tcpClients) == 2
    d = net.stopService()
    assert d.called


def test_connect_dials_now_and_fails_with_the_attempt(alice: Identity, bob: Identity,
                                                     lists: Any) -> None:
    """connect() dials the address at once; a refusal fails its Deferred with
    ConnectFailedError carrying the recorded attempt."""
    clock = MemoryReactorClock()
    friends = lists("a")
    befriend(friends, bob)
    net = NetInterface(clock, alice, friends, port=None)
    net.startService()
    d = net.connect(bob.ssl_id, local(7000))
    clock.advance(0)
    (host, port, factory, timeout, _), = clock.tcpClients
    assert (host, port, timeout) == ("127.0.0.1", 7000, 5.0)
    assert not d.called
    factory.clientConnectionFailed(None, Failure(error.ConnectionRefusedError()))
    failure = d.result
    d.addErrback(lambda _: None)
    assert isinstance(failure.value, ConnectFailedError)
    assert failure.value.attempt.outcome is Outcome.REFUSED
    assert failure.value.attempt.address == local(7000)
    assert net.manager.addresses(bob.ssl_id)[0].source is AddressSource.MANUAL
    net.stopService()


def test_listener_caps_half_open_and_times_out_handshakes(alice: Identity, lists: Any) -> None:
    """Connections that never finish TLS count against the per-address cap, are refused above
    it, and are aborted when the handshake deadline passes."""
    clock = MemoryReactorClock()
    net = NetInterface(clock, alice, lists("a"), port=7812,
                       limits=LinkLimits(half_open_per_ip=3, half_open_total=10))
    net.startService()
    (port, factory, _, interface), = clock.tcpServers
    assert (port, interface) == (7812, "127.0.0.1")
    transports = []
    for n in range(3):
        addr = IPv4Address("TCP", "127.0.0.9", 4000 + n)
        proto = factory.buildProtocol(addr)
        assert proto is not None
        t = StringTransport(peerAddress=addr)
        proto.makeConnection(t)
        transports.append(t)
    assert factory.buildProtocol(IPv4Address("TCP", "127.0.0.9", 5000)) is None
    assert factory.buildProtocol(IPv4Address("TCP", "127.0.0.10", 5000)) is not None
    assert net.manager.counters["refused_per_ip"] == 1
    clock.advance(9.9)
    assert not any(t.disconnecting for t in transports)
    clock.advance(0.2)
    assert all(t.disconnecting for t in transports)
    assert net.manager.counters["tls_timeout"] == 4


def test_incoming_tls_starts_with_a_hellos_worth_of_bytes(alice: Identity,
                                                          lists: Any) -> None:
    """An incoming socket that sends nothing, or less than HELLO_MIN_BYTES, gets no TLS
    connection (evicting or timing it out costs a bare socket); the byte that completes
    HELLO_MIN_BYTES starts TLS with everything sent so far; a silent one's loss frees its
    half-open slot like any other."""
    clock = MemoryReactorClock()
    net = NetInterface(clock, alice, lists("a"), port=7812)
    net.startService()
    (_, factory, _, _), = clock.tcpServers
    silent, talking = (IPv4Address("TCP", f"127.0.0.{n}", 4000) for n in (20, 21))
    wires = []
    for addr in (silent, talking):
        wire = factory.buildProtocol(addr)
        wire.makeConnection(StringTransport(peerAddress=addr))
        wires.append(wire)
    assert net.manager.half_open() == 2
    assert [w.tls_started for w in wires] == [False, False]
    assert getattr(wires[0].wrappedProtocol, "_tlsConnection", None) is None
    hello = b"\x16\x03\x01" + bytes(HELLO_MIN_BYTES - 3)  # the start of a ClientHello
    wires[1].dataReceived(hello[:-1])
    assert not wires[1].tls_started
    wires[1].dataReceived(hello[-1:])
    assert wires[1].tls_started
    assert wires[1].wrappedProtocol._tlsConnection is not None
    wires[0].connectionLost(Failure(error.ConnectionDone()))
    assert wires[0].lost.called and net.manager.half_open() == 1
    clock.advance(10.1)  # the handshake deadline closes the one that started
    assert wires[1].transport.disconnecting


def _iosim_link(clock: MemoryReactorClock, client_port: int = 50000,
                dial: int = -1) -> iosim.IOPump:
    """Join a dial on ``clock`` (the newest by default) to the listener on its port over iosim
    (real TLS bytes, no sockets)."""
    _, port, client_factory, _, _ = clock.tcpClients[dial]
    server_factory = next(f for p, f, _, _ in clock.tcpServers if p == port)
    caddr = IPv4Address("TCP", "127.0.0.1", client_port)
    saddr = IPv4Address("TCP", "127.0.0.1", port)
    cproto = client_factory.buildProtocol(saddr)
    sproto = server_factory.buildProtocol(caddr)
    return iosim.connect(sproto, iosim.FakeTransport(sproto, True, saddr, caddr),
                         cproto, iosim.FakeTransport(cproto, False, caddr, saddr),
                         greet=False, clock=clock)


def _dial_over_iosim(clock: MemoryReactorClock, a: NetInterface, b: NetInterface,
                     to: SslId) -> tuple[Any, iosim.IOPump]:
    """Start both interfaces, have ``a`` dial ``b`` (listening on 7812) and join the two
    over iosim; the dial's Deferred and the pump."""
    a.startService()
    b.startService()
    d = a.connect(to, local(7812))
    clock.advance(0)
    pump = _iosim_link(clock)
    pump.flush()
    return d, pump


def test_in_memory_link_reports_up_in_order_and_times_out_without_items(
        alice: Identity, bob: Identity, lists: Any) -> None:
    """Over iosim with one clock: the accepting side reports the link at authentication, the
    dialler only with the first item; a link on which nothing more is said is not stalled by
    the first-item deadline, but one that never carries an item is closed after 30 s."""
    clock = MemoryReactorClock()
    fa, fb = lists("a"), lists("b")
    befriend(fa, bob)
    befriend(fb, alice)
    a = NetInterface(clock, alice, fa, port=None)
    b = NetInterface(clock, bob, fb, port=7812)
    ea: list[LinkEvent] = []
    eb: list[LinkEvent] = []
    a.add_link_observer(ea.append)
    b.add_link_observer(eb.append)
    d, pump = _dial_over_iosim(clock, a, b, bob.ssl_id)
    assert [e.state for e in eb] == [LinkState.CONNECTED] and ea == [] and not d.called
    b.send(alice.ssl_id, HeartbeatItem())
    pump.flush()
    assert [e.state for e in ea] == [LinkState.CONNECTED] and d.called
    assert d.result is a.person(bob.ssl_id)
    # A says nothing: B closes after the first-item deadline, A sees it go.
    clock.advance(29.0)
    pump.flush()
    assert len(eb) == 1
    clock.advance(1.5)
    pump.flush()
    assert eb[-1].state is LinkState.DISCONNECTED and eb[-1].reason is DisconnectReason.TIMEOUT
    assert b.manager.status(alice.ssl_id).attempts[-1].outcome is Outcome.NO_ITEM
    assert ea[-1].state is LinkState.DISCONNECTED
    a.stopService()
    b.stopService()


def test_only_a_links_first_item_goes_to_the_link_manager(
        alice: Identity, bob: Identity, lists: Any) -> None:
    """Over iosim: every item reaches the handler, but only the link's first one is
    told to the link manager (it ends the first-item wait; later items cannot change it)."""
    clock = MemoryReactorClock()
    fa, fb = lists("a"), lists("b")
    befriend(fa, bob)
    befriend(fb, alice)
    got: list[tuple[SslId, object]] = []
    a = NetInterface(clock, alice, fa, port=None,
                     handler=lambda peer, item: got.append((peer.ssl_id, item)))
    b = NetInterface(clock, bob, fb, port=7812)
    told: list[int] = []
    item_received = a.manager.item_received

    def spy(link_id: int, now: float) -> bool:
        told.append(link_id)
        return item_received(link_id, now)

    a.manager.item_received = spy  # type: ignore[method-assign]
    d, pump = _dial_over_iosim(clock, a, b, bob.ssl_id)
    sent = [HeartbeatItem() for _ in range(5)]
    for item in sent:
        b.send(alice.ssl_id, item)
        pump.flush()
        clock.advance(0)
        pump.flush()
    assert d.called and got == [(bob.ssl_id, item) for item in sent]
    person = a.person(bob.ssl_id)
    assert person is not None and told == [person.link_id]
    a.stopService()
    b.stopService()


class _Greeter:
    """Sends a heartbeat on every CONNECTED, as services send their ServiceInfo list."""

    def __init__(self, net: NetInterface) -> None:
        self.net = net
        self.events: list[LinkEvent] = []
        net.add_link_observer(self)

    def __call__(self, event: LinkEvent) -> None:
        self.events.append(event)
        if event.state is LinkState.CONNECTED:
            self.net.send(event.peer.ssl_id, HeartbeatItem())


@pytest.mark.parametrize("first", ["a-dialled", "b-dialled"])
def test_in_memory_simultaneous_dials_keep_the_larger_ids_link(
        alice: Identity, bob: Identity, lists: Any, first: str) -> None:
    """Both dial in the same tick; whichever handshake completes first, both sides end with
    the connection dialled by the larger SSL id, and with one CONNECTED net."""
    clock = MemoryReactorClock()
    fa, fb = lists("a"), lists("b")
    befriend(fa, bob)
    befriend(fb, alice)
    a = NetInterface(clock, alice, fa, port=7001)
    b = NetInterface(clock, bob, fb, port=7002)
    ga, gb = _Greeter(a), _Greeter(b)
    a.startService()
    b.startService()
    a.connect(bob.ssl_id, local(7002))
    b.connect(alice.ssl_id, local(7001))
    clock.advance(0)
    dials = {host_port[1]: n for n, host_port in enumerate(clock.tcpClients)}
    pump_a = _iosim_link(clock, 50000, dials[7002])  # the connection A dialled
    pump_b = _iosim_link(clock, 50001, dials[7001])  # the connection B dialled
    order = [pump_a, pump_b] if first == "a-dialled" else [pump_b, pump_a]
    for _ in range(10):
        for pump in order:
            pump.flush()
    pa, pb = a.person(bob.ssl_id), b.person(alice.ssl_id)
    assert pa is not None and pb is not None and pa.connected and pb.connected
    assert a.manager.link_count() == b.manager.link_count() == 1
    a_dialled_wins = bytes(alice.ssl_id) > bytes(bob.ssl_id)
    winner_port = 50000 if a_dialled_wins else 50001
    wire_a = a._wires[pa.link_id].transport
    wire_b = b._wires[pb.link_id].transport
    ports_a = {wire_a.getHost().port, wire_a.getPeer().port}
    ports_b = {wire_b.getHost().port, wire_b.getPeer().port}
    assert winner_port in ports_a and winner_port in ports_b
    for g in (ga, gb):
        states = [e.state for e in g.events]
        assert states.count(LinkState.CONNECTED) - states.count(LinkState.DISCONNECTED) == 1
    replaced = [x for net, peer in ((a, bob), (b, alice))
                for x in net.manager.status(peer.ssl_id).attempts
                if x.outcome is Outcome.REPLACED]
    replaced += [e for g in (ga, gb) for e in g.events if e.reason is DisconnectReason.REPLACED]
    assert replaced  # both links were authenticated: the tie-break decided
    a.stopService()
    b.stopService()


def test_stop_service_stops_listening(alice: Identity, lists: Any) -> None:
    """stopService closes the listening port and fires once everything is closed."""
    clock = MemoryReactorClock()
    net = NetInterface(clock, alice, lists("a"), port=0)
    net.startService()
    assert net.listening is not None
    d = net.stopService()
    assert d.called and net.listening is None and not net.running


# -- real TLS on 127.0.0.1 --------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.integration
def test_mutual_friends_connect_and_exchange_items(alice: Identity, bob: Identity,
                                                   lists: Any) -> None:
    """Two friends, one knowing the other's address: both see exactly one CONNECTED, the
    item each sends on connect arrives, and stopping reports the link down on the other side."""
    async def body(reactor: Any) -> None:
        fa, fb = lists("a"), lists("b")
        befriend(fb, alice)
        b = make_net(reactor, bob, fb)
        await b.startService()
        befriend(fa, bob, local(port_of(b)))
        a = make_net(reactor, alice, fa)
        await a.startService()
        ra, rb = Recorder(a), Recorder(b)
        await until(reactor, lambda: ra.items and rb.items, "items both ways")
        assert ra.states() == rb.states() == [LinkState.CONNECTED]
        assert ra.events[0].peer.ssl_id == bob.ssl_id
        assert rb.events[0].peer.pgp_id == alice.profile.pgp_id
        pa = a.person(bob.ssl_id)
        assert pa is not None and pa.connected and pa.items_in == 1 and pa.items_out == 1
        assert pa.address == local(port_of(b)) and pa.last_received is not None
        await b.stopService()
        await until(reactor, lambda: len(ra.events) == 2, "A to notice")
        assert ra.events[1].state is LinkState.DISCONNECTED
        assert ra.events[1].reason is DisconnectReason.CLOSED
        await a.stopService()
    on_fresh_reactor(body)


@pytest.mark.slow
@pytest.mark.integration
def test_killed_peer_is_noticed_and_reconnected(alice: Identity, bob: Identity,
                                               lists: Any) -> None:
    """B's connections die without a goodbye; A reports the link down, keeps dialling with
    backoff, and is connected again once B listens again on the same port."""
    async def body(reactor: Any) -> None:
        fa, fb = lists("a"), lists("b")
        befriend(fb, alice)
        b = make_net(reactor, bob, fb)
        await b.startService()
        port = port_of(b)
        befriend(fa, bob, local(port))
        a = make_net(reactor, alice, fa, port=None)
        ra = Recorder(a)
        Recorder(b)
        await a.startService()
        await until(reactor, lambda: ra.states() == [LinkState.CONNECTED], "first link")
        # Kill: abort every connection of B at the TCP level and stop listening.
        await b.listening.stopListening()
        b.listening = None
        for wire in list(b._wires.values()):
            wire.transport.abortConnection()
        b.manager.stop(reactor.seconds())
        await until(reactor, lambda: len(ra.events) == 2, "A to notice the loss")
        assert ra.events[1].reason in (DisconnectReason.CLOSED, DisconnectReason.ERROR)
        await until(reactor, lambda: len(a.manager.status(bob.ssl_id).attempts) >= 3,
                    "A to keep dialling")
        assert a.manager.status(bob.ssl_id).attempts[-1].outcome is Outcome.REFUSED
        b2 = make_net(reactor, bob, fb, port=port)
        Recorder(b2)
        await b2.startService()
        await until(reactor, lambda: ra.states()[-1:] == [LinkState.CONNECTED], "reconnect")
        assert ra.states() == [LinkState.CONNECTED, LinkState.DISCONNECTED, LinkState.CONNECTED]
        await a.stopService()
        await b2.stopService()
    on_fresh_reactor(body)


@pytest.mark.integration
def test_simultaneous_dialling_leaves_exactly_one_link(alice: Identity, bob: Identity,
                                                       lists: Any) -> None:
    """Both dial each other in the same reactor turn: both end with one link, the same TCP
    connection on both sides, and it stays."""
    async def body(reactor: Any) -> None:
        fa, fb = lists("a"), lists("b")
        befriend(fa, bob)
        befriend(fb, alice)
        a, b = make_net(reactor, alice, fa), make_net(reactor, bob, fb)
        await a.startService()
        await b.startService()
        ra, rb = Recorder(a), Recorder(b)
        da = a.connect(bob.ssl_id, local(port_of(b)))
        db = b.connect(alice.ssl_id, local(port_of(a)))
        pa, pb = await da, await db
        await until(reactor, lambda: a.manager.link_count() == b.manager.link_count() == 1,
                    "the duplicate to go")
        await until(reactor, lambda: pa.connected and pb.connected and ra.items and rb.items,
                    "the surviving link")
        wa = a._wires[pa.link_id].transport
        wb = b._wires[pb.link_id].transport
        assert wa.getHost().port == wb.getPeer().port and wa.getPeer().port == wb.getHost().port
        larger = max(alice.ssl_id, bob.ssl_id, key=bytes)
        dialler_port = port_of(b) if larger == alice.ssl_id else port_of(a)
        assert dialler_port in (wa.getPeer().port, wb.getPeer().port)
        for r in (ra, rb):
            ups = r.states().count(LinkState.CONNECTED)
            downs = r.states().count(LinkState.DISCONNECTED)
            assert ups - downs == 1
            assert all(e.reason is DisconnectReason.REPLACED for e in r.events
                       if e.state is LinkState.DISCONNECTED)
        replaced = [x for net, peer in ((a, bob), (b, alice))
                    for x in net.manager.status(peer.ssl_id).attempts
                    if x.outcome is Outcome.REPLACED]
        replaced_events = [e for r in (ra, rb) for e in r.events
                           if e.reason is DisconnectReason.REPLACED]
        assert replaced or replaced_events  # the tie-break did run
        await task.deferLater(reactor, 0.3, lambda: None)
        assert pa.connected and pb.connected and pa.link_id == a.manager.active_link(bob.ssl_id)
        await a.stopService()
        await b.stopService()
    on_fresh_reactor(body)


@pytest.mark.slow
@pytest.mark.integration
def test_non_friend_is_never_connected(alice: Identity, carol: Identity, lists: Any) -> None:
    """Carol befriends Alice but Alice does not befriend Carol: neither side ever reports a
    link, Alice records a TLS refusal and Carol's attempts say the peer closed on her."""
    async def body(reactor: Any) -> None:
        fa, fc = lists("a"), lists("c")
        a = make_net(reactor, alice, fa)
        await a.startService()
        befriend(fc, alice, local(port_of(a)))
        c = make_net(reactor, carol, fc, port=None)
        ra, rc = Recorder(a), Recorder(c)
        await c.startService()
        await until(reactor, lambda: len(c.manager.status(alice.ssl_id).attempts) >= 2,
                    "two attempts")
        assert ra.events == [] and rc.events == []
        outcomes = {x.outcome for x in c.manager.status(alice.ssl_id).attempts}
        assert outcomes <= {Outcome.PEER_CLOSED, Outcome.TLS_REFUSED}
        assert {r[2] for r in a.manager.rejected} == {Outcome.TLS_REFUSED}
        assert "unknown-issuer" in a.manager.rejected[0][3]
        await a.stopService()
        await c.stopService()
    on_fresh_reactor(body)


def _open_idle_sockets(port: int, sources: list[str]) -> list[socket.socket]:
    socks = []
    for src in sources:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((src, 0))
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        socks.append(s)
    return socks


@pytest.mark.slow
@pytest.mark.integration
def test_slowloris_does_not_block_a_real_friend(alice: Identity, bob: Identity,
                                               lists: Any) -> None:
    """Idle sockets from one address hit the per-address cap and from many addresses the
    total cap; a real friend still connects while they are all open."""
    async def body(reactor: Any) -> None:
        fa, fb = lists("a"), lists("b")
        befriend(fa, bob)
        limits = LinkLimits(half_open_per_ip=4, half_open_total=8, backoff_base=0.2,
                            backoff_cap=1.0)
        a = make_net(reactor, alice, fa, limits=limits)
        await a.startService()
        ra = Recorder(a)
        sources = ["127.0.0.1"] * 20 + [f"127.0.3.{n}" for n in range(1, 31)]
        socks = _open_idle_sockets(port_of(a), sources)
        try:
            await until(reactor, lambda: a.manager.counters["accepted"]
                        + a.manager.counters["refused_per_ip"] >= 50, "the attack to land")
            assert a.manager.counters["refused_per_ip"] >= 16
            assert a.manager.half_open() <= 8
            befriend(fb, alice, local(port_of(a)))
            b = make_net(reactor, bob, fb, port=None, bind_host="127.0.2.1")
            rb = Recorder(b)
            await b.startService()
            await until(reactor, lambda: ra.items and rb.items, "the friend's link")
            assert ra.states() == [LinkState.CONNECTED]
            assert a.manager.counters["evicted"] >= 1
        finally:
            for s in socks:
                s.close()
        await a.stopService()
        await b.stopService()
    on_fresh_reactor(body)


@pytest.mark.slow
@pytest.mark.integration
def test_accounts_connect_and_framing_error_closes_only_that_link(tmp_path: pathlib.Path,
                                                                  lists: Any) -> None:
    """Two `pqi.identity.account.Account`s connect; garbage on the stream is a framing error that
    drops the link (reported as FRAMING on the receiving side) and the friends reconnect."""
    from pqi.identity.account import Account
    alice = Account.create(tmp_path / "alice", "alice", "desk", "pw-alice-123", bits=2048)
    bob = Account.create(tmp_path / "bob", "bob", "laptop", "pw-bob-1234", bits=2048)

    async def body(reactor: Any) -> None:
        fa, fb = lists("a"), lists("b")
        befriend(fb, alice)  # type: ignore[arg-type]
        b = make_net(reactor, bob, fb)
        await b.startService()
        befriend(fa, bob, local(port_of(b)))  # type: ignore[arg-type]
        a = make_net(reactor, alice, fa, port=None)
        ra, rb = Recorder(a), Recorder(b)
        await a.startService()
        await until(reactor, lambda: ra.items and rb.items, "the link")
        pa = a.person(bob.ssl_id)
        assert pa is not None and pa.peer.pgp_id == bob.pgp_id
        pa.link.transport.write(b"\x02\x00\x16\x01\xff\xff\xff\xff")  # size above the cap
        await until(reactor, lambda: len(rb.events) >= 2, "B to drop the link")
        assert rb.events[1].reason is DisconnectReason.FRAMING
        await until(reactor, lambda: len(ra.events) >= 3, "A to reconnect")
        assert ra.states()[-1] is LinkState.CONNECTED
        await a.stopService()
        await b.stopService()
    on_fresh_reactor(body)


@pytest.mark.slow
@pytest.mark.integration
def test_person_close_reports_the_reason_and_the_link_comes_back(alice: Identity, bob: Identity,
                                                                 lists: Any) -> None:
    """What the heartbeat service does on silence: PQIPerson.close(TIMEOUT) reports the link
    down with TIMEOUT locally, the link is aborted (a dead link gets no TLS goodbye) so the
    peer sees a transport error, and dialling brings it back."""
    async def body(reactor: Any) -> None:
        fa, fb = lists("a"), lists("b")
        befriend(fb, alice)
        b = make_net(reactor, bob, fb)
        await b.startService()
        befriend(fa, bob, local(port_of(b)))
        a = make_net(reactor, alice, fa, port=None)
        ra, rb = Recorder(a), Recorder(b)
        await a.startService()
        await until(reactor, lambda: ra.items and rb.items, "the link")
        a.person(bob.ssl_id).close(DisconnectReason.TIMEOUT)
        assert ra.events[-1].state is LinkState.DISCONNECTED
        assert ra.events[-1].reason is DisconnectReason.TIMEOUT
        await until(reactor, lambda: len(rb.events) >= 2, "B to notice")
        assert rb.events[1].reason is DisconnectReason.ERROR
        await until(reactor, lambda: ra.states()[-1] is LinkState.CONNECTED, "reconnect")
        assert not a.send(carol_id(), HeartbeatItem())
        await a.stopService()
        await b.stopService()
    on_fresh_reactor(body)


def carol_id() -> SslId:
    return SslId(b"\x99" * 16)


@pytest.mark.slow
@pytest.mark.integration
def test_links_bench_runs_small() -> None:
    """tools/bench/links.py stays runnable: a few friends connect under a small attack, pings
    come back and no link is lost."""
    from tools.bench.links import run
    result = run(friends=3, attackers=24, seconds=1.5, warmup=0.5)
    assert result["connected"] == 3
    assert result["links_lost_during_pings"] == 0
    assert result["rtt_samples"] >= 3
    assert result["attack_connections_opened"] >= 24


@pytest.mark.integration
def test_wrong_peer_at_the_address_is_recorded(alice: Identity, bob: Identity, carol: Identity,
                                               lists: Any) -> None:
    """Alice dials Bob's address but Carol answers there: TLS refuses the link on Alice's side
    and the attempt says WRONG_PEER with the TLS layer's reason."""
    async def body(reactor: Any) -> None:
        fa, fc = lists("a"), lists("c")
        befriend(fc, alice)
        c = make_net(reactor, carol, fc)
        await c.startService()
        befriend(fa, bob)
        befriend(fa, carol)
        a = make_net(reactor, alice, fa, port=None)
        await a.startService()
        with pytest.raises(ConnectFailedError) as e:
            await a.connect(bob.ssl_id, local(port_of(c)))
        assert e.value.attempt.outcome is Outcome.WRONG_PEER
        assert e.value.attempt.detail.startswith("wrong-ssl-id")
        assert a.person(carol.ssl_id) is None and a.connected_peers() == []
        await a.stopService()
        await c.stopService()
    on_fresh_reactor(body)


def test_link_down_of_a_link_not_reported_up_is_not_told(alice: Identity, bob: Identity,
                                                         lists: Any) -> None:
    """A LinkDown for a link that is not the friend's current one (it never reached the
    person, or another replaced it) is neither logged as down nor told to observers; the
    current link's LinkDown is, once."""
    from types import SimpleNamespace

    from pqi.interfaces import PeerIdentity
    from pqi.link.linkmgr import LinkDown
    from pqi.link.person import PQIPerson
    clock = MemoryReactorClock()
    net = NetInterface(clock, alice, lists("a"), port=None)
    events: list[LinkEvent] = []
    net.add_link_observer(events.append)
    person = PQIPerson(PeerIdentity(bob.ssl_id, bob.profile.pgp_id), clock, lambda i, r: None)
    counters = {name: 0 for name in person._done}
    person.attach(5, SimpleNamespace(**counters), None)  # type: ignore[arg-type]
    net.persons[bob.ssl_id] = person
    net._link_down(LinkDown(4, bob.ssl_id, DisconnectReason.CLOSED))
    assert events == [] and person.link_id == 5
    net._link_down(LinkDown(5, bob.ssl_id, DisconnectReason.CLOSED))
    net._link_down(LinkDown(5, bob.ssl_id, DisconnectReason.CLOSED))
    assert [e.state for e in events] == [LinkState.DISCONNECTED]
