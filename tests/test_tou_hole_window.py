# -*- test-case-name: tests.test_tou_hole_window -*-
"""The wider window scale between two rsproto TOU ends, and the room beyond a hole.

On the real lossy path a hole held the receiver's window's left edge while it was repaired,
and the sender stopped a buffer's length past it: at 5% loss that was most of the time it was
held back (docs/tou.md).  Two rsproto ends that both offer `HOLE_WINDOW_SHIFT` (the SYN's
header-length nibble, which RetroShare writes as zero and never reads) scale windows by one bit
more, and each receiver's window then grows by the bytes it holds beyond a hole, up to
`OUT_OF_ORDER_ALLOWANCE`.  With no hole the window is what it was; an end that did not offer
(an earlier rsproto end, or RetroShare) keeps the old scale and window.  Deterministic: buffers
and streams fed by hand and the simulated network of the recovery tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock

from tcponudp.config import MAX_WINDOW, OUT_OF_ORDER_ALLOWANCE
from tcponudp.congestion import NewReno
from tcponudp.errors import DatagramValueError
from tcponudp.packet import (
    CAPABILITY_WINDOW,
    HOLE_WINDOW_SHIFT,
    MAX_SACK_BLOCKS,
    WIDE_SACK_BLOCKS,
    WINDOW_SHIFT,
    Flags,
    decode_packet,
    decode_sack,
    encode_sack,
    encode_segment,
)
from tcponudp.reassembly import Arrival, ReceiveBuffer
from tcponudp.recovery import LossRecovery
from tcponudp.rtt import RttEstimator
from tcponudp.sequence import SEQ_MOD, Segment, SendSequence, seq_diff
from tcponudp.stream import TouConfig
from tcponudp.transport import TouSocket
from tcponudp.udpmux import UdpMux
from tests.test_tou_recovery import MSS, Link

#: A small receive buffer, so that a hole in a short transfer reaches its edge.
BUFFER = 40 * MSS


def _config(hole: bool, *, scale: bool = True) -> TouConfig:
    return TouConfig(mss=MSS, idle_timeout=1e9, sack=True, scale_window=scale,
                     hole_window=hole, receive_buffer=BUFFER)


def _link(a_hole: bool, b_hole: bool, window: int = 150 * MSS) -> Link:
    link = Link(window=window, config=_config(a_hole), config_b=_config(b_hole))
    link.a.cc = NewReno(MSS, initial_window=window, max_window=window)
    return link


def test_both_ends_offering_agree_the_wider_scale_one_end_keeps_the_old() -> None:
    """Both offer: both scale by `WINDOW_SHIFT` + `HOLE_WINDOW_SHIFT` and hold the allowance;
    their SYN and SYN+ACK carry the offer in the header-length nibble.  Either end alone: both
    keep `WINDOW_SHIFT` and no allowance, and an end that does not offer writes a zero nibble,
    as before."""
    link = _link(True, True)
    shift = WINDOW_SHIFT + HOLE_WINDOW_SHIFT
    assert (link.a.window_shift, link.b.window_shift) == (shift, shift)
    assert link.a._rx.allowance == link.b._rx.allowance == OUT_OF_ORDER_ALLOWANCE
    syns = [p for p in link.acks if p.has(Flags.SYN)]
    assert syns and all(p.checksum == CAPABILITY_WINDOW and p.hlen == HOLE_WINDOW_SHIFT
                        for p in syns)
    for a_hole, b_hole in ((True, False), (False, True)):
        link = _link(a_hole, b_hole)
        assert link.a.window_shift == link.b.window_shift == WINDOW_SHIFT
        assert link.a._rx.allowance == link.b._rx.allowance == 0
        assert all(p.hlen == (HOLE_WINDOW_SHIFT if b_hole else 0) for p in link.acks)
        link.transfer(4)


def test_no_offer_without_window_scaling() -> None:
    """``hole_window`` means nothing without ``scale_window``: the SYN's nibble stays zero and
    windows stay in bytes (RetroShare's wire when nothing is offered)."""
    link = Link(config=_config(True, scale=False), config_b=_config(True, scale=False))
    assert link.a.window_shift == link.b.window_shift == 0
    assert all(p.hlen == 0 for p in link.acks)


def test_window_grows_by_what_is_held_beyond_a_hole_up_to_the_allowance() -> None:
    """With an allowance the window is the buffer plus the out-of-order bytes held (at most
    the allowance); its right edge never moves left, neither as bytes arrive beyond the hole
    nor when the hole fills; with no hole it is the buffer, as without one."""
    rx = ReceiveBuffer(1000)
    rx.max_window = 1 << 20
    rx.allowance = 500
    assert rx.window() == 1000
    edges = [rx.rcv_nxt + rx.window()]
    for k in range(1, 13):
        assert rx.receive(100 * k, b"x" * 100)[0] is Arrival.OUT_OF_ORDER
        edges.append(rx.rcv_nxt + rx.window())
    assert rx.window() == 1500
    arrival, delivered = rx.receive(0, b"w" * 100)
    assert arrival is Arrival.IN_ORDER and len(delivered) == 1300
    edges.append(rx.rcv_nxt + rx.window())
    assert edges == sorted(edges)
    assert rx.window() == 1000


def test_without_an_allowance_the_window_is_as_before() -> None:
    """No allowance (an end that did not agree the wider scale): out-of-order bytes leave the
    window at the buffer's size and nothing past its edge is kept."""
    rx = ReceiveBuffer(1000)
    rx.max_window = 1 << 20
    for k in range(1, 10):
        rx.receive(100 * k, b"x" * 100)
    assert rx.window() == 1000
    assert rx.receive(1000, b"y" * 100)[0] is Arrival.BEYOND_WINDOW


def test_what_is_held_stays_within_buffer_and_allowance() -> None:
    """A peer that sends overlapping segments at every offset, and a reader that has paused:
    what is kept never exceeds ``capacity + allowance``, and segments past it are refused."""
    rx = ReceiveBuffer(1000)
    rx.max_window = 1 << 20
    rx.allowance = 500
    rx.reading_paused = True
    rx.deliverable(rx.receive(0, b"a" * 300)[1])
    kept = [rx.receive(k, b"o" * 100)[0] for k in range(301, 2000)]
    assert Arrival.BEYOND_WINDOW in kept
    assert rx.held + rx._ooo_bytes <= rx.capacity + rx.allowance
    assert rx.refused > 0


def _flight_during_hole(link: Link, segments: int) -> int:
    flights: list[int] = []

    def tap(*_: object) -> None:
        if link.b._rx.has_hole:
            flights.append(link.a._snd.flight())

    link.net.taps.append(tap)
    link.lose_first[5] = 3  # a hole that lasts several round trips
    link.transfer(segments)
    return max(flights)


def test_sender_keeps_sending_past_the_buffer_while_a_hole_is_repaired() -> None:
    """A segment lost three times in a row, with a congestion window far larger than the
    receiver's buffer: with the wider scale the sender keeps more than a buffer's length in
    flight while the hole lasts (the receiver's window grew by what it held beyond it), and
    the repair is found from the ranges as before (a fast recovery, no timeout); without it
    the flight stops at the buffer.  Both transfers arrive whole (`Link.transfer` checks)."""
    wide = _link(True, True)
    assert _flight_during_hole(wide, 300) > BUFFER
    assert wide.a._loss.stats.timeouts == 0 and wide.a._loss.stats.fast_retransmits >= 1
    narrow = _link(False, False)
    assert _flight_during_hole(narrow, 300) <= BUFFER


def test_socket_offers_the_wider_scale_to_direct_peers_only() -> None:
    """`TouSocket` offers the wider scale with window scaling to a direct peer, and neither
    with ``large_segments=0`` (RetroShare's wire)."""
    sock = TouSocket(Clock(), UdpMux())
    assert sock._config_for(("127.0.0.1", 7000)).hole_window
    assert not TouSocket(Clock(), UdpMux(), large_segments=0)._config_for(
        ("127.0.0.1", 7000)).hole_window


def test_header_length_nibble_round_trips() -> None:
    """`encode_segment` writes the nibble where given and zero otherwise; the decoder reads
    it back (RetroShare's segments, with a zero nibble, encode as before)."""
    syn = decode_packet(encode_segment(1, 0, Flags.SYN, MAX_WINDOW, b"", CAPABILITY_WINDOW,
                                       0, HOLE_WINDOW_SHIFT))
    assert syn.hlen == HOLE_WINDOW_SHIFT and syn.flags == Flags.SYN
    assert encode_segment(1, 0, Flags.SYN, MAX_WINDOW, b"")[12:14] == bytes([0, Flags.SYN])


def test_wider_scale_carries_more_sack_ranges_and_only_then() -> None:
    """Ends that agreed the wider scale report up to `WIDE_SACK_BLOCKS` ranges over many holes
    (and read as many); ends without it stay at `MAX_SACK_BLOCKS`, and a payload of more ranges
    than the limit is refused by the decoder."""
    assert _link(True, True).a.sack_limit == WIDE_SACK_BLOCKS
    assert _link(True, False).a.sack_limit == MAX_SACK_BLOCKS
    link = _link(True, True)
    link.drop = set(range(3, 3 + 2 * 20, 2))  # twenty holes in one flight
    link.transfer(100)
    widest = max(len(p.payload) // 8 for p in link.acks if p.checksum and not p.has(Flags.SYN))
    assert MAX_SACK_BLOCKS < widest <= WIDE_SACK_BLOCKS
    many = [(100 * k, 100 * k + 50) for k in range(MAX_SACK_BLOCKS + 1)]
    assert decode_sack(encode_sack(many, WIDE_SACK_BLOCKS), WIDE_SACK_BLOCKS) == many
    with pytest.raises(DatagramValueError):
        decode_sack(encode_sack(many, WIDE_SACK_BLOCKS))


def _recovery(lengths: list[int], base: int) -> LossRecovery:
    snd = SendSequence(una=base, nxt=(base + sum(lengths)) % SEQ_MOD)
    config = TouConfig(mss=MSS)
    loss = LossRecovery(config, RttEstimator(config), NewReno(MSS), snd,
                        resend=lambda _s, _n: None, probe_new_data=lambda _n: False)
    seq = base
    for k, length in enumerate(lengths):
        loss.unacked.append(Segment(seq=seq, data=b"d" * length, sent_at=float(k)))
        seq = (seq + length) % SEQ_MOD
    return loss


_JITTER = st.sampled_from((-1, 0, 0, 0, 1))


@given(st.lists(st.integers(1, 300), min_size=1, max_size=40),
       st.lists(st.tuples(st.integers(-2, 42), st.integers(0, 42), _JITTER, _JITTER),
                max_size=12),
       st.integers(0, SEQ_MOD - 1))
def test_sack_marking_matches_every_range_against_every_segment(
        lengths: list[int], ranges: list[tuple[int, int, int, int]], base: int) -> None:
    """The one-pass marking of `LossRecovery.on_sack` marks exactly the segments some range
    contains (the rule checked range by range), for ranges in any order, overlapping, ending
    on or one byte either side of a segment's edge, or starting before the first segment,
    across the wrap of sequence numbers."""
    loss = _recovery(lengths, base)
    edges = [0]
    for length in lengths:
        edges.append(edges[-1] + length)

    def at(index: int, jitter: int) -> int:
        return (base + edges[max(0, min(index, len(edges) - 1))] - 10 * (index < 0) + jitter)

    blocks = [(at(i, a) % SEQ_MOD, at(i + n, b) % SEQ_MOD) for i, n, a, b in ranges]
    expect = [any(seq_diff(seg.seq, s) >= 0 and seq_diff(seg.end, e) <= 0 for s, e in blocks)
              for seg in loss.unacked]
    loss.on_sack(blocks)
    assert [seg.sacked for seg in loss.unacked] == expect
    assert loss.sacked_segments == sum(expect)
