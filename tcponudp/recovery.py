# -*- test-case-name: tests.test_tou_recovery -*-
"""Loss recovery of the TOU sender: which segments are lost, when to send them again, and
when a window cut proves spurious.

RetroShare's header has no options (no SACK, DSACK or timestamps), so everything here works
from cumulative ACKs and our own clock: the retransmission timer (RFC 6298, with backoff);
fast retransmit on duplicate ACKs or by time (RACK-like, RFC 8985, with a reorder window
learnt from measured reordering); NewReno partial ACKs (RFC 6582); tail loss probes; a second
chance for a lost retransmission before the timer; and undo of window cuts whose
retransmissions all prove unnecessary.  Between two rsproto ends that agreed to them, SACK
ranges (`LossRecovery.on_sack`) add what RetroShare's wire cannot say: which segments beyond a
hole arrived, so that a recovery resends every hole they show at once, and so that a loss they
show to be isolated (one hole, data delivered above it) cuts the window less
(`CongestionControl.on_isolated_loss`) until a second retransmission in the same recovery
shows it was not; a retransmission of the first segment counts as lost once a segment sent
after it is reported (RACK's rule); and a loss is cut from the flight it happened in, not
from what one batched ACK left out (`LossRecovery._cut_base`).  `LossRecovery` keeps
the segments in flight and these timers; the stream (`tcponudp.stream.TouStream`) owns the
sequence numbers and puts segments on the wire through the two callables it hands over.  The
rules are in ``docs/tou.md``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from .config import TouConfig
from .congestion import CongestionControl
from .rtt import RttEstimator
from .sequence import Segment, SendSequence, seq_diff

__all__ = ["LossRecovery", "RecoveryStats", "MAX_REO_STEPS", "REO_WND_SRTTS",
           "REORDERING_MEMORY", "LOST_RETRANSMISSION_REPEATS", "TAIL_PROBES"]

#: Cap on what observed reordering may raise the reorder window to, in quarters of the minimum
#: RTT (the window is also capped in SRTTs, below).
MAX_REO_STEPS: Final = 64
#: The reorder window's cap in SRTTs.  RFC 8985 caps it at one SRTT; measured reordering of
#: several round trips (the lossy relay holds datagrams 10 ms on a 2 ms path) then makes
#: nearly every reordered segment a window cut, and two SRTTs gave clearly better goodput in
#: the simulation (``python3 -m tools.bench.tou --sim``).  The window only grows on measured
#: reordering and falls back to min RTT / 4 after `REORDERING_MEMORY` recoveries without any.
REO_WND_SRTTS: Final = 2
#: Recoveries without reordering after which the duplicate-ACK threshold decides again.
REORDERING_MEMORY: Final = 16
#: How often a lost retransmission is sent again before the retransmission timer instead of
#: after it, each repeat waiting twice as long as the one before (at most half the timer).
#: At 5% random loss in each direction a retransmission or its one ACK is lost about one time
#: in ten (our receiver ACKs a batch once), so with two repeats one retransmitted segment in
#: a thousand still ended in the timer, about one timeout per 16 MiB on the real lossy path;
#: on a short path each timer expiry (at least `TouConfig.min_rto`) costs hundreds of round
#: trips.  Bounded so that a dead path still ends in timer backoff.
LOST_RETRANSMISSION_REPEATS: Final = 4
#: Tail loss probes per flight (RFC 8985 sends one).  Our receiver answers a batch of segments
#: read in one turn with one cumulative ACK, so a flight may draw only two ACKs, the batch's
#: and the probe's; losing both (one flight in 400 at 5% loss) would leave the sender to its
#: retransmission timer, which on a short path is hundreds of round trips.  A second probe,
#: after twice the wait, makes that one flight in 8000.
TAIL_PROBES: Final = 2


@dataclass(slots=True)
class RecoveryStats:
    """How the sender recovered from losses (for benchmarks, logs and tests)."""

    #: Retransmission timer expiries.
    timeouts: int = 0
    #: Recoveries started by duplicate ACKs or the reorder timer.
    fast_retransmits: int = 0
    #: Tail loss probes sent.
    probes: int = 0
    #: Window cuts undone because their retransmissions proved unnecessary.
    spurious: int = 0
    #: Holes that filled without a retransmission after duplicate ACKs (reordering seen).
    reorderings: int = 0
    #: Recoveries begun as an isolated loss (SACK ranges showed one hole): a gentler cut.
    isolated: int = 0
    #: Of those, the ones a second retransmission turned into an ordinary cut.
    escalated: int = 0
    #: Lost retransmissions sent again before the timer.
    repeats: int = 0
    #: Seconds spent in recovery (from the loss found to everything outstanding then
    #: acknowledged, an undo or a timeout), and the longest single recovery.
    recovery_seconds: float = 0.0
    longest_recovery: float = 0.0
    #: Window cuts (a loss, an escalation, a timeout) and the congestion window each left,
    #: summed and at its smallest (bytes): where the cuts hold the sender.
    cuts: int = 0
    cwnd_after_cuts: int = 0
    smallest_cwnd: int = 0

    def cut(self, cwnd: int) -> None:
        """Count a window cut that left ``cwnd`` bytes."""
        self.cuts += 1
        self.cwnd_after_cuts += cwnd
        self.smallest_cwnd = cwnd if self.cuts == 1 else min(self.smallest_cwnd, cwnd)


class LossRecovery:
    """The segments in flight and the sender's loss timers.

    ``resend(segment, now)`` puts a segment on the wire again unchanged; ``probe_new_data(now)``
    sends one new segment as a tail loss probe if the peer's window allows it (False: it did
    not, the last segment is sent again instead).
    """

    def __init__(self, config: TouConfig, rtt: RttEstimator, cc: CongestionControl,
                 snd: SendSequence, *, resend: Callable[[Segment, float], None],
                 probe_new_data: Callable[[float], bool]) -> None:
        self.config = config
        self.rtt = rtt
        self.cc = cc
        self.stats = RecoveryStats()
        self._snd = snd
        self._resend = resend
        self._probe_new_data = probe_new_data
        #: Sent and not acknowledged, oldest first; bounded by the peer's window (16 bits of
        #: bytes, or of four-byte units where both ends scale it: 256 KiB).
        self.unacked: deque[Segment] = deque()
        self.dupacks = 0
        #: ``snd.nxt`` when the current recovery began (None: not recovering).
        self.recover: int | None = None
        self.rto_deadline: float | None = None
        self.reorder_deadline: float | None = None
        self.tlp_deadline: float | None = None
        self._probes_sent = 0
        self._reo_steps = 1
        self._reordering = False
        self._recoveries_since_reordering = 0
        self._hole_since: float | None = None
        self._last_dupack_at: float | None = None
        # The current loss episode, while it may still prove spurious (see `_undo_check`).
        self._episode_until: float | None = None
        self._episode_retx = 0
        self._episode_proved = 0
        self._episode_acked = False
        #: Bytes of ``unacked`` the receiver reported holding (SACK ranges), and how many
        #: segments they are.
        self.sacked_bytes = 0
        self.sacked_segments = 0
        #: Both ends agreed SACK ranges (set by the stream): the receiver then ACKs a batch of
        #: segments over a hole once, with ranges, rather than each segment, so the ranges
        #: count for ``dupthresh`` and a single duplicate ACK proves nothing about a
        #: retransmission (see `_undo_check`).
        self.sack = False
        #: The current recovery began as an isolated loss (None: it did not, or none runs);
        #: True once its one retransmission was sent (a second makes it an ordinary cut).
        self._isolated: bool | None = None
        #: When the latest-sent segment the SACK ranges reported was sent (a segment sent
        #: once; RACK's transmit time of the most recently delivered segment).
        self._delivered_sent_at = 0.0
        #: The flight just before the latest cumulative ACK (see `_cut_base`).
        self._flight_before_ack = 0
        #: When the current recovery began (None: none runs), for `RecoveryStats`.
        self._recovery_since: float | None = None

    # -- what the stream asks ----------------------------------------------------------------

    @property
    def outstanding(self) -> bool:
        """Some data is in flight."""
        return bool(self.unacked)

    def pipe_credit(self, mss: int) -> int:
        """Bytes that duplicate ACKs show have left the network (RFC 6675's pipe, with
        duplicate ACKs standing in for SACK); this is also limited transmit (RFC 3042)."""
        if not self.unacked:
            return 0
        return max(min(self.dupacks, len(self.unacked) - 1) * mss, self.sacked_bytes)

    def deadlines(self) -> list[float]:
        """The loss timers that are armed (only while data is in flight)."""
        if not self.unacked:
            return []
        return [d for d in (self.rto_deadline, self.reorder_deadline, self.tlp_deadline)
                if d is not None]

    def clear(self) -> None:
        """The stream ended: forget what is in flight and every timer."""
        self.unacked.clear()
        self.sacked_bytes = self.sacked_segments = 0
        self.rto_deadline = self.reorder_deadline = self.tlp_deadline = None

    # -- sending -----------------------------------------------------------------------------

    def on_sent(self, seg: Segment, now: float, *, probe: bool) -> None:
        """A new segment left; it is timed from now (a probe arms no further probe)."""
        self.unacked.append(seg)
        if self.rto_deadline is None:
            self.rto_deadline = now + self.rtt.rto
        if not probe:
            self._arm_probe(now)

    def retransmit(self, seg: Segment, now: float) -> None:
        """Send ``seg`` again; it counts for the current episode's undo."""
        if self._isolated is not None and self.recover is not None:
            if self._isolated:
                self._escalate(now)
            else:
                self._isolated = True
        if self._episode_until is not None:
            self._episode_retx += 1
            # An original may arrive up to a retransmission timeout after this.
            self._episode_until = now + self.rtt.rto
        seg.transmissions += 1
        seg.sent_at = now
        self._resend(seg, now)

    # -- acknowledgements --------------------------------------------------------------------

    def on_sack(self, blocks: list[tuple[int, int]]) -> None:
        """The receiver holds these ranges beyond its cumulative ACK (an rsproto peer that
        offered SACK): the segments inside them have left the network.

        One pass over the segments and the ranges (sorted by start), not every range for
        every segment: with the wider window (`tcponudp.packet.WIDE_SACK_BLOCKS`) an ACK
        carries up to 32 ranges over hundreds of segments in flight."""
        if not self.unacked or not blocks:
            return
        base = self.unacked[0].seq
        spans = sorted((seq_diff(start, base), seq_diff(end, base)) for start, end in blocks)
        i, count = 0, len(spans)
        for seg in self.unacked:
            if seg.sacked:
                continue
            first = seq_diff(seg.seq, base)
            last = first + len(seg.data)
            while i < count and spans[i][1] < last:
                i += 1  # ends before this segment does: contains no later segment either
            if i == count:
                break
            if spans[i][0] <= first:
                seg.sacked = True
                self.sacked_bytes += len(seg.data)
                self.sacked_segments += 1
                if seg.transmissions == 1 and seg.sent_at > self._delivered_sent_at:
                    self._delivered_sent_at = seg.sent_at

    def on_duplicate_ack(self, now: float) -> None:
        """A pure ACK that acknowledges nothing new while data is in flight: the receiver got
        a segment beyond the first unacknowledged one."""
        self.dupacks += 1
        self._last_dupack_at = now
        if self._hole_since is None:
            self._hole_since = now
        self._detect_loss(now)
        self._sack_repair(now)

    def on_lone_ack(self, now: float) -> None:
        """A pure duplicate ACK with nothing in flight: it answers a duplicate segment, which
        may prove the last retransmission needless."""
        if self._undo_check(True, now):
            self._undo(now)

    def on_ack(self, ack: int, advance: int, flight_before: int, now: float) -> None:
        """``ack`` acknowledged ``advance`` new bytes (``snd.una`` is already ``ack``)."""
        self._flight_before_ack = flight_before
        head = self.unacked[0] if self.unacked else None
        hole_since, dupacks = self._hole_since, self.dupacks
        self._take_acked(ack, dupacks, now)
        self.dupacks = 0
        self._hole_since = self._last_dupack_at = self.reorder_deadline = None
        self._probes_sent = 0
        if self._undo_check(dupacks == 1, now):
            self._undo(now)
        elif head is not None and head.transmissions == 1 and hole_since is not None:
            # The hole filled by itself: that was reordering, not loss.
            self._reordering_seen(now - hole_since)
        self.cc.on_ack(advance, flight_before, now)
        if self.recover is not None:
            if seq_diff(ack, self.recover) >= 0:
                self.recover = None
                self._isolated = None
                self._recovery_over(now)
                self.cc.on_recovery_end(now)
            elif self.unacked and self.unacked[0].transmissions == 1:
                self.retransmit(self.unacked[0], now)  # NewReno partial ack: the next hole
            self._detect_loss(now)
            self._sack_repair(now)
        self.rto_deadline = now + self.rtt.rto if self.unacked else None
        self._arm_probe(now)

    def _take_acked(self, ack: int, dupacks: int, now: float) -> None:
        """Drop the acknowledged segments; take an RTT sample unless Karn forbids it."""
        sample: float | None = None
        karn = False
        while self.unacked and seq_diff(ack, self.unacked[0].end) >= 0:
            seg = self.unacked.popleft()
            if seg.sacked:
                self.sacked_bytes -= len(seg.data)
                self.sacked_segments -= 1
            if seg.transmissions == 1:
                if sample is None or not dupacks:
                    # The segment whose arrival sent this ACK: the last one covered, or the
                    # first when it filled a hole (the rest waited at the receiver and would
                    # make the sample as long as the whole recovery).
                    sample = now - seg.sent_at
                continue
            karn = True
            self._retransmission_acked(seg, now)
        if sample is not None and not karn:
            self.rtt.sample(sample)
        else:
            self.rtt.end_backoff()

    def _retransmission_acked(self, seg: Segment, now: float) -> None:
        self._episode_acked = True
        min_rtt = self.rtt.min_rtt
        if (self._episode_until is not None and min_rtt is not None
                and now - seg.sent_at < min_rtt / 2):
            # Acknowledged sooner after the retransmission than any round trip takes:
            # an earlier copy arrived, this retransmission was needless.
            self._episode_proved += 1

    # -- timers ------------------------------------------------------------------------------

    def retransmit_limit_reached(self, peer_window: int) -> bool:
        """The first segment was sent too often (probes into a zero window are answered, so
        they do not count)."""
        return self.unacked[0].transmissions > self.config.max_retransmits and bool(peer_window)

    def rto_due(self, now: float) -> bool:
        return self.rto_deadline is not None and now >= self.rto_deadline and bool(self.unacked)

    def on_timeout(self, now: float) -> None:
        """The retransmission timer expired: the window restarts from one segment."""
        self.stats.timeouts += 1
        self._isolated = None
        self._recovery_over(now)
        self.cc.on_timeout(self._snd.flight(), now)
        self.stats.cut(self.cc.cwnd)
        self.recover = self._snd.nxt
        self._start_episode(now)
        self.dupacks = 0
        self._hole_since = self._last_dupack_at = self.reorder_deadline = None
        self.tlp_deadline = None
        self.retransmit(self.unacked[0], now)
        self.rtt.back_off()
        self.rto_deadline = now + self.rtt.rto

    def on_timers(self, now: float) -> None:
        """Run the reorder timer and the tail loss probe if they are due."""
        if self.reorder_deadline is not None and now >= self.reorder_deadline:
            self.reorder_deadline = None
            self._detect_loss(now)
        if self.tlp_deadline is not None and now >= self.tlp_deadline:
            self._send_probe(now)

    # -- loss detection ----------------------------------------------------------------------

    def _reo_wnd(self) -> float:
        """How long after an expected ACK a hole may still be reordering rather than loss."""
        min_rtt, srtt = self.rtt.min_rtt, self.rtt.srtt
        if min_rtt is None or srtt is None:
            return 0.0
        return max(self.config.clock_granularity,
                   min(self._reo_steps * min_rtt / 4, REO_WND_SRTTS * srtt))

    def _head_lost(self, now: float) -> bool | float:
        """Whether the first unacknowledged segment is lost; or when it will be deemed lost
        if nothing arrives before; or False without evidence (no later segment delivered)."""
        head = self.unacked[0]
        if self.rtt.srtt is None:
            # No RTT measured (the handshake was repeated): duplicate ACKs only.
            return (head.transmissions == 1 and self._last_dupack_at is not None
                    and self.dupacks >= self.config.dupthresh)
        srtt = max(self.rtt.srtt, self.config.clock_granularity)
        if (2 <= head.transmissions <= LOST_RETRANSMISSION_REPEATS + 1
                and self.recover is not None):
            # A lost retransmission: nothing sent later may be left to draw duplicate ACKs
            # (the window is full), so when its ACK is overdue it is sent once more rather
            # than waiting for the retransmission timer and starting again from one segment
            # (`LOST_RETRANSMISSION_REPEATS` times; then the timer decides).
            # Each repeat waits twice as long as the one before (within half the timer): a
            # retransmission queued at the receiver behind a full window takes longer than
            # the smoothed round trip, and repeats spent within it leave only the timer
            # once its one ACK is lost.
            # With SACK ranges, a segment sent after the retransmission and reported held by
            # the receiver shows it lost at once (RACK's rule, RFC 8985): on a path that
            # keeps order the retransmission would have arrived first.  On the real lossy
            # path this shortened the longest recoveries (a lost retransmission holds the
            # left edge of the peer's window) from 15-39 ms to 13-25 ms.
            if self.sack and self._delivered_sent_at > head.sent_at:
                return True
            wait = srtt + self._reo_wnd()
            probe: float | None = head.sent_at + min(
                wait * (1 << (head.transmissions - 2)), max(wait, self.rtt.rto / 2))
        else:
            probe = None
        evidence = self._has_evidence(head)
        if evidence and head.transmissions == 1 and not self._reordering and (
                max(self.dupacks, self.sacked_segments) >= self.config.dupthresh):
            return True
        deadline = head.sent_at + srtt + self._reo_wnd() if evidence else None
        if probe is not None:
            deadline = probe if deadline is None else min(deadline, probe)
        if deadline is None:
            return False
        return True if now >= deadline else deadline

    def _has_evidence(self, head: Segment) -> bool:
        """A later segment was delivered (a duplicate ACK); for a retransmitted head, only a
        duplicate ACK caused by something sent after the retransmission counts."""
        if self._last_dupack_at is None:
            return False
        if head.transmissions > 1:
            return self._last_dupack_at >= head.sent_at + (self.rtt.min_rtt or 0.0)
        return True

    def _detect_loss(self, now: float) -> None:
        if not self.unacked:
            return
        lost = self._head_lost(now)
        if lost is False:
            self.reorder_deadline = None
            return
        if lost is not True:
            self.reorder_deadline = lost
            return
        self.reorder_deadline = None
        if self.recover is None:
            self._enter_recovery(now)
        if self.unacked[0].transmissions > 1:
            self.stats.repeats += 1
        self.retransmit(self.unacked[0], now)
        self.rto_deadline = now + self.rtt.rto  # the timer runs from the latest transmission
        self._detect_loss(now)  # arms the timer for a lost retransmission

    def _sack_repair(self, now: float) -> None:
        """In a recovery, with SACK ranges: every segment sent once with at least
        ``dupthresh`` reported segments above it is lost (RFC 6675's rule), and all of them
        are sent again now rather than one per round trip as the cumulative ACKs reveal them.

        A retransmission beyond the first unacknowledged segment is lost too once the ranges
        report a segment sent after it (RACK's rule, as `_head_lost` applies it to the first):
        it is sent again now (up to `LOST_RETRANSMISSION_REPEATS` times) instead of waiting
        until every hole before it is filled.  With the receiver's room beyond a hole a
        recovery spans hundreds of segments, and such a hole otherwise held the window's left
        edge for a round trip per hole before it."""
        if self.recover is None or not self.sacked_bytes:
            return
        above = 0
        lost: list[Segment] = []
        head = self.unacked[0]
        delivered_sent_at = self._delivered_sent_at
        for seg in reversed(self.unacked):
            if seg.sacked:
                above += 1
            elif seg.transmissions == 1:
                if above >= self.config.dupthresh:
                    lost.append(seg)
            elif (seg is not head and seg.sent_at < delivered_sent_at
                  and seg.transmissions <= LOST_RETRANSMISSION_REPEATS + 1):
                self.stats.repeats += 1
                lost.append(seg)
        for seg in reversed(lost):
            self.retransmit(seg, now)
        if lost:
            self.rto_deadline = now + self.rtt.rto

    def _enter_recovery(self, now: float) -> None:
        self.stats.fast_retransmits += 1
        if self._isolated_hole():
            self.stats.isolated += 1
            self._isolated = False
            self.cc.on_isolated_loss(self._cut_base(), now)
        else:
            self._isolated = None
            self.cc.on_loss(self._cut_base(), now)
        self.stats.cut(self.cc.cwnd)
        self._recovery_since = now
        self.recover = self._snd.nxt
        self._start_episode(now)
        self.tlp_deadline = None
        self._recoveries_since_reordering += 1
        if self._recoveries_since_reordering > REORDERING_MEMORY:
            # Reordering not seen for a while: be quick again (as Linux does).
            self._reo_steps = 1
            self._reordering = False

    def _cut_base(self) -> int:
        """The bytes a loss cut is taken from: the flight (RFC 5681's FlightSize); between
        SACK peers, at least the flight just before the latest cumulative ACK.

        An rsproto receiver that agreed SACK ranges ACKs each batch it reads once, so one
        ACK may acknowledge most of the flight and the next, read in the same turn before
        anything is sent, start a recovery with only the few segments sent after the hole
        still out.  Cut from that remainder, the window fell to two segments (on the real
        path at 5% loss, from 100 KiB to 5 KiB, and congestion avoidance then took a fifth
        of the transfer to grow it back).  The flight the loss happened in is what it
        answers.  (The congestion window is no measure of it: held back by the peer's
        window, it grows far beyond what is ever sent, and a cut from it cuts nothing.)"""
        flight = self._snd.flight()
        return max(flight, self._flight_before_ack) if self.sack else flight

    def _isolated_hole(self) -> bool:
        """SACK ranges show exactly one hole, the first unacknowledged segment, with data
        delivered above it.  Never true without SACK (RetroShare's wire)."""
        if not self.sacked_bytes or self.unacked[0].sacked:
            return False
        holes = 0
        above = False
        for seg in reversed(self.unacked):
            if seg.sacked:
                above = True
            elif above:
                holes += 1
                if holes > 1:
                    return False
        return holes == 1

    def _recovery_over(self, now: float) -> None:
        """A fast recovery ended (or a timeout or an undo ended it): count its length."""
        since, self._recovery_since = self._recovery_since, None
        if since is not None:
            stats = self.stats
            stats.recovery_seconds += now - since
            stats.longest_recovery = max(stats.longest_recovery, now - since)

    def _escalate(self, now: float) -> None:
        """A second retransmission in a recovery begun as an isolated loss (another hole, or
        the retransmission lost too): the cut becomes an ordinary one."""
        self._isolated = None
        self.stats.escalated += 1
        self.cc.on_loss(self._cut_base(), now)
        self.stats.cut(self.cc.cwnd)

    def _reordering_seen(self, extent: float) -> None:
        self.stats.reorderings += 1
        self._reordering = True
        self._recoveries_since_reordering = 0
        min_rtt = self.rtt.min_rtt
        if min_rtt:
            steps = int(extent / (min_rtt / 4)) + 1
            self._reo_steps = min(max(self._reo_steps, steps), MAX_REO_STEPS)

    # -- undo --------------------------------------------------------------------------------

    def _start_episode(self, now: float) -> None:
        """A window cut begins; its retransmissions are counted (`retransmit` keeps the
        episode open a retransmission timeout past the latest) so that the cut can be undone
        if every one of them proves unnecessary."""
        self._episode_until = now
        self._episode_retx = self._episode_proved = 0
        self._episode_acked = False

    def _undo_check(self, lone_dupack: bool, now: float) -> bool:
        """Whether the current episode's retransmissions all proved unnecessary.

        An ACK that comes sooner after a retransmission than any round trip takes proves
        one (the original arrived).  Without DSACK the other proof is a lone duplicate ACK
        (a run of one, then progress; or any duplicate ACK while nothing is outstanding)
        after the retransmission was acknowledged: our receiver ACKs a duplicate segment at
        once, so an original that arrives after its retransmission shows up exactly that way.
        Another segment overtaken by just one can look the same, and then the cut for a real
        loss is undone: the price of having no DSACK, which only makes the sender as
        aggressive as it was before the loss.  A RetroShare receiver ACKs on its own timer,
        sends no such lone duplicates and so never triggers an undo.
        """
        if self._episode_until is None:
            return False
        if now > self._episode_until:
            self._episode_until = None  # too late for an original to arrive
            return False
        if lone_dupack and self._episode_acked and not self.sack:
            self._episode_proved += 1
        return bool(self._episode_retx) and self._episode_proved >= self._episode_retx

    def _undo(self, now: float) -> None:
        self._episode_until = None
        self.stats.spurious += 1
        self.cc.undo(now)
        self.recover = None
        self._isolated = None
        self._recovery_over(now)
        self._reordering = True
        self._recoveries_since_reordering = 0
        self._reo_steps = min(self._reo_steps + 1, MAX_REO_STEPS)

    # -- tail loss probe ---------------------------------------------------------------------

    def _arm_probe(self, now: float) -> None:
        if (not self.config.tail_loss_probe or not self.unacked or self.recover is not None
                or self._probes_sent >= TAIL_PROBES or self.rtt.srtt is None):
            self.tlp_deadline = None
            return
        pto = max(2 * self.rtt.srtt, 2 * self.config.clock_granularity) * (1 << self._probes_sent)
        deadline = now + pto
        if self.rto_deadline is not None and deadline >= self.rto_deadline:
            self.tlp_deadline = None  # the timer comes first anyway
        else:
            self.tlp_deadline = deadline

    def _send_probe(self, now: float) -> None:
        """Tail loss probe: new data if the peer's window allows, else the last segment again.
        Either way the ACK it draws shows a lost tail (as duplicate ACKs, or by covering it).
        If that ACK is lost too, a second probe follows after twice the wait (`TAIL_PROBES`)."""
        self.tlp_deadline = None
        if not self.unacked or self.recover is not None:
            return
        self._probes_sent += 1
        self.stats.probes += 1
        if not self._probe_new_data(now):
            self.retransmit(self.unacked[-1], now)
        self.rto_deadline = now + self.rtt.rto
        self._arm_probe(now)
