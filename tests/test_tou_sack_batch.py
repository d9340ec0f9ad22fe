# -*- test-case-name: tests.test_tou_sack_batch -*-
"""One SACK ACK per batch over a hole, between two rsproto TOU ends.

RetroShare's wire has no ranges, so our receiver ACKs every segment that arrives over a hole
at once: the sender counts those duplicate ACKs to find the loss.  Where both ends agreed SACK
ranges the ranges carry that count, so the segments read in one reactor turn (one drain)
get one ACK, with the ranges, instead of one datagram each; on the real lossy path that was
most of both ends' work at 5% loss (docs/tou.md, "ACKs over a hole").  The sender then counts
the segments the ranges cover towards ``dupthresh`` and no longer takes one duplicate ACK
for proof that a retransmission was needless.  Deterministic: streams fed by hand, and the
simulated network of the recovery tests."""

from __future__ import annotations

from pqi.core import Datagram
from tcponudp.packet import (
    CAPABILITY_SACK,
    Flags,
    TouPacket,
    decode_packet,
    decode_sack,
    encode_sack,
    encode_segment,
)
from tcponudp.stream import TouConfig, TouStream
from tests.test_tou_recovery import MSS, Link


def _link(sack: bool) -> Link:
    config = TouConfig(mss=MSS, idle_timeout=1e9, sack=sack)
    return Link(config=config, config_b=config)


def _datagrams(out: list[object]) -> list[TouPacket]:
    return [decode_packet(o.data) for o in out if isinstance(o, Datagram)]


def _batch_over_hole(link: Link) -> tuple[list[TouPacket], list[TouPacket], int]:
    """Feed ``b`` three segments beyond a missing one in one turn, drain; then the missing
    one, drain.  Returns both drains' datagrams and the first sequence number."""
    b, now = link.b, link.now
    base = b._rx.rcv_nxt
    ack = link.a._snd.nxt
    for k in (1, 2, 3):
        b.datagram_received(encode_segment(base + k * MSS, ack, Flags.ACK, 0xFFFF,
                                           bytes(MSS)), now)
    first = _datagrams(b.drain(now))
    b.datagram_received(encode_segment(base, ack, Flags.ACK, 0xFFFF, bytes(MSS)), now)
    # The drain that hands the bytes over leaves the ACK to the next one, at the same time.
    return first, _datagrams(b.drain(now) + b.drain(now)), base


def test_receiver_sends_one_sack_ack_per_batch_over_a_hole() -> None:
    """Three segments over a hole read in one turn: with SACK agreed one ACK leaves, showing
    all three in one range; without (RetroShare's wire) three duplicate ACKs leave, plain.
    Either way the segment that fills the hole draws one cumulative ACK for all four."""
    for sack in (True, False):
        link = _link(sack)
        assert link.b.sack is sack
        over_hole, filled, base = _batch_over_hole(link)
        assert all(p.ack == base for p in over_hole)
        if sack:
            (ack,) = over_hole
            assert ack.checksum == CAPABILITY_SACK
            assert decode_sack(ack.payload) == [(base + MSS, base + 4 * MSS)]
        else:
            assert len(over_hole) == 3
            assert all(p.checksum == 0 and not p.payload for p in over_hole)
        (cumulative,) = filled
        assert cumulative.ack == base + 4 * MSS and not cumulative.payload


def _sender(sack: bool) -> tuple[TouStream, list[TouPacket], float]:
    """A stream that agreed SACK (or not) with its peer and sent six segments."""
    link = _link(sack)
    a, now = link.a, link.now
    a.send(bytes(6 * MSS))
    sent = [p for p in _datagrams(a.drain(now)) if p.payload]
    assert len(sent) == 6
    return a, sent, now


def test_one_sack_ack_covering_dupthresh_segments_starts_a_recovery() -> None:
    """One SACK ACK showing three segments beyond the first: the first is sent again at
    once (the ranges count as three duplicate ACKs).  A plain duplicate ACK does not."""
    a, sent, now = _sender(True)
    una = sent[0].seq
    a.datagram_received(encode_segment(77, una, Flags.ACK, 0xFFFF, encode_sack(
        [(sent[1].seq, sent[4].seq)]), checksum=CAPABILITY_SACK), now + 0.001)
    resent = [p for p in _datagrams(a.drain(now + 0.001)) if p.payload]
    assert [p.seq for p in resent] == [una]
    assert a.recovery.fast_retransmits == 1
    plain, sent, now = _sender(False)
    plain.datagram_received(encode_segment(77, sent[0].seq, Flags.ACK, 0xFFFF, b""), now + 0.001)
    assert not [p for p in _datagrams(plain.drain(now + 0.001)) if p.payload]
    assert plain.recovery.fast_retransmits == 0


def test_one_sack_ack_then_progress_does_not_undo_the_cut() -> None:
    """A recovery begun on one SACK ACK, then the cumulative ACK for everything: one duplicate
    ACK before the progress is what a batch over a hole looks like with SACK, not proof that
    the retransmission was needless, so the window cut stays (no undo)."""
    a, sent, now = _sender(True)
    cwnd = a.cc.cwnd
    a.datagram_received(encode_segment(77, sent[0].seq, Flags.ACK, 0xFFFF, encode_sack(
        [(sent[1].seq, sent[-1].seq + MSS)]), checksum=CAPABILITY_SACK), now + 0.001)
    a.drain(now + 0.001)
    a.datagram_received(encode_segment(77, sent[-1].seq + MSS, Flags.ACK, 0xFFFF, b""),
                        now + 0.03)
    a.drain(now + 0.03)
    assert a.recovery.fast_retransmits == 1 and a.recovery.spurious == 0
    assert a.cc.cwnd < cwnd
