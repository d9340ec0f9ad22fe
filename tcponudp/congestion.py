# -*- test-case-name: tests.test_tou_stream -*-
"""Congestion control for the TOU stream, pluggable.

The stream tells its controller about acknowledged bytes, duplicate-ack loss signals and
retransmission timeouts, and asks it for the congestion window.  `NewReno` (RFC 5681 + RFC 6582)
is the default; another algorithm (CUBIC, say) is a class with the same methods passed as
``congestion=`` to `tcponudp.stream.TouStream`.  RetroShare's own stream does slow start and
additive increase with a window cut to one segment on every timeout, which NewReno subsumes.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["CongestionControl", "NewReno"]


class CongestionControl(Protocol):
    """What the stream needs from a congestion controller (all sizes in bytes)."""

    @property
    def cwnd(self) -> int:
        """Bytes that may be in flight."""

    def on_ack(self, acked: int, flight: int, now: float) -> None:
        """``acked`` new bytes were cumulatively acknowledged; ``flight`` were in flight before."""

    def on_loss(self, flight: int, now: float) -> None:
        """Three duplicate acks: a segment was lost, the network still delivers (fast recovery)."""

    def on_recovery_end(self, now: float) -> None:
        """Everything outstanding at the loss was acknowledged."""

    def on_timeout(self, flight: int, now: float) -> None:
        """The retransmission timer expired: start again from one segment."""


class NewReno:
    """Slow start, congestion avoidance, fast recovery; byte counting (RFC 3465, L = 2 MSS)."""

    def __init__(self, mss: int, *, initial_window: int | None = None,
                 max_window: int = 4 * 1024 * 1024) -> None:
        self.mss = mss
        self.max_window = max_window
        default = min(4 * mss, max(2 * mss, 4380))  # RFC 3390
        self._cwnd = initial_window if initial_window is not None else default
        self.ssthresh = max_window
        self.in_recovery = False
        self._avoid_credit = 0

    @property
    def cwnd(self) -> int:
        return self._cwnd

    def on_ack(self, acked: int, flight: int, now: float) -> None:
        if self.in_recovery:
            # Partial ack: deflate by what left the network, keep one segment's worth.
            self._cwnd = max(self.mss, self._cwnd - acked + self.mss)
            return
        if self._cwnd < self.ssthresh:
            self._cwnd += min(acked, 2 * self.mss)
        else:
            self._avoid_credit += acked
            if self._avoid_credit >= self._cwnd:
                self._avoid_credit -= self._cwnd
                self._cwnd += self.mss
        self._cwnd = min(self._cwnd, self.max_window)

    def on_loss(self, flight: int, now: float) -> None:
        self.ssthresh = max(flight // 2, 2 * self.mss)
        self._cwnd = self.ssthresh + 3 * self.mss
        self.in_recovery = True

    def on_recovery_end(self, now: float) -> None:
        if self.in_recovery:
            self._cwnd = self.ssthresh
            self.in_recovery = False

    def on_timeout(self, flight: int, now: float) -> None:
        self.ssthresh = max(flight // 2, 2 * self.mss)
        self._cwnd = self.mss
        self.in_recovery = False
        self._avoid_credit = 0
