# -*- test-case-name: tests.test_tou_rack_retransmission -*-
"""A lost retransmission found by the SACK ranges (RACK's rule), between rsproto TOU ends.

While a retransmission of the first unacknowledged segment is lost, the hole holds the left
edge of the peer's window; on the real lossy path those holes were most of what held the
sender back at 5% loss (docs/tou.md, "The window after a batched ACK").  Without ranges the
sender repeats it when its ACK is a smoothed round trip plus the reorder window overdue.  With
them, a segment sent after the retransmission and reported held by the receiver shows it lost
as soon as that report arrives.  Deterministic: the recovery tests' simulated link."""

from __future__ import annotations

from tcponudp.stream import TouConfig
from tests.test_tou_recovery import MSS, Link


def _lost_twice(sack: bool) -> tuple[list[float], Link]:
    """Segment 5's first two transmissions are lost; returns when each was sent."""
    config = TouConfig(mss=MSS, idle_timeout=1e9, sack=sack)
    link = Link(window=20 * MSS, config=config, config_b=config)
    link.lose_first = {5: 2}
    link.transfer(40)
    return [t for t, n in link.sent if n == 5], link


def test_sack_ranges_show_a_lost_retransmission_before_its_timer() -> None:
    """Segment 5 lost, and its retransmission too: with SACK ranges the third transmission
    leaves sooner after the second than on RetroShare's wire (where the ACK must be overdue
    by a round trip and the reorder window), the transfer ends sooner, and neither needs the
    retransmission timer."""
    (first, second, third), sack = _lost_twice(True)
    (p_first, p_second, p_third), plain = _lost_twice(False)
    assert second - first == p_second - p_first  # the first repair is the same
    assert third - second < p_third - p_second
    assert sack.now < plain.now
    assert sack.a.recovery.timeouts == plain.a.recovery.timeouts == 0
    assert sack.a.recovery.repeats == plain.a.recovery.repeats == 1


def test_a_repair_still_in_flight_is_not_sent_again() -> None:
    """One loss whose retransmission arrives: the ranges reporting segments sent before the
    retransmission do not make it look lost, so segment 5 is sent exactly twice."""
    config = TouConfig(mss=MSS, idle_timeout=1e9, sack=True)
    link = Link(window=20 * MSS, config=config, config_b=config)
    link.drop = {5}
    link.transfer(40)
    assert link.transmissions(5) == 2
    assert link.a.recovery.repeats == 0


def _third_send_of_later_hole() -> tuple[float, float, Link]:
    """Segment 5 lost four times (it stays the first hole), segment 12's first two
    transmissions lost; returns when segment 12 was sent the third time and when segment 5
    was sent the last time."""
    config = TouConfig(mss=MSS, idle_timeout=1e9, sack=True)
    link = Link(window=30 * MSS, config=config, config_b=config)
    link.lose_first = {5: 4, 12: 2}
    link.transfer(60)
    return ([t for t, n in link.sent if n == 12][2], [t for t, n in link.sent if n == 5][-1],
            link)


def test_a_lost_retransmission_behind_the_first_hole_is_repaired_at_once() -> None:
    """A retransmission lost behind a first hole that lasts several round trips: the ranges
    report segments sent after it, so it is sent again while the first hole is still being
    repaired, not only once everything before it is acknowledged; the timer is not needed
    and the transfer arrives whole (`Link.transfer` checks)."""
    third_of_12, last_of_5, link = _third_send_of_later_hole()
    assert third_of_12 < last_of_5
    assert link.a.recovery.timeouts == 0
    assert link.transmissions(12) == 3
