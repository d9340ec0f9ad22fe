# -*- test-case-name: tests.test_tou_recovery -*-
"""Loss recovery of the TOU stream, one algorithm at a time, on a fake clock.

`Link` joins two `TouStream`s on the simulated network with a fixed one-way delay and lets a
test drop or hold back the first transmission of chosen data segments, so each test shows one
mechanism deciding (fast retransmit, NewReno partial ACKs, limited transmit, the reorder timer,
tail loss probes, undo of spurious reductions, the receiver's ACKs).  The last tests push whole
transfers through the benchmark's seeded simulation (the lab relay's loss, duplication and
reordering)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcponudp.congestion import NewReno
from tcponudp.packet import HEADER_SIZE, Flags, TouPacket, decode_packet, encode_packet
from tcponudp.recovery import LOST_RETRANSMISSION_REPEATS, TAIL_PROBES
from tcponudp.stream import DataReceived, TouConfig, TouStream
from tools.bench.tou import main, simulate
from tools.simnet import LinkModel, SimNet

MSS = 1000
ISS = 5000
DELAY = 0.01  # one way: the round trip is 20 ms
GAP = 0.0005  # a sends at most one datagram per GAP (2 MB/s), so segments arrive one by one


A_ADDR, B_ADDR = ("192.0.2.1", 1), ("192.0.2.2", 1)  # simulated, never contacted (RFC 5737)


class Link:
    """Two streams, ``a`` sending to ``b``, on the simulated network (`tools.simnet`) with a
    fixed delay each way; ``a``'s side of the link carries one full segment per ``GAP``."""

    def __init__(self, *, window: int = 20 * MSS, config: TouConfig | None = None,
                 config_b: TouConfig | None = None) -> None:
        self.config = config or TouConfig(mss=MSS, idle_timeout=1e9)
        self.a = TouStream(config=self.config, isn=ISS,
                           congestion=NewReno(MSS, initial_window=window))
        self.b = TouStream(config=config_b or self.config, isn=77)
        #: Data segments (numbered from 0 by sequence) whose first transmission is lost...
        self.drop: set[int] = set()
        #: ... or held back this many seconds more than the others.
        self.hold: dict[int, float] = {}
        #: Data segments whose second transmission is lost too.
        self.drop_again: set[int] = set()
        #: Data segments whose first this many transmissions are all lost.
        self.lose_first: dict[int, int] = {}
        #: Every data segment a sent, as (time, segment number).
        self.sent: list[tuple[float, int]] = []
        #: Every segment b sent, decoded.
        self.acks: list[TouPacket] = []
        self.got = bytearray()
        self.net = SimNet(0, default=LinkModel(delay=DELAY))
        self.net.link(A_ADDR, B_ADDR, LinkModel(delay=DELAY, rate=(MSS + HEADER_SIZE) / GAP),
                      both=False)
        self.net.faults.append(self._fault)
        self.net.add(A_ADDR, self.a, peer=B_ADDR, on_output=lambda _n, _e: None,
                     receive=lambda data, _src, now: self.a.datagram_received(data, now))
        self.net.add(B_ADDR, self.b, peer=A_ADDR, on_output=self._event,
                     receive=lambda data, _src, now: self.b.datagram_received(data, now))
        self.net.feed(B_ADDR, self.b.listen)
        self.net.feed(A_ADDR, self.a.connect)
        self.run_until(lambda: self.a.connected and self.b.connected)

    @property
    def now(self) -> float:
        return self.net.clock.seconds()

    def number(self, seq: int) -> int:
        return (seq - ISS - 1) // MSS

    def _fault(self, src: tuple[str, int], _dst: tuple[str, int], data: bytes) -> float | None:
        packet = decode_packet(data)
        if src == B_ADDR:
            self.acks.append(packet)
            return 0.0
        if not packet.payload:
            return 0.0
        n = self.number(packet.seq)
        self.sent.append((self.now, n))
        transmission = self.transmissions(n)
        if transmission <= self.lose_first.get(n, 0):
            return None
        if transmission == 1:
            return None if n in self.drop else self.hold.get(n, 0.0)
        return None if transmission == 2 and n in self.drop_again else 0.0

    def _event(self, _node: object, event: object) -> None:
        if isinstance(event, DataReceived):
            self.got += event.data

    def write(self, data: bytes) -> None:
        """The application on ``a`` writes ``data``."""
        self.a.send(data)
        self.net.nodes[A_ADDR].driver.service()

    def run_until(self, done: Callable[[], bool], steps: int = 10_000) -> None:
        self.net.run(until=done, max_steps=steps)
        assert done(), "did not finish"

    def transfer(self, segments: int) -> bytes:
        """Send ``segments`` full segments and run until all arrived and were acknowledged."""
        start = len(self.got)
        data = bytes(i % 251 for i in range(segments * MSS))
        self.write(data)
        self.run_until(lambda: len(self.got) == start + len(data) and not self.a.buffered)
        assert bytes(self.got[start:]) == data
        return data

    def transmissions(self, n: int) -> int:
        return sum(1 for _, k in self.sent if k == n)


def test_single_loss_in_a_window_is_fast_retransmitted() -> None:
    """One segment lost in the middle of a window: three duplicate ACKs resend it at once,
    there is no timeout and no other segment is sent twice."""
    link = Link()
    link.drop = {5}
    link.transfer(15)
    st = link.a.recovery
    assert (st.fast_retransmits, st.timeouts, st.probes) == (1, 0, 0)
    assert link.transmissions(5) == 2
    assert all(link.transmissions(n) == 1 for n in range(15) if n != 5)


def test_newreno_partial_ack_retransmits_the_next_hole_at_once() -> None:
    """Two losses in one window: the ACK for the first retransmission stops at the second
    hole, which is resent immediately (no second set of duplicate ACKs, no timeout), and the
    window is cut once."""
    link = Link()
    link.drop = {3, 8}
    link.transfer(15)
    st = link.a.recovery
    assert (st.fast_retransmits, st.timeouts) == (1, 0)
    assert link.transmissions(3) == link.transmissions(8) == 2
    resend_3 = [t for t, n in link.sent if n == 3][1]
    resend_8 = [t for t, n in link.sent if n == 8][1]
    # One round trip (plus a datagram's spacing) later, not after new duplicate ACKs.
    assert resend_8 == pytest.approx(resend_3 + 2 * DELAY + GAP)


def test_limited_transmit_sends_new_data_on_the_first_duplicate_acks() -> None:
    """With a window of three segments and the first lost, each of the two duplicate ACKs
    releases one new segment at once (RFC 3042), before any loss is declared."""
    link = Link(window=3 * MSS)
    link.drop = {0}
    link.transfer(6)
    assert link.a.recovery.timeouts == 0
    times = dict((n, t) for t, n in reversed(link.sent))  # first transmissions
    dupacks = [t for t, n in link.sent if n in (3, 4)]
    # Segment 1 left first (0 was dropped before the wire), 2 one GAP later; each one's
    # duplicate ACK, a round trip on, sends one new segment.
    assert dupacks == pytest.approx([times[1] + GAP + 2 * DELAY, times[2] + 2 * GAP + 2 * DELAY])
    resent = [t for t, n in link.sent if n == 0][1]
    assert resent > times[4]


def test_reorder_timer_recovers_a_loss_with_too_few_duplicate_acks() -> None:
    """Only two segments follow the lost one: two duplicate ACKs never reach the threshold,
    but the reorder timer (RTT plus reorder window after the hole was sent) resends it well
    before the retransmission timer would."""
    link = Link(config=TouConfig(mss=MSS, idle_timeout=1e9, tail_loss_probe=False))
    link.drop = {2}
    link.transfer(5)
    st = link.a.recovery
    assert (st.fast_retransmits, st.timeouts) == (1, 0)
    sent_at, resent_at = [t for t, n in link.sent if n == 2]
    assert resent_at - sent_at < link.a.rto
    assert resent_at - sent_at >= 2 * DELAY  # not before an ACK could have come


def test_pure_reordering_within_the_reorder_window_sends_nothing_twice() -> None:
    """A segment overtaken by the next two (held back less than the reorder window) causes
    duplicate ACKs but no retransmission: the hole fills by itself and the stream notes the
    reordering."""
    link = Link()
    link.hold = {4: 0.002}
    link.transfer(6)
    assert link.a.retransmissions == 0
    assert link.a.recovery.fast_retransmits == 0
    assert link.a.recovery.reorderings == 1


def test_seen_reordering_hands_the_decision_to_the_reorder_timer() -> None:
    """The first time a segment is overtaken by three others it is fast-retransmitted, the
    retransmission proves needless (ACKed too soon) and the cut is undone.  From then on the
    duplicate-ACK count no longer decides, the (widened) reorder window does, so the same
    reordering later costs nothing."""
    link = Link(window=30 * MSS)
    # Held for 4 ms: the next segments arrive first; with min RTT 20 ms the reorder window
    # starts at 5 ms, so only the duplicate-ACK threshold can fire before the hole fills.
    link.hold = {3: 0.004}
    link.transfer(10)
    st = link.a.recovery
    assert (link.a.retransmissions, st.fast_retransmits, st.spurious) == (1, 1, 1)
    link.hold = {13: 0.004}
    link.transfer(10)
    assert link.a.retransmissions == 1  # this time the hole is waited for
    assert link.a.recovery.reorderings >= 1


def test_tail_loss_is_recovered_by_a_probe_without_timeout() -> None:
    """The last segment of a burst is lost: no ACK follows it, so after about two round trips
    the stream resends it as a tail loss probe instead of waiting for the timer."""
    link = Link()
    link.drop = {9}
    link.transfer(10)
    st = link.a.recovery
    assert (st.probes, st.timeouts) == (1, 0)
    assert link.transmissions(9) == 2
    assert link.a.cc.cwnd > MSS  # no timeout's restart from one segment


def test_a_lost_probe_is_followed_by_a_second_without_timeout() -> None:
    """The tail segment and its probe are both lost (or the probe's ACK is: the sender sees
    the same silence): a second probe, after twice the wait, repairs the tail before the
    retransmission timer, which (as on a short path, where the RTO floor is many round trips)
    is far off; no third probe is sent."""
    link = Link(config=TouConfig(mss=MSS, idle_timeout=1e9, min_rto=0.5))
    link.lose_first = {9: 2}
    link.transfer(10)
    st = link.a.recovery
    assert (st.probes, st.timeouts) == (TAIL_PROBES, 0)
    assert link.transmissions(9) == 3
    times = [t for t, k in link.sent if k == 9]
    assert times[2] - times[1] > times[1] - times[0] - GAP


def test_probe_reveals_a_loss_before_the_tail() -> None:
    """The last two segments are lost: the probe (the last one again) draws a duplicate ACK,
    and the reorder rule resends the first of them without a timeout."""
    link = Link()
    link.drop = {8, 9}
    link.transfer(10)
    st = link.a.recovery
    assert st.timeouts == 0 and st.probes == 1 and st.fast_retransmits == 1


def test_lost_retransmission_is_sent_again_without_timeout() -> None:
    """During recovery the retransmission itself is lost and nothing else is in flight to
    draw duplicate ACKs: two round trips later it is sent a third time, not at the RTO."""
    link = Link(window=6 * MSS)
    link.drop = {2}
    link.drop_again = {2}  # the retransmission is lost too
    link.write(bytes(6 * MSS))
    link.run_until(lambda: len(link.got) == 6 * MSS and not link.a.buffered)
    assert link.a.recovery.timeouts == 0
    assert link.transmissions(2) == 3


def test_retransmission_lost_twice_is_sent_again_without_timeout() -> None:
    """The first retransmission and the second are lost too (window full, no duplicate ACKs
    to come): each is repeated once its ACK is overdue (a round trip after it was sent), and
    the transfer ends without a retransmission timeout."""
    link = Link(window=6 * MSS)
    link.lose_first = {2: 3}
    link.write(bytes(6 * MSS))
    link.run_until(lambda: len(link.got) == 6 * MSS and not link.a.buffered)
    assert link.a.recovery.timeouts == 0
    times = [t for t, k in link.sent if k == 2]
    assert len(times) == 4
    assert min(b - a for a, b in zip(times[1:-1], times[2:], strict=True)) >= 2 * DELAY


def test_repeated_loss_of_a_retransmission_falls_back_to_the_timer() -> None:
    """A segment that never gets through is repeated before the timer only
    LOST_RETRANSMISSION_REPEATS times; after that the retransmission timer (with backoff)
    decides, so a dead path is not hammered every round trip."""
    link = Link(window=6 * MSS)
    link.lose_first = {2: 3 + LOST_RETRANSMISSION_REPEATS}
    link.write(bytes(6 * MSS))
    link.run_until(lambda: len(link.got) == 6 * MSS and not link.a.buffered)
    assert link.a.recovery.timeouts == 2
    assert link.transmissions(2) == 4 + LOST_RETRANSMISSION_REPEATS


def test_repeats_of_a_lost_retransmission_back_off() -> None:
    """Every repeat of a lost retransmission waits about twice as long as the one before
    (the timer is long here, so its half does not cap them): repeats fired within one
    delayed round trip would all be spent before the ACK of the first could come.  The last
    one gets through and there is no timeout."""
    link = Link(window=6 * MSS, config=TouConfig(mss=MSS, idle_timeout=1e9, min_rto=2.0))
    link.lose_first = {2: 1 + LOST_RETRANSMISSION_REPEATS}
    link.write(bytes(6 * MSS))
    link.run_until(lambda: len(link.got) == 6 * MSS and not link.a.buffered)
    assert link.a.recovery.timeouts == 0
    times = [t for t, n in link.sent if n == 2]
    assert len(times) == 2 + LOST_RETRANSMISSION_REPEATS
    gaps = [b - a for a, b in zip(times[1:], times[2:], strict=False)]
    assert all(later > 1.5 * earlier for earlier, later in zip(gaps, gaps[1:], strict=False))


def test_spurious_fast_retransmit_is_undone() -> None:
    """A segment held back just long enough to be fast-retransmitted arrives before the
    retransmission could have made a round trip: the ACK comes too soon after the resend,
    so the window cut is undone and the reorder tolerance grows."""
    link = Link(window=30 * MSS)
    link.hold = {2: 0.003}
    cwnd = link.a.cc.cwnd
    link.transfer(12)
    st = link.a.recovery
    assert st.fast_retransmits == 1 and st.spurious == 1
    assert link.a.cc.cwnd >= cwnd
    assert not link.a.cc.in_recovery  # type: ignore[attr-defined]


def test_late_original_after_retransmission_undoes_the_cut() -> None:
    """The original arrives long after its retransmission: the receiver answers the duplicate
    with a lone duplicate ACK, which proves the retransmission needless, so the cut is
    undone."""
    link = Link(window=30 * MSS)
    link.hold = {2: 0.05}
    link.transfer(12)
    link.write(bytes(MSS))  # keep ACKs coming after the late original
    link.run_until(lambda: not link.a.buffered and link.a.recovery.spurious)
    st = link.a.recovery
    assert st.fast_retransmits == 1 and st.spurious == 1
    assert st.timeouts == 0


def test_real_loss_is_not_undone() -> None:
    """A segment that really was lost draws no lone duplicate ACK and is not acknowledged
    early: the window cut stays."""
    link = Link(window=30 * MSS)
    link.drop = {2}
    cwnd = link.a.cc.cwnd
    link.transfer(12)
    link.write(bytes(5 * MSS))
    link.run_until(lambda: not link.a.buffered)
    assert link.a.recovery.spurious == 0
    assert link.a.cc.cwnd < cwnd


def test_receiver_acks_every_segment_while_a_hole_is_open() -> None:
    """While out-of-order data is buffered every arriving segment is ACKed at once (the
    sender counts them), and so is a duplicate segment."""
    link = Link(config=TouConfig(mss=MSS, idle_timeout=1e9, tail_loss_probe=False,
                                 dupthresh=100))
    link.hold = {0: 0.005}
    link.write(bytes(6 * MSS))
    link.run_until(lambda: len(link.got) == 6 * MSS)
    ack_values = [p.ack for p in link.acks if not p.payload][-6:]
    first = ISS + 1
    assert ack_values == [first] * 5 + [first + 6 * MSS]
    before = len(link.acks)
    duplicate = TouPacket(seq=first, ack=78, flags=Flags.ACK, window=0xFFFF,
                          payload=bytes(MSS))
    link.net.feed(B_ADDR, link.b.datagram_received, encode_packet(duplicate))
    assert [p.ack for p in link.acks[before:]] == [first + 6 * MSS]


def test_ack_covering_a_retransmission_gives_no_rtt_sample() -> None:
    """Karn: the ACK that a retransmission draws covers it and the segments that waited at
    the receiver; none of them gives an RTT sample (they would make it the recovery's
    length), so SRTT is unchanged by that ACK."""
    link = Link(window=10 * MSS)
    link.drop = {1}
    link.write(bytes(10 * MSS))
    link.run_until(lambda: link.a.retransmissions == 1)
    srtt = link.a.srtt
    link.run_until(lambda: link.a.buffered < 8 * MSS)
    assert link.a.srtt == srtt


def test_rto_floor_and_formula() -> None:
    """The RTO is SRTT + 4 RTTVAR but not below min_rto (50 ms by default): a 20 ms path
    with a steady RTT gets the floor, not RFC 6298's 1 s or Linux's 200 ms."""
    link = Link()
    link.transfer(30)
    assert TouConfig().min_rto == 0.05
    srtt = link.a.srtt
    assert srtt is not None and 2 * DELAY <= srtt <= 2 * DELAY + 30 * GAP
    assert link.a.rto == pytest.approx(max(0.05, srtt + 4 * link.a.rtt.rttvar))


@pytest.mark.slow
@pytest.mark.parametrize("loss", [0.01, 0.05])
def test_lossy_simulated_transfer_is_byte_exact(loss: float) -> None:
    """A 1 MiB transfer over a seeded lossy simulated link (10% reordered by 10 ms) arrives
    byte for byte (`simulate` checks), and most losses are repaired without a timeout."""
    result = simulate(1 << 20, loss, seed=3)
    assert result.size == 1 << 20
    assert result.retransmissions > 0
    assert result.timeouts < result.fast_retransmits


def test_simulation_is_deterministic() -> None:
    """The same seed gives the same run, to the datagram."""
    assert simulate(128 * 1024, 0.05, seed=9) == simulate(128 * 1024, 0.05, seed=9)


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), loss=st.floats(0.0, 0.2), reorder=st.floats(0.0, 0.3),
       duplicate=st.floats(0.0, 0.1), rate=st.sampled_from([1e6, 40e6]))
def test_any_impairment_is_byte_exact(seed: int, loss: float, reorder: float,
                                      duplicate: float, rate: float) -> None:
    """Whatever the loss, reordering and duplication (both directions), 48 KiB arrive byte
    for byte within bounded simulated time: undo, probes and the reorder timer never lose
    or corrupt data and never stall."""
    result = simulate(48 * 1024, loss, seed=seed, reorder=reorder, duplicate=duplicate,
                      rate=rate, limit=600.0)
    assert result.size == 48 * 1024


@pytest.mark.slow
def test_bench_simulation_mode_prints_a_line_per_loss_rate(
        capsys: pytest.CaptureFixture[str]) -> None:
    """``python3 -m tools.bench.tou --sim`` runs without sockets and reports each loss rate
    with its recovery counters."""
    assert main(["--sim", "--mib", "1", "--loss", "0,0.05"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in lines] == ["0%", "5%"]
    assert all("undone" in line and "MB/s" in line for line in lines)
