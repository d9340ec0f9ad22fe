# -*- test-case-name: tests.test_tou_isolated_loss -*-
"""The loss response between two rsproto TOU ends that agreed SACK ranges.

A loss the ranges show to be isolated (one hole, data delivered above it: random loss on a
short path) cuts the window by `ISOLATED_LOSS_BETA` only; several holes in one window, a lost
retransmission or a timeout still cut it as before (by ``beta``, or to one segment); without
SACK (RetroShare's wire) every loss is the ordinary cut.  On the simulated network
(`tools.simnet`, via the recovery tests' `Link`), deterministic."""

from __future__ import annotations

from tcponudp.congestion import ISOLATED_LOSS_BETA, NewReno
from tcponudp.recovery import LOST_RETRANSMISSION_REPEATS
from tcponudp.stream import TouConfig
from tests.test_tou_recovery import MSS, Link

WINDOW = 20 * MSS


class Recorder(NewReno):
    """NewReno that records each loss response: (what, flight, cwnd and ssthresh after)."""

    def __init__(self) -> None:
        super().__init__(MSS, initial_window=WINDOW)
        self.calls: list[tuple[str, int, int, int]] = []

    def _note(self, what: str, flight: int) -> None:
        self.calls.append((what, flight, self.cwnd, self.ssthresh))

    def on_loss(self, flight: int, now: float) -> None:
        super().on_loss(flight, now)
        self._note("loss", flight)

    def on_isolated_loss(self, flight: int, now: float) -> None:
        super().on_isolated_loss(flight, now)
        self._note("isolated", flight)

    def on_timeout(self, flight: int, now: float) -> None:
        super().on_timeout(flight, now)
        self._note("timeout", flight)


def _link(sack: bool) -> tuple[Link, Recorder]:
    link = Link(window=WINDOW, config=TouConfig(mss=MSS, idle_timeout=1e9, sack=sack))
    assert link.a.sack is sack and link.b.sack is sack
    cc = Recorder()
    link.a.cc = cc
    return link, cc


def test_an_isolated_loss_cuts_the_window_gently_only_with_sack() -> None:
    """One segment lost in a window: with SACK the ranges show one hole with data above it
    and the window is cut to `ISOLATED_LOSS_BETA` of the flight; without SACK (RetroShare's
    wire) the same loss is the ordinary cut to ``beta``, as before."""
    results = {}
    for sack in (True, False):
        link, cc = _link(sack)
        link.drop = {5}
        link.transfer(40)
        assert link.a.recovery.fast_retransmits == 1 and link.a.recovery.timeouts == 0
        assert link.transmissions(5) == 2
        ((what, flight, _cwnd, ssthresh),) = cc.calls
        results[sack] = (what, flight, ssthresh, link.a.recovery.isolated)
    what, flight, ssthresh, isolated = results[True]
    assert (what, isolated) == ("isolated", 1)
    assert ssthresh == int(flight * ISOLATED_LOSS_BETA)
    what, flight, ssthresh, isolated = results[False]
    assert (what, isolated) == ("loss", 0)
    assert ssthresh == int(flight * NewReno(MSS).beta)
    assert results[True][2] > results[False][2]


def test_isolated_random_losses_keep_a_larger_window_than_before() -> None:
    """Every 30th segment of 240 lost (one hole per recovery): with SACK each loss is
    isolated, and the window after them is larger than without SACK, which cuts by ``beta``
    each time."""
    windows = {}
    for sack in (True, False):
        link, cc = _link(sack)
        link.drop = set(range(5, 240, 30))
        link.transfer(240)
        assert link.a.recovery.timeouts == 0
        kinds = {what for what, *_ in cc.calls}
        assert kinds == ({"isolated"} if sack else {"loss"})
        windows[sack] = cc.ssthresh
    assert windows[True] > windows[False]


def test_several_holes_in_one_window_still_cut_by_beta() -> None:
    """Four segments lost in one window (what a full queue does): the ranges show several
    holes, and the window is cut by ``beta`` from the flight at the first loss, as without
    SACK, whether or not the first ranges had shown them all yet."""
    link, cc = _link(True)
    link.drop = {3, 6, 9, 12}
    link.transfer(20)
    assert link.a.recovery.fast_retransmits == 1 and link.a.recovery.timeouts == 0
    first_flight = cc.calls[0][1]
    assert cc.calls[-1][0] == "loss"
    assert cc.ssthresh == max(int(first_flight * cc.beta), 2 * MSS)
    assert link.a.recovery.isolated == link.a.recovery.escalated


def test_a_lost_retransmission_turns_an_isolated_loss_into_an_ordinary_cut() -> None:
    """The one hole's retransmission is lost too: a second retransmission in the same
    recovery means the path is dropping more than one random segment, and the gentle cut
    becomes ``beta`` of the flight at its start."""
    link, cc = _link(True)
    link.drop = {5}
    link.drop_again = {5}
    link.transfer(40)
    assert link.transmissions(5) == 3
    assert [what for what, *_ in cc.calls] == ["isolated", "loss"]
    assert link.a.recovery.escalated == 1
    first_flight = cc.calls[0][1]
    assert cc.calls[-1][3] == max(int(first_flight * cc.beta), 2 * MSS)


def test_a_timeout_still_collapses_the_window_with_sack() -> None:
    """Every copy of a segment lost until the retransmission timer expires: with SACK too
    the window restarts from one segment."""
    link, cc = _link(True)
    link.lose_first = {5: 2 + LOST_RETRANSMISSION_REPEATS}  # every copy before the timer
    link.transfer(40)
    assert link.a.recovery.timeouts >= 1
    timeouts = [call for call in cc.calls if call[0] == "timeout"]
    assert timeouts and all(cwnd == MSS for _, _, cwnd, _ in timeouts)
