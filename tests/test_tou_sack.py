# -*- test-case-name: tests.test_tou_sack -*-
"""SACK ranges between two rsproto TOU ends.

Both ends offer them in the SYN / SYN+ACK (`CAPABILITY_SACK` in the checksum field, which
RetroShare writes as zero and never reads); then a receiver with a hole sends, in its pure
ACKs, the ranges it holds beyond it (the payload of an ACK marked with the same value), and
the sender repairs every hole those ranges show at once instead of one per round trip.  A peer
that does not offer (RetroShare) is never sent such an ACK.  On the simulated network
(`tools.simnet`, via the recovery tests' `Link`), deterministic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock

from pqi.wire.errors import DecodeError, EncodeError
from tcponudp.packet import (
    CAPABILITY_MAGIC,
    CAPABILITY_SACK,
    MAX_SACK_BLOCKS,
    Flags,
    decode_packet,
    decode_sack,
    encode_sack,
    encode_segment,
)
from tcponudp.reassembly import ReceiveBuffer
from tcponudp.relay import RelayEnd
from tcponudp.stream import TouConfig
from tcponudp.transport import TouSocket
from tcponudp.udpmux import UdpMux
from tests.strategies_tou import u32s
from tests.test_tou_recovery import DELAY, MSS, Link
from tools.bench.tou import simulate

LOST = (3, 6, 9, 12)


def _link(a_sack: bool, b_sack: bool) -> Link:
    return Link(config=TouConfig(mss=MSS, idle_timeout=1e9, sack=a_sack),
                config_b=TouConfig(mss=MSS, idle_timeout=1e9, sack=b_sack))


def _resends(link: Link, n: int) -> list[float]:
    return [t for t, k in link.sent if k == n][1:]


def test_sack_repairs_every_hole_within_one_round_trip() -> None:
    """Four segments lost in one window: with SACK all four are sent again before the first
    retransmission's ACK could be back (less than a round trip after it), once each; without
    SACK (RetroShare's wire) each further hole waits for the previous repair's cumulative ACK,
    one round trip apiece."""
    with_sack, without = _link(True, True), _link(False, False)
    assert with_sack.a.sack and with_sack.b.sack and not without.a.sack
    for link in (with_sack, without):
        link.drop = set(LOST)
        link.transfer(20)
        assert link.a.recovery.timeouts == 0
        assert all(link.transmissions(n) == 2 for n in LOST)
        assert all(link.transmissions(n) == 1 for n in range(20) if n not in LOST)
    rtt = 2 * DELAY
    first = _resends(with_sack, LOST[0])[0]
    assert all(_resends(with_sack, n)[0] < first + rtt for n in LOST)
    first = _resends(without, LOST[0])[0]
    for i, n in enumerate(LOST[1:], 1):
        assert _resends(without, n)[0] >= first + i * rtt
    assert any(p.checksum == CAPABILITY_SACK and p.payload for p in with_sack.acks)
    assert with_sack.a.recovery.fast_retransmits == 1


def test_no_sack_unless_both_ends_offer() -> None:
    """One end offering SACK is not enough: the other (RetroShare, or an rsproto end
    configured without it) is never sent a SACK ACK, every ACK has RetroShare's zero
    checksum and no payload, and losses are repaired as without SACK."""
    for a_sack, b_sack in ((True, False), (False, True)):
        link = _link(a_sack, b_sack)
        assert not link.a.sack and not link.b.sack
        link.drop = set(LOST)
        link.transfer(20)
        data_acks = [p for p in link.acks if not p.has(Flags.SYN)]
        assert data_acks and all(p.checksum == 0 and not p.payload for p in data_acks)


def test_syn_offers_sack_with_or_without_larger_segments() -> None:
    """The SYN carries `CAPABILITY_SACK` and the segment offer (0: none); a stream that
    offers only larger segments keeps `CAPABILITY_MAGIC`."""
    from tcponudp.stream import TouStream

    for config, fields in ((TouConfig(sack=True), (CAPABILITY_SACK, 0)),
                           (TouConfig(sack=True, offer_segment=8000), (CAPABILITY_SACK, 8000)),
                           (TouConfig(offer_segment=8000), (CAPABILITY_MAGIC, 8000))):
        s = TouStream(config=config, isn=1)
        s.connect(0.0)
        (syn,) = [decode_packet(d.data) for d in s.drain(0.0)]  # type: ignore[union-attr]
        assert (syn.checksum, syn.urgent) == fields


def test_a_malformed_sack_is_counted_and_ignored() -> None:
    """A SACK ACK whose payload is not whole ranges is counted undecodable and changes
    nothing; the transfer then completes."""
    link = _link(True, True)
    bad = encode_segment(77 + 1, link.a._snd.nxt, Flags.ACK, 1000, b"\x00" * 7,
                         checksum=CAPABILITY_SACK)
    link.a.datagram_received(bad, link.now)
    assert link.a.undecodable == 1
    link.transfer(5)


def test_receiver_ranges_merge_and_are_bounded() -> None:
    """Adjacent out-of-order segments make one range; ranges come nearest the cumulative ACK
    first, at most the limit; sequence numbers wrap."""
    rx = ReceiveBuffer(1 << 20)
    rx.rcv_nxt = 2**32 - 100
    for k in (1, 2, 4, 6, 7, 9):  # segments of 100 bytes; 0, 3, 5, 8 missing
        rx.receive((rx.rcv_nxt + 100 * k) % 2**32, b"x" * 100)
    base = rx.rcv_nxt
    expect = [(base + 100, base + 300), (base + 400, base + 500), (base + 600, base + 800),
              (base + 900, base + 1000)]
    assert rx.sack_blocks(MAX_SACK_BLOCKS) == [(s % 2**32, e % 2**32) for s, e in expect]
    assert rx.sack_blocks(2) == [(s % 2**32, e % 2**32) for s, e in expect[:2]]
    many = ReceiveBuffer(1 << 20)
    for k in range(1, 2 * MAX_SACK_BLOCKS + 2, 2):
        many.receive(100 * k, b"y" * 100)
    assert len(many.sack_blocks(MAX_SACK_BLOCKS)) == MAX_SACK_BLOCKS


@given(st.lists(st.tuples(u32s, u32s), max_size=MAX_SACK_BLOCKS))
def test_sack_payload_round_trip(blocks: list[tuple[int, int]]) -> None:
    """Any ranges up to the bound encode and decode to themselves."""
    assert decode_sack(encode_sack(blocks)) == blocks


def test_sack_payload_bounds() -> None:
    """More ranges than `MAX_SACK_BLOCKS`, a partial range or numbers beyond 32 bits are
    refused with the typed errors."""
    with pytest.raises(EncodeError):
        encode_sack([(0, 1)] * (MAX_SACK_BLOCKS + 1))
    with pytest.raises(EncodeError):
        encode_sack([(0, 2**32)])
    for payload in (b"\x00" * 7, b"\x00" * 8 * (MAX_SACK_BLOCKS + 1)):
        with pytest.raises(DecodeError):
            decode_sack(payload)


def test_socket_offers_sack_on_every_path_it_offers_on() -> None:
    """`TouSocket` offers SACK to a direct and to a relayed peer (a SACK is small), and
    nothing with ``large_segments=0``."""
    mux = UdpMux()
    sock = TouSocket(Clock(), mux)
    assert sock._config_for(("127.0.0.1", 7000)).sack
    mux.add_relay_end(RelayEnd(local=("127.0.0.1", 1), proxy=("127.0.0.1", 2),
                               remote=("127.0.0.1", 7001)))
    relayed = sock._config_for(("127.0.0.1", 7001))
    assert relayed.sack and relayed.offer_segment == 0
    assert not TouSocket(Clock(), UdpMux(), large_segments=0)._config_for(
        ("127.0.0.1", 7000)).sack


@pytest.mark.parametrize("loss", [0.01, 0.05])
def test_lossy_simulated_transfer_with_sack_is_byte_exact_and_deterministic(
        loss: float) -> None:
    """Whole transfers with SACK through the bench's seeded lossy, reordering simulation
    arrive intact (`simulate` checks every byte) and the same seed gives the same run."""
    first = simulate(256 << 10, loss, seed=3, sack=True)
    again = simulate(256 << 10, loss, seed=3, sack=True)
    assert first == again and first.retransmissions > 0
