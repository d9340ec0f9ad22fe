# -*- test-case-name: tests.test_tou_batched_acks -*-
"""The sender's window against an rsproto receiver that ACKs each batch it reads once.

Between two ends that agreed SACK ranges our receiver answers a batch of segments with one
ACK (tests/test_tou_sack_batch.py), so one ACK may cover dozens of segments.  Two window rules
written for a receiver that ACKs every segment or two then held the sender back on the real
lossy path (docs/tou.md, "The window after a batched ACK"):

* slow start added at most two segments per ACK (RFC 3465's limit), so at 0% loss a 16 MiB
  transfer spent most of its time growing the window;
* a loss found by the ACK that acknowledged most of the flight was cut from what was still
  out after it (a few segments), leaving a window of two segments.

Between SACK peers both now follow the flight in use; a RetroShare peer (no SACK) gets exactly
the old rules.  Deterministic: streams fed by hand, and the recovery tests' simulated link."""

from __future__ import annotations

from pqi.core import Datagram
from tcponudp.congestion import ABC_SEGMENTS, ISOLATED_LOSS_BETA, NewReno
from tcponudp.packet import (
    CAPABILITY_SACK,
    Flags,
    TouPacket,
    decode_packet,
    encode_sack,
    encode_segment,
)
from tcponudp.stream import TouConfig, TouStream
from tests.test_tou_recovery import MSS, Link

#: The recovery tests' link starts with a window of 20 segments.
WINDOW = 20 * MSS


def _link(sack: bool) -> Link:
    config = TouConfig(mss=MSS, idle_timeout=1e9, sack=sack)
    link = Link(window=WINDOW, config=config, config_b=config)
    assert link.a.sack is sack
    return link


def _send(stream: TouStream, segments: int, now: float) -> list[TouPacket]:
    stream.send(bytes(segments * MSS))
    sent = [decode_packet(o.data) for o in stream.drain(now) if isinstance(o, Datagram)]
    data = [p for p in sent if p.payload]
    assert len(data) == segments
    return data


def _ack(stream: TouStream, ack: int, now: float, blocks: list[tuple[int, int]] | None = None,
         *, drain: bool = True) -> None:
    """Feed an ACK (with SACK ranges if ``blocks``); ``drain=False``: more datagrams follow
    in the same reactor turn, before the stream sends anything."""
    if blocks:
        stream.datagram_received(encode_segment(77, ack, Flags.ACK, 0xFFFF, encode_sack(blocks),
                                                checksum=CAPABILITY_SACK), now)
    else:
        stream.datagram_received(encode_segment(77, ack, Flags.ACK, 0xFFFF, b""), now)
    if drain:
        stream.drain(now)


def test_newreno_counts_every_byte_of_a_batched_ack_in_slow_start() -> None:
    """By default one ACK adds at most `ABC_SEGMENTS` segments in slow start, whatever it
    covers; once the peer is known to ACK in batches it adds all it acknowledged, up to
    ``ssthresh``, and congestion avoidance is unchanged."""
    cc = NewReno(MSS, initial_window=4 * MSS)
    cc.on_ack(10 * MSS, 4 * MSS, 0.0)
    assert cc.cwnd == (4 + ABC_SEGMENTS) * MSS
    batched = NewReno(MSS, initial_window=4 * MSS)
    batched.set_batched_acks()
    batched.on_ack(10 * MSS, 4 * MSS, 0.0)
    assert batched.cwnd == 14 * MSS
    batched.ssthresh = 20 * MSS
    batched.on_ack(30 * MSS, 14 * MSS, 0.0)
    assert batched.cwnd == 20 * MSS  # slow start stops at ssthresh
    batched.on_ack(MSS, 20 * MSS, 0.0)
    assert batched.cwnd == 20 * MSS  # avoidance: a segment per window / alpha acknowledged


def test_sack_peers_grow_the_window_by_what_a_batched_ack_covers() -> None:
    """One cumulative ACK for eight segments: between SACK peers the window grows by eight
    segments; on RetroShare's wire (no SACK) by two, as before.  A controller set after the
    handshake is told too."""
    for sack, grown in ((True, 8), (False, ABC_SEGMENTS)):
        link = _link(sack)
        a, now = link.a, link.now
        sent = _send(a, 8, now)
        _ack(a, sent[-1].seq + MSS, now + 0.02)
        assert a.cc.cwnd == WINDOW + grown * MSS
        a.cc = NewReno(MSS, initial_window=WINDOW)
        sent = _send(a, 8, now + 0.02)
        _ack(a, sent[-1].seq + MSS, now + 0.04)
        assert a.cc.cwnd == WINDOW + grown * MSS


def test_a_loss_found_by_a_batched_ack_is_cut_from_the_flight_it_happened_in() -> None:
    """Ten segments out; read in one turn, a SACK ACK acknowledges the first five and shows
    three of the last four held beyond a hole at the sixth, and the next shows all four.
    The recovery that starts is cut from the ten segments out before that ACK, not from the
    five still out after it; without SACK (the cumulative ACK, then duplicate ACKs) the cut
    is from the five, as before."""
    link = _link(True)
    a, now = link.a, link.now
    sent = _send(a, 10, now)
    _ack(a, sent[5].seq, now + 0.02, [(sent[6].seq, sent[9].seq)], drain=False)
    _ack(a, sent[5].seq, now + 0.02, [(sent[6].seq, sent[9].seq + MSS)])
    st = a.recovery
    assert (st.fast_retransmits, st.isolated) == (1, 1)
    assert a.cc.cwnd == int(10 * MSS * ISOLATED_LOSS_BETA)
    assert st.cuts == 1 and st.cwnd_after_cuts == st.smallest_cwnd == a.cc.cwnd

    plain = _link(False)
    a, now = plain.a, plain.now
    sent = _send(a, 10, now)
    _ack(a, sent[5].seq, now + 0.02, drain=False)
    for _ in range(3):
        _ack(a, sent[5].seq, now + 0.02, drain=False)
    a.drain(now + 0.02)
    assert a.recovery.fast_retransmits == 1
    assert a.cc.cwnd == max(int(5 * MSS * a.cc.beta), 2 * MSS)
