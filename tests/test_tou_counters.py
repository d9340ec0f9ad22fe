# -*- test-case-name: tests.test_tou_counters -*-
"""The counters that say where a lossy TOU transfer's time goes.

`python3 -m tools.bench.tou_path` prints them for each run: the sender's recoveries (how many,
how long, the longest), its window cuts and the window each left, the seconds it was held back
inside a recovery; the receiver's seconds with bytes held beyond a hole, the most it held and
the segments it refused as beyond its window (docs/tou.md, "The window after a batched ACK").
Deterministic: the recovery tests' simulated link and a receive buffer fed by hand."""

from __future__ import annotations

from tcponudp.reassembly import Arrival, ReceiveBuffer
from tcponudp.stream import TouConfig
from tests.test_tou_recovery import MSS, Link


def _link() -> Link:
    config = TouConfig(mss=MSS, idle_timeout=1e9, sack=True)
    return Link(window=20 * MSS, config=config, config_b=config)


def test_recovery_counters_show_the_length_and_the_cut() -> None:
    """One segment lost on the simulated link: one cut, counted with the window it left; the
    recovery's length is counted and is the longest; the receiver counts how long it held
    bytes beyond the hole and the most it held."""
    link = _link()
    link.drop = {5}
    link.transfer(15)
    st = link.a.recovery
    assert (st.fast_retransmits, st.cuts, st.timeouts) == (1, 1, 0)
    assert st.cwnd_after_cuts == st.smallest_cwnd > 0
    assert 0 < st.recovery_seconds == st.longest_recovery
    b = link.b
    assert b.hole_seconds > 0
    assert MSS <= b._rx.peak_out_of_order <= b.config.receive_buffer
    assert link.a.recovery_limited <= link.a.rwnd_limited + link.a.cwnd_limited


def test_receive_buffer_counts_refused_segments_and_keeps_its_bound() -> None:
    """Segments beyond the window are refused and counted; what is held beyond a hole never
    exceeds the buffer, and the peak says how close it came."""
    rx = ReceiveBuffer(4 * MSS)
    assert rx.receive(MSS, bytes(MSS))[0] is Arrival.OUT_OF_ORDER
    assert rx.receive(2 * MSS, bytes(MSS))[0] is Arrival.OUT_OF_ORDER
    assert rx.receive(4 * MSS, bytes(MSS))[0] is Arrival.BEYOND_WINDOW
    assert rx.receive(3 * MSS, bytes(MSS))[0] is Arrival.OUT_OF_ORDER
    assert rx.refused == 1
    assert rx.peak_out_of_order == 3 * MSS <= rx.capacity
    assert rx.receive(0, bytes(MSS)) == (Arrival.IN_ORDER, bytes(4 * MSS))
    assert rx.peak_out_of_order == 3 * MSS
