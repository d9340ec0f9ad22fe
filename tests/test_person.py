"""PQIPerson: one friend location's items over whichever link is current."""

from __future__ import annotations

import ipaddress

import pytest
from twisted.internet.testing import MemoryReactorClock, StringTransport
from zope.interface.verify import verifyObject

from pqi import decode
from pqi.interfaces import DisconnectReason, IPQInterface, PeerIdentity
from pqi.items.heartbeat import HeartbeatItem
from pqi.link.person import PeerNotConnectedError, PQIPerson
from pqi.wire.address import NetAddress
from pqi.wire.errors import QueueFullError
from pqi.wire.fields import PgpId, SslId
from pqi.wire.item import encode
from pqi.wire.streamer import PQIStreamer

PEER = PeerIdentity(SslId(b"\x42" * 16), PgpId(b"\x24" * 8), "laptop")
ADDR = NetAddress(ipaddress.ip_address("127.0.0.1"), 7812)


def streamer(clock: MemoryReactorClock, **kw: int) -> tuple[PQIStreamer, StringTransport]:
    s = PQIStreamer(clock, **kw)
    t = StringTransport()
    s.makeConnection(t)
    return s, t


def make() -> tuple[PQIPerson, MemoryReactorClock, list, list]:
    clock = MemoryReactorClock()
    closed: list[tuple[int, DisconnectReason]] = []
    received: list[tuple[PeerIdentity, object]] = []
    person = PQIPerson(PEER, clock, lambda link, why: closed.append((link, why)),
                       lambda peer, item: received.append((peer, item)))
    return person, clock, closed, received


def test_provides_ipqinterface() -> None:
    """PQIPerson is the IPQInterface services hold."""
    person, *_ = make()
    assert verifyObject(IPQInterface, person)


def test_send_without_link_raises_and_queues_nothing() -> None:
    """Sending to a friend without a link is a named error, not a silent drop."""
    person, *_ = make()
    with pytest.raises(PeerNotConnectedError) as e:
        person.send_item(HeartbeatItem())
    assert e.value.peer == PEER
    assert not person.connected


def test_send_goes_to_the_current_link_and_counts() -> None:
    """Items go out on the attached link (bytes on its transport) and are counted."""
    person, clock, _, _ = make()
    s, t = streamer(clock)
    clock.advance(100)
    person.attach(7, s, ADDR)
    assert person.connected and person.address == ADDR and person.connected_at == 100
    person.send_item(HeartbeatItem())
    assert t.value().endswith(encode(HeartbeatItem()))  # after the slicing probe
    assert person.items_out == 1 and person.bytes_out == len(t.value())


def test_queue_full_reaches_the_sender() -> None:
    """A peer that reads too slowly makes send_item raise QueueFullError."""
    person, clock, _, _ = make()
    s, _ = streamer(clock, max_queue_bytes=10)
    s.pauseProducing()
    person.attach(1, s, ADDR)
    with pytest.raises(QueueFullError):
        for _ in range(5):
            person.send_item(HeartbeatItem())


def test_items_of_the_current_link_are_delivered_with_time() -> None:
    """Received items reach the handler with the peer identity; last_received follows."""
    person, clock, _, received = make()
    s, _ = streamer(clock)
    person.attach(3, s, ADDR)
    clock.advance(42)
    item = decode(encode(HeartbeatItem()))
    person.deliver(3, item)
    assert received == [(PEER, item)] and person.last_received == 42
    person.deliver(4, item)  # a link that is not (or no longer) current
    assert len(received) == 1 and person.dropped_not_active == 1


def test_handler_failure_does_not_escape() -> None:
    """A buggy handler is logged; the link and the next items are unaffected."""
    clock = MemoryReactorClock()
    calls = []

    def handler(peer: PeerIdentity, item: object) -> None:
        calls.append(item)
        raise RuntimeError("service bug")

    person = PQIPerson(PEER, clock, lambda *a: None, handler)
    s, _ = streamer(clock)
    person.attach(1, s, ADDR)
    person.deliver(1, HeartbeatItem())
    person.deliver(1, HeartbeatItem())
    assert len(calls) == 2


def test_counters_survive_link_replacement_and_close_asks_the_owner() -> None:
    """Counters add up over successive links; close() asks the NetInterface to drop the
    current link with the reason given."""
    person, clock, closed, _ = make()
    s1, _ = streamer(clock)
    person.attach(1, s1, ADDR)
    person.send_item(HeartbeatItem())
    s2, _ = streamer(clock)
    person.attach(2, s2, ADDR)  # replaces link 1
    person.send_item(HeartbeatItem())
    assert person.items_out == 2 and person.links_up == 2
    person.close(DisconnectReason.TIMEOUT)
    assert closed == [(2, DisconnectReason.TIMEOUT)]
    person.detach(1)  # stale: ignored
    assert person.connected
    person.detach(2)
    assert not person.connected and person.items_out == 2 and person.connected_at is None
    person.close(DisconnectReason.LOCAL)
    assert closed == [(2, DisconnectReason.TIMEOUT)]
