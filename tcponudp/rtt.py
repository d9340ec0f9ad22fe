# -*- test-case-name: tests.test_tou_recovery -*-
"""Round-trip time estimation and the retransmission timeout, per RFC 6298.

Kept apart from loss recovery because the handshake, the FIN timer and the zero-window
probe read it too.  RetroShare computes its timeout as 2 * (SRTT + 4 RTTVAR) without a
floor; we follow the RFC with the bounds in `tcponudp.config.TouConfig` (``min_rto``,
``max_rto``, ``clock_granularity``).
"""

from __future__ import annotations

from .config import TouConfig

__all__ = ["RttEstimator"]


class RttEstimator:
    """SRTT, RTTVAR, the minimum RTT seen and the current (possibly backed-off) RTO."""

    def __init__(self, config: TouConfig) -> None:
        self._config = config
        self.srtt: float | None = None
        self.rttvar = 0.0
        #: The smallest sample: the reorder window and the undo rules measure against it.
        self.min_rtt: float | None = None
        self.rto = config.initial_rto

    def sample(self, r: float) -> None:
        """Take one measurement ``r`` (Karn's rule is the caller's: never a retransmission)."""
        self.min_rtt = r if self.min_rtt is None else min(self.min_rtt, r)
        if self.srtt is None:
            self.srtt = r
            self.rttvar = r / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - r)
            self.srtt = 0.875 * self.srtt + 0.125 * r
        self.rto = self.computed()

    def computed(self) -> float:
        """SRTT + max(G, 4 RTTVAR) within the bounds; the initial RTO before any sample."""
        cfg = self._config
        if self.srtt is None:
            return cfg.initial_rto
        rto = self.srtt + max(cfg.clock_granularity, 4 * self.rttvar)
        return min(max(rto, cfg.min_rto), cfg.max_rto)

    def end_backoff(self) -> None:
        """Forward progress without a sample (Karn forbids one) still ends the backoff;
        otherwise every later loss doubles the timer again and a lossy link crawls."""
        self.rto = self.computed()

    def back_off(self) -> None:
        """A timer expired: double the RTO, up to ``max_rto``."""
        self.rto = min(self.rto * 2, self._config.max_rto)
