# -*- test-case-name: tests.test_tou_stream -*-
"""Congestion control for the TOU stream, pluggable.

The stream tells its controller about acknowledged bytes, detected losses, retransmission
timeouts and reductions that proved unnecessary (`undo`), and asks it for the congestion window.
The stream decides *what* is lost and how much may be sent during recovery (it counts the
segments that duplicate ACKs show have left the network, as RFC 6675's "pipe" does with SACK);
the controller only sizes the window.  `NewReno` (RFC 5681 + RFC 6582, with CUBIC's decrease
factor by default) is the default; another algorithm (CUBIC, say) is a class with the same
methods passed as ``congestion=`` to `tcponudp.stream.TouStream`.  RetroShare's own stream does
slow start and additive increase with a window cut to one segment on every timeout, which
NewReno subsumes.

Between two rsproto ends that agreed SACK ranges the stream can tell an isolated loss (one
hole, data delivered above it: what random loss on a short path looks like) from congestion
(several holes, a lost retransmission, a timeout), and `on_isolated_loss` cuts the window by
`ISOLATED_LOSS_BETA` only; if the same loss event then shows a second hole, `on_loss` makes it
an ordinary cut from the window before it.  RetroShare's wire carries no SACK, so with a
RetroShare peer every loss is an ordinary one.
"""

from __future__ import annotations

from typing import Final, Protocol

__all__ = ["CongestionControl", "NewReno", "ISOLATED_LOSS_BETA", "ABC_SEGMENTS"]

#: Segments one ACK may add to the window in slow start (RFC 3465's L), unless the peer is
#: known to ACK in batches (`NewReno.set_batched_acks`).
ABC_SEGMENTS: Final = 2

#: The window kept by a loss event that SACK shows to be isolated (a single hole with data
#: delivered above it).  At 5% random loss a segment in 20 is lost, mostly one per recovery;
#: with CUBIC's 0.7 those cuts hold the window near the AIMD equilibrium
#: ``sqrt(alpha / (p (1 - beta)))``, about 6 segments, with 0.9 about 10.  In the seeded
#: simulation of a short path 0.8 and 0.9 did equally well and 0.95 worse (docs/tou.md).
#: Several holes, a lost retransmission or a timeout still cut by ``beta`` (or to one segment).
ISOLATED_LOSS_BETA: Final = 0.9


class CongestionControl(Protocol):
    """What the stream needs from a congestion controller (all sizes in bytes)."""

    @property
    def cwnd(self) -> int:
        """Bytes that may be in flight."""

    def on_ack(self, acked: int, flight: int, now: float) -> None:
        """``acked`` new bytes were cumulatively acknowledged; ``flight`` were in flight before."""

    def on_loss(self, flight: int, now: float) -> None:
        """A segment was lost and the network still delivers (fast recovery begins); or,
        during a recovery begun by `on_isolated_loss`, that loss event proved not isolated."""

    def on_isolated_loss(self, flight: int, now: float) -> None:
        """Fast recovery begins for a loss SACK shows to be isolated (one hole, data
        delivered above it): likely random loss rather than congestion."""

    def on_recovery_end(self, now: float) -> None:
        """Everything outstanding at the loss was acknowledged."""

    def on_timeout(self, flight: int, now: float) -> None:
        """The retransmission timer expired: start again from one segment."""

    def undo(self, now: float) -> None:
        """The last `on_loss` or `on_timeout` was spurious (the segment arrived after all):
        return to the window from before it."""

    def set_segment_size(self, mss: int) -> None:
        """The handshake settled on segments of ``mss`` bytes (before any data flows)."""

    def set_batched_acks(self) -> None:
        """The peer ACKs each batch of segments it reads once (an rsproto receiver that
        agreed SACK ranges), so one ACK may cover dozens of segments."""


class NewReno:
    """Slow start, congestion avoidance, fast recovery; byte counting (RFC 3465, L = 2 MSS;
    every acknowledged byte once the peer is known to ACK in batches, `set_batched_acks`).

    During recovery the window stays at ``ssthresh``: the stream sends when its estimate of
    the bytes still in the network drops below it, which replaces RFC 6582's artificial
    inflation by one segment per duplicate ACK.

    A loss multiplies the window by ``beta``.  The default is CUBIC's 0.7 (RFC 9438, what
    Linux does by default) rather than Reno's 0.5, with the additive increase scaled to
    ``3 (1 - beta) / (1 + beta)`` segments per round trip (RFC 9438 section 4.3) so the
    flow stays as fair to Reno flows as Reno itself; ``beta=0.5`` gives exactly RFC 5681.
    Random (non-congestion) loss and reordering cost far less window this way: in the lossy
    relay simulation goodput rose by about a third at every loss rate.
    """

    def __init__(self, mss: int, *, initial_window: int | None = None,
                 max_window: int = 4 * 1024 * 1024, beta: float = 0.7) -> None:
        if not 0.0 < beta < 1.0:
            raise ValueError(f"beta must be between 0 and 1, not {beta}")
        self.mss = mss
        self.max_window = max_window
        self.beta = beta
        #: Segments added per window's worth of acknowledged bytes in congestion avoidance.
        self.alpha = 3 * (1 - beta) / (1 + beta)
        default = min(4 * mss, max(2 * mss, 4380))  # RFC 3390
        self._cwnd = initial_window if initial_window is not None else default
        self.ssthresh = max_window
        self.in_recovery = False
        self._avoid_credit = 0
        self._before: tuple[int, int] | None = None
        #: The flight at the start of the current recovery if it began as an isolated loss.
        self._isolated_flight: int | None = None
        #: Bytes one ACK may add in slow start (RFC 3465's L): two segments, or no limit
        #: where the peer ACKs a batch once (`set_batched_acks`).
        self._abc_segments: int | None = ABC_SEGMENTS

    @property
    def cwnd(self) -> int:
        return self._cwnd

    def set_segment_size(self, mss: int) -> None:
        self.mss = mss
        self._cwnd = max(self._cwnd, min(4 * mss, max(2 * mss, 4380)))  # RFC 3390 again

    def set_batched_acks(self) -> None:
        # RFC 3465's limit of two segments per ACK guards against a receiver that ACKs
        # every other segment being over-credited; with one ACK per batch read (about 40
        # segments at 0% loss on the veth path) it made slow start add two segments per
        # batch, so a 16 MiB transfer spent most of its time below the peer's window.
        # Linux counts every acknowledged segment in slow start too.
        self._abc_segments = None

    def on_ack(self, acked: int, flight: int, now: float) -> None:
        if self.in_recovery:
            return
        if self._cwnd < self.ssthresh:
            limit = self._abc_segments
            grown = self._cwnd + (acked if limit is None else min(acked, limit * self.mss))
            # Slow start stops at ssthresh (RFC 5681); what is left goes to avoidance.
            self._cwnd = min(grown, max(self.ssthresh, self._cwnd + 2 * self.mss))
        else:
            self._avoid_credit += acked
            needed = int(self._cwnd / self.alpha)
            if self._avoid_credit >= needed:
                self._avoid_credit -= needed
                self._cwnd += self.mss
        self._cwnd = min(self._cwnd, self.max_window)

    def on_loss(self, flight: int, now: float) -> None:
        if self.in_recovery and self._isolated_flight is not None:
            # The isolated loss was not: cut as for congestion from the flight at its start
            # (what an undo restores stays the window from before it).
            flight = self._isolated_flight
        else:
            self._before = (self._cwnd, self.ssthresh)
        self._isolated_flight = None
        self.ssthresh = max(int(flight * self.beta), 2 * self.mss)
        self._cwnd = self.ssthresh
        self.in_recovery = True

    def on_isolated_loss(self, flight: int, now: float) -> None:
        self._before = (self._cwnd, self.ssthresh)
        self._isolated_flight = flight
        self.ssthresh = max(int(flight * ISOLATED_LOSS_BETA), 2 * self.mss)
        self._cwnd = self.ssthresh
        self.in_recovery = True

    def on_recovery_end(self, now: float) -> None:
        self._isolated_flight = None
        if self.in_recovery:
            self._cwnd = self.ssthresh
            self.in_recovery = False

    def on_timeout(self, flight: int, now: float) -> None:
        if not self.in_recovery:
            self._before = (self._cwnd, self.ssthresh)
        self._isolated_flight = None
        self.ssthresh = max(int(flight * self.beta), 2 * self.mss)
        self._cwnd = self.mss
        self.in_recovery = False
        self._avoid_credit = 0

    def undo(self, now: float) -> None:
        if self._before is not None:
            cwnd, ssthresh = self._before
            self._cwnd = max(self._cwnd, cwnd)
            self.ssthresh = max(self.ssthresh, ssthresh)
            self._before = None
        self._isolated_flight = None
        self.in_recovery = False
