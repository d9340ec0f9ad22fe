"""Larger segments between rsproto nodes: the offer in the SYN's checksum and urgent fields.

RetroShare writes zeros in both fields and never reads them, so a RetroShare peer neither sees
an offer nor makes one; the tests show both directions: two offering ends settle on the smaller
offer and send segments that large, while a peer that answers without an offer (RetroShare's
SYN+ACK, or its SYN) gets segments of the usual MSS and nothing else of the wire changes.
"""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from tcponudp.config import DEFAULT_MSS, MAX_OFFER
from tcponudp.packet import CAPABILITY_MAGIC, Flags, TouPacket
from tcponudp.relay import RelayEnd
from tcponudp.stream import DataReceived, State, TouConfig, TouStream
from tcponudp.transport import LARGE_SEGMENT, TouSocket, path_segment_limit
from tcponudp.udpmux import UdpMux
from tests.test_tou_stream import ISS_A, ISS_B, Pair


def _pair(offer_a: int, offer_b: int) -> Pair:
    p = Pair()
    p.a = TouStream(config=TouConfig(offer_segment=offer_a), isn=ISS_A)
    p.b = TouStream(config=TouConfig(offer_segment=offer_b), isn=ISS_B)
    return p


def _transfer(p: Pair, size: int) -> list[TouPacket]:
    """``a`` sends ``size`` bytes; the data segments ``a`` put on the wire."""
    data = bytes(i % 251 for i in range(size))
    p.a.send(data)
    sent: list[TouPacket] = []
    for _ in range(200):
        pa, pb = p.out(p.a), p.out(p.b)
        sent += [x for x in pa if x.payload]
        if not pa and not pb:
            break
        p.feed(p.b, pa)
        p.feed(p.a, pb)
    p.collect()
    got = b"".join(e.data for e in p.events["b"] if isinstance(e, DataReceived))
    assert got == data
    return sent


def test_two_offering_ends_send_the_smaller_offer() -> None:
    """The SYN carries the magic and 8000, the SYN+ACK the magic and 6000; both ends then cut
    segments of 6000 bytes, and the bytes arrive intact."""
    p = _pair(8000, 6000)
    p.b.listen(0.0)
    p.a.connect(0.0)
    (syn,) = p.out(p.a)
    assert (syn.flags, syn.checksum, syn.urgent) == (Flags.SYN, CAPABILITY_MAGIC, 8000)
    p.feed(p.b, [syn])
    (synack,) = p.out(p.b)
    assert (synack.checksum, synack.urgent) == (CAPABILITY_MAGIC, 6000)
    p.feed(p.a, [synack])
    p.exchange()
    assert p.a.state is p.b.state is State.ESTABLISHED
    assert p.a.segment_size == p.b.segment_size == 6000
    assert (p.a.peer_offer, p.b.peer_offer) == (6000, 8000)
    sent = _transfer(p, 30_000)
    assert max(len(x.payload) for x in sent) == 6000
    # Only the SYNs carry the offer: every other segment has RetroShare's zeros there.
    assert all((x.checksum, x.urgent) == (0, 0) for x in sent)


def test_a_peer_without_an_offer_gets_the_usual_segments() -> None:
    """A listener that answers with zeros in both fields (as RetroShare's SYN+ACK always is)
    leaves the offering side at the MSS; so does a SYN without an offer for an offering
    listener, whose SYN+ACK carries its offer in fields the peer ignores."""
    for offer_a, offer_b in ((8000, 0), (0, 8000)):
        p = _pair(offer_a, offer_b)
        p.open()
        assert p.a.segment_size == p.b.segment_size == DEFAULT_MSS
        sent = _transfer(p, 20_000)
        assert max(len(x.payload) for x in sent) == DEFAULT_MSS


def test_syn_without_an_offer_is_retroshares_to_the_byte() -> None:
    """With no offer configured the SYN has zero checksum and urgent pointer, as
    RetroShare's ``TcpPacket::writePacket`` writes them."""
    p = _pair(0, 0)
    p.a.connect(0.0)
    (syn,) = p.out(p.a)
    assert (syn.checksum, syn.urgent, syn.src_port, syn.dst_port) == (0, 0, 0, 0)


def test_simultaneous_open_settles_the_offer_too() -> None:
    """Both ends dial (hole punching) with offers: each takes the other's from its SYN."""
    p = _pair(7000, 9000)
    p.a.connect(0.0)
    p.b.connect(0.0)
    p.exchange()
    p.timer(1.0)
    p.exchange()
    assert p.a.state is p.b.state is State.ESTABLISHED
    assert p.a.segment_size == p.b.segment_size == 7000


def test_offer_is_bounded() -> None:
    """An offer beyond what one datagram holds is refused when configured."""
    with pytest.raises(ValueError):
        TouConfig(offer_segment=MAX_OFFER + 1)


def test_socket_offers_what_the_path_carries_and_nothing_through_a_relay() -> None:
    """`TouSocket` offers `LARGE_SEGMENT` to a loopback peer (its route carries 64 KiB
    packets), nothing to a relayed peer, and nothing at all with ``large_segments=0``."""
    assert path_segment_limit("127.0.0.1") >= LARGE_SEGMENT
    assert path_segment_limit("not-an-address") == 0
    mux = UdpMux()
    sock = TouSocket(Clock(), mux)
    assert sock._config_for(("127.0.0.1", 7000)).offer_segment == LARGE_SEGMENT
    mux.add_relay_end(RelayEnd(local=("127.0.0.1", 1), proxy=("127.0.0.1", 2),
                               remote=("127.0.0.1", 7001)))
    assert sock._config_for(("127.0.0.1", 7001)).offer_segment == 0
    quiet = TouSocket(Clock(), UdpMux(), large_segments=0)
    assert quiet._config_for(("127.0.0.1", 7000)).offer_segment == 0
