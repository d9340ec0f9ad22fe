# -*- test-case-name: tests.test_tou_limits -*-
"""Where a TOU sender's time goes: `TouStream.rwnd_limited` and `TouStream.cwnd_limited`
(seconds with bytes queued that the peer's window, or the congestion window, held back; the
benches print them).  On the simulated network of the recovery tests, deterministic."""

from __future__ import annotations

from tcponudp.congestion import NewReno
from tcponudp.stream import TouConfig
from tests.test_tou_recovery import MSS, Link


def test_a_small_congestion_window_is_counted_as_cwnd_limited() -> None:
    """A two-segment congestion window and a receiver with room: the wait is the congestion
    window's, never the peer's."""
    link = Link(window=2 * MSS)
    link.a.cc = NewReno(MSS, initial_window=2 * MSS, max_window=2 * MSS)
    start = link.now
    link.transfer(20)
    assert link.a.cwnd_limited > 0 and link.a.rwnd_limited == 0
    assert link.a.cwnd_limited <= link.now - start


def test_a_small_receive_buffer_is_counted_as_rwnd_limited() -> None:
    """A receiver that holds four segments at most and a large congestion window: the wait is
    the peer's window's; nothing queued afterwards adds to either."""
    link = Link(window=40 * MSS, config_b=TouConfig(mss=MSS, idle_timeout=1e9,
                                                    receive_buffer=4 * MSS))
    link.transfer(20)
    limited = link.a.rwnd_limited
    assert limited > 0 and link.a.cwnd_limited < limited
    link.net.run(1.0)
    assert link.a.rwnd_limited == limited
