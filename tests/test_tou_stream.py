# -*- test-case-name: tests.test_tou_stream -*-
"""The sans-IO TOU stream: RetroShare's handshake and FIN rules, RFC 6298 timers, fast
retransmit, flow control, timeouts; and a state machine test of the byte stream across loss,
duplication, reordering and delay on the simulated network (`tools.simnet`)."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from pqi.core import Datagram
from tcponudp.congestion import NewReno
from tcponudp.errors import NotConnectedError
from tcponudp.packet import Flags, TouPacket, decode_packet, encode_packet
from tcponudp.stream import (
    Closed,
    CloseReason,
    Connected,
    DataReceived,
    EndOfStream,
    Event,
    State,
    TouConfig,
    TouStream,
)
from tools.simnet import LinkModel, SimNet

ISS_A = 0xFFFF_FF00  # wraps during the tests
ISS_B = 1000


def _data(events: list[Event]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, DataReceived))


class Pair:
    """Two streams and a wire we deliver by hand, stepping ``now`` ourselves: drained
    datagrams wait in an outbox until `out` takes them, events gather in ``events``."""

    def __init__(self, config: TouConfig | None = None) -> None:
        self.now = 0.0
        self.a = TouStream(config=config, isn=ISS_A)
        self.b = TouStream(config=config, isn=ISS_B)
        self.events: dict[str, list[Event]] = {"a": [], "b": []}
        self._outbox: dict[str, list[bytes]] = {"a": [], "b": []}

    def _drain(self, s: TouStream) -> str:
        """Drain ``s``; after events drain again, as a skin does once it has reacted."""
        name = "a" if s is self.a else "b"
        for _ in range(8):
            events = 0
            for output in s.drain(self.now):
                if isinstance(output, Datagram):
                    assert output.addr is None  # a stream has one peer
                    self._outbox[name].append(output.data)
                else:
                    self.events[name].append(output)
                    events += 1
            if not events:
                break
        return name

    def out(self, s: TouStream) -> list[TouPacket]:
        name = self._drain(s)
        sent, self._outbox[name] = self._outbox[name], []
        return [decode_packet(d) for d in sent]

    def feed(self, s: TouStream, packets: list[TouPacket]) -> None:
        for p in packets:
            s.datagram_received(encode_packet(p), self.now)

    def collect(self) -> None:
        self._drain(self.a)
        self._drain(self.b)

    def exchange(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            pa, pb = self.out(self.a), self.out(self.b)
            if not pa and not pb:
                break
            self.feed(self.b, pa)
            self.feed(self.a, pb)
        self.collect()

    def open(self) -> None:
        self.b.listen(self.now)
        self.a.connect(self.now)
        self.exchange()
        assert self.a.state is self.b.state is State.ESTABLISHED

    def timer(self, t: float) -> None:
        self.now = t
        self.a.handle_timer(t)
        self.b.handle_timer(t)


def test_handshake_segments() -> None:
    """SYN (no ACK flag) with seq = ISS; SYN+ACK acknowledging ISS+1; a plain ACK; both sides
    report Connected once."""
    p = Pair()
    p.b.listen(0.0)
    p.a.connect(0.0)
    (syn,) = p.out(p.a)
    assert (syn.flags, syn.seq, syn.ack, syn.window, syn.payload) == (
        Flags.SYN, ISS_A, 0, 0xFFFF, b"")
    p.feed(p.b, [syn])
    (synack,) = p.out(p.b)
    assert (synack.flags, synack.seq, synack.ack) == (Flags.SYN | Flags.ACK, ISS_B, ISS_A + 1)
    p.feed(p.a, [synack])
    (ack,) = p.out(p.a)
    assert (ack.flags, ack.seq, ack.ack) == (Flags.ACK, (ISS_A + 1) % 2**32, ISS_B + 1)
    p.feed(p.b, [ack])
    p.collect()
    assert p.events["a"] == [Connected()] and p.events["b"] == [Connected()]


def test_simultaneous_open_as_retroshare_does_it() -> None:
    """Both sides dial: each answers the other's SYN with a plain ACK, repeats its SYN as
    SYN+ACK, and both end up connected (the hole-punching case)."""
    p = Pair()
    p.a.connect(0.0)
    p.b.connect(0.0)
    sa, sb = p.out(p.a), p.out(p.b)
    p.feed(p.a, sb)
    p.feed(p.b, sa)
    acks = p.out(p.a)
    assert [x.flags for x in acks] == [Flags.ACK]
    assert p.a.state is State.SYN_RCVD
    p.exchange()
    p.timer(1.0)
    p.exchange()
    assert p.a.state is p.b.state is State.ESTABLISHED
    assert p.events["a"] == [Connected()] and p.events["b"] == [Connected()]


def test_syn_repeats_at_fixed_interval_then_times_out() -> None:
    """An unanswered SYN is repeated every syn_interval, not backed off, and the stream gives
    up at connect_timeout."""
    p = Pair(TouConfig(syn_interval=1.0, connect_timeout=5.0))
    p.a.connect(0.0)
    assert len(p.out(p.a)) == 1
    for t in (1.0, 2.0, 3.0, 4.0):
        assert p.a.next_deadline() == t
        p.timer(t)
        assert [x.flags for x in p.out(p.a)] == [Flags.SYN]
    p.timer(5.0)
    p.collect()
    assert p.events["a"] == [Closed(CloseReason.CONNECT_TIMEOUT)]
    assert p.a.next_deadline() is None


def test_data_and_fin_without_sequence_space() -> None:
    """Data flows in order; our FIN carries the next sequence number and consumes none (the
    peer acknowledges exactly that number, as RetroShare does); both sides end CLOSED cleanly."""
    p = Pair()
    p.open()
    p.a.send(b"x" * 5000)
    p.a.close(p.now)
    sizes: list[int] = []
    fins: list[TouPacket] = []
    for _ in range(10):
        packets = p.out(p.a)
        sizes += [len(x.payload) for x in packets if x.payload]
        fins += [x for x in packets if x.has(Flags.FIN)]
        p.feed(p.b, packets)
        if fins:
            break
        p.feed(p.a, p.out(p.b))
    assert sizes == [1364, 1364, 1364, 908]  # whole segments, the FIN after the last
    (fin,) = fins
    assert fin.flags == Flags.ACK | Flags.FIN and fin.payload == b""
    assert fin.seq == (ISS_A + 1 + 5000) % 2**32
    (fin_ack,) = p.out(p.b)
    assert fin_ack.ack == fin.seq
    p.feed(p.a, [fin_ack])
    assert p.a.state is State.FIN_WAIT_2
    p.collect()
    assert _data(p.events["b"]) == b"x" * 5000
    assert p.events["b"][-1] == EndOfStream()
    p.b.close(p.now)
    p.exchange()
    assert p.a.state is p.b.state is State.TIME_WAIT
    assert p.events["a"][-1] == Closed(CloseReason.CLOSED)
    assert p.events["b"][-1] == Closed(CloseReason.CLOSED)
    p.timer(p.now + 2.0)
    assert p.a.state is p.b.state is State.CLOSED
    with pytest.raises(NotConnectedError):
        p.a.send(b"late")


def test_lost_fin_is_sent_again() -> None:
    """If our FIN is lost the stream repeats it until the peer's FIN arrives."""
    p = Pair()
    p.open()
    p.a.close(p.now)
    (fin,) = p.out(p.a)
    assert fin.has(Flags.FIN)
    deadline = p.a.next_deadline()
    assert deadline is not None
    p.timer(deadline)
    assert [x.flags for x in p.out(p.a)] == [Flags.ACK | Flags.FIN]


def test_rto_retransmits_same_segment_with_backoff() -> None:
    """A lost segment is sent again at the RTO with the same sequence number and payload (no
    re-segmentation); the timer doubles on each expiry (Karn) up to max_rto."""
    p = Pair(TouConfig(initial_rto=1.0, max_rto=3.0, tail_loss_probe=False))
    p.open()
    p.a.send(b"hello")
    (lost,) = p.out(p.a)
    rto = p.a.rto
    assert p.a.next_deadline() == pytest.approx(p.now + rto)
    p.timer(p.now + rto)
    (again,) = p.out(p.a)
    assert (again.seq, again.payload) == (lost.seq, lost.payload)
    assert p.a.rto == pytest.approx(min(2 * rto, 3.0))
    for _ in range(5):
        p.timer(p.now + p.a.rto)
    assert p.a.rto == 3.0
    assert p.a.retransmissions == 6


def test_rtt_estimation_rfc6298() -> None:
    """The first sample R sets SRTT = R and RTTVAR = R/2; RTO = SRTT + 4 RTTVAR within the
    bounds; later samples are smoothed with 1/8 and 1/4."""
    p = Pair(TouConfig(min_rto=0.01))
    p.open()
    p.a.send(b"a")
    seg = p.out(p.a)
    p.now += 0.5
    p.feed(p.b, seg)
    p.feed(p.a, p.out(p.b))
    # the handshake gave a zero sample; this one is 0.5 s
    srtt = 0.875 * 0.0 + 0.125 * 0.5
    rttvar = 0.75 * 0.0 + 0.25 * 0.5
    assert p.a.srtt == pytest.approx(srtt)
    assert p.a.rto == pytest.approx(srtt + 4 * rttvar)


def test_fast_retransmit_on_three_duplicate_acks() -> None:
    """The receiver acknowledges out-of-order segments at once (duplicate ACKs); the third
    makes the sender resend the missing segment before its timer."""
    p = Pair()
    p.open()
    p.a.cc = NewReno(1364, initial_window=10 * 1364)
    p.a.send(b"y" * 1364 * 5)
    segs = p.out(p.a)
    assert len(segs) >= 4
    p.feed(p.b, segs[1:4])
    dups = p.out(p.b)
    assert len(dups) == 3 and {d.ack for d in dups} == {segs[0].seq}
    p.feed(p.a, dups)
    resent = p.out(p.a)
    assert resent[0].seq == segs[0].seq and resent[0].payload == segs[0].payload
    assert p.a.retransmissions == 1


def test_drain_with_events_leaves_segments_to_the_reaction() -> None:
    """A drain that hands over events cuts no new segment: it asks for the next drain at once
    (`next_deadline` is now), so bytes the reader writes in reaction leave in the segment
    that carries the ACK, with no pure ACK before it; without a reaction the ACK follows."""
    p = Pair()
    p.open()
    p.a.send(b"ping")
    p.feed(p.b, p.out(p.a))
    assert p.b.drain(p.now) == [DataReceived(b"ping")]
    assert p.b.next_deadline() == p.now
    p.b.send(b"pong")
    (reply,) = [decode_packet(o.data) for o in p.b.drain(p.now) if isinstance(o, Datagram)]
    assert (reply.payload, reply.ack) == (b"pong", (ISS_A + 1 + 4) % 2**32)
    assert p.b.next_deadline() > p.now
    p.feed(p.a, [reply])
    assert p.a.drain(p.now) == [DataReceived(b"pong")]
    (ack,) = [decode_packet(o.data) for o in p.a.drain(p.now) if isinstance(o, Datagram)]
    assert (ack.flags, ack.payload, ack.ack) == (Flags.ACK, b"", ISS_B + 1 + 4)


def test_segments_read_in_one_turn_reach_the_reader_as_one_event() -> None:
    """In-order segments fed before one drain come out as a single `DataReceived` holding
    their bytes in order (one call into TLS per reactor turn, not one per segment), followed
    by one cumulative ACK; a segment fed after that drain is a new event."""
    p = Pair(TouConfig(mss=100))
    p.open()
    payload = bytes(range(250)) + b"x" * 50  # three segments, within the first window
    p.a.send(payload)
    segments = p.out(p.a)
    assert len(segments) > 2
    p.feed(p.b, segments)
    outputs = p.b.drain(p.now)
    assert outputs == [DataReceived(payload)]
    acks = [decode_packet(o.data) for o in p.b.drain(p.now) if isinstance(o, Datagram)]
    assert [a.ack for a in acks] == [(ISS_A + 1 + len(payload)) % 2**32]
    p.a.send(b"more")
    p.feed(p.b, p.out(p.a))
    assert p.b.drain(p.now) == [DataReceived(b"more")]


def test_flow_control_window() -> None:
    """A paused reader's window shrinks to zero; the sender stops, probes, and resumes when the
    reader does."""
    cfg = TouConfig(receive_buffer=10_000)
    p = Pair(cfg)
    p.open()
    p.b.pause_reading()
    p.a.send(b"z" * 30_000)
    p.exchange(200)
    for _ in range(1, 40):
        p.timer(p.now + 1.0)
        p.exchange()
    assert _data(p.events["b"]) == b""
    assert p.a.connected and p.b.connected
    assert p.a.buffered >= 20_000
    p.b.resume_reading()
    for _ in range(40):
        p.exchange()
        p.collect()
        if len(_data(p.events["b"])) == 30_000:
            break
        p.timer(p.now + 1.0)
    assert _data(p.events["b"]) == b"z" * 30_000


def test_keepalive_and_idle_timeout() -> None:
    """An idle connection sends an ACK every 15 s; without hearing the peer for 60 s it
    closes with IDLE_TIMEOUT."""
    p = Pair()
    p.open()
    assert p.a.next_deadline() == pytest.approx(15.0)
    p.timer(15.0)
    assert [x.flags for x in p.out(p.a)] == [Flags.ACK]
    p.timer(60.0)
    p.collect()
    assert p.events["a"] == [Connected(), Closed(CloseReason.IDLE_TIMEOUT)]


def test_abort_sends_rst() -> None:
    """abort() sends RST; the peer closes with RESET; a RST with a wild sequence is ignored."""
    p = Pair()
    p.open()
    forged = TouPacket(seq=(ISS_A - 100_000) % 2**32, ack=0, flags=Flags.RST, window=0)
    p.feed(p.b, [forged])
    assert p.b.connected
    p.a.abort(p.now)
    (rst,) = p.out(p.a)
    assert rst.has(Flags.RST)
    p.feed(p.b, [rst])
    p.collect()
    assert p.events["b"][-1] == Closed(CloseReason.RESET)
    assert p.events["a"][-1] == Closed(CloseReason.ABORTED)


def test_retransmit_limit() -> None:
    """A peer that stops acknowledging data ends the stream after max_retransmits."""
    p = Pair(TouConfig(max_retransmits=3, idle_timeout=1e9, max_rto=1.0))
    p.open()
    p.a.send(b"gone")
    p.out(p.a)
    for _ in range(10):
        deadline = p.a.next_deadline()
        assert deadline is not None
        p.timer(deadline)
        p.out(p.a)
        if p.a.close_reason is not None:
            break
    assert p.a.close_reason is CloseReason.RETRANSMIT_LIMIT


def test_garbage_is_counted() -> None:
    """A datagram too short for the header is counted, not raised."""
    s = TouStream()
    s.datagram_received(b"short", 0.0)
    assert s.undecodable == 1


def test_newreno_phases() -> None:
    """With Reno's beta: slow start grows by acked bytes (at most 2 MSS per ACK), loss halves
    (the window stays there through recovery), timeout resets to one segment."""
    cc = NewReno(1000, initial_window=2000, beta=0.5)
    cc.on_ack(1000, 2000, 0.0)
    assert cc.cwnd == 3000
    cc.on_loss(8000, 0.0)
    assert (cc.ssthresh, cc.cwnd) == (4000, 4000)
    cc.on_ack(1000, 8000, 0.0)
    assert cc.cwnd == 4000  # no growth during recovery
    cc.on_recovery_end(0.0)
    assert cc.cwnd == 4000
    cc.on_ack(4000, 4000, 0.0)
    assert cc.cwnd == 5000  # congestion avoidance: one MSS per window
    cc.on_timeout(5000, 0.0)
    assert cc.cwnd == 1000


def test_default_decrease_is_cubic_beta_with_reno_fair_increase() -> None:
    """By default a loss keeps 70% of the flight (RFC 9438's beta) and congestion avoidance
    adds 3(1-beta)/(1+beta) of a segment per window, so it stays as fair to Reno as Reno."""
    cc = NewReno(1000, initial_window=10_000)
    cc.on_loss(10_000, 0.0)
    cc.on_recovery_end(0.0)
    assert (cc.ssthresh, cc.cwnd) == (7000, 7000)
    assert cc.alpha == pytest.approx(0.9 / 1.7)
    acked = 0
    while cc.cwnd == 7000:
        cc.on_ack(1000, cc.cwnd, 0.0)
        acked += 1000
    assert acked == 14_000  # 7000 / alpha = 13_222 bytes rounded up to whole ACKs
    with pytest.raises(ValueError):
        NewReno(1000, beta=1.0)


def test_undo_restores_the_window_from_before_the_loss() -> None:
    """A reduction that proves spurious is undone: the window and threshold return to what
    they were, and recovery ends; a timeout is undone the same way."""
    cc = NewReno(1000, initial_window=20_000)
    cc.on_loss(20_000, 0.0)
    assert cc.cwnd == 14_000 and cc.in_recovery
    cc.undo(0.0)
    assert (cc.cwnd, cc.ssthresh, cc.in_recovery) == (20_000, 4 * 1024 * 1024, False)
    cc.on_timeout(20_000, 0.0)
    assert cc.cwnd == 1000
    cc.undo(0.0)
    assert cc.cwnd == 20_000


# --- the simulated network -----------------------------------------------------------------

A_ADDR, B_ADDR = ("192.0.2.1", 1), ("192.0.2.2", 1)  # simulated, never contacted (RFC 5737)
CLEAN = LinkModel(delay=0.01)


class Universe(RuleBasedStateMachine):
    """Two streams on the simulated network (`tools.simnet`, a fake clock) whose link the rules
    make lossy, duplicating and jittery (reordering), and whose next datagrams they lose or
    hold back.  Invariant: what each side received is a prefix of what the other sent.  At the
    end the link heals and, within bounded simulated time, everything arrives exactly."""

    def __init__(self) -> None:
        super().__init__()
        # Timeouts are out of the way: the property is about the byte stream.
        config = TouConfig(min_rto=0.05, initial_rto=0.2, idle_timeout=1e9,
                           connect_timeout=1e9, max_retransmits=10**6)
        self.a = TouStream(isn=ISS_A, config=config)
        self.b = TouStream(isn=ISS_B, config=config)
        self.sent = {"a": bytearray(), "b": bytearray()}
        self.got = {"a": bytearray(), "b": bytearray()}
        #: Faults for the next datagrams, in order (None: lost; a number: held back that long).
        self.faults: list[float | None] = []
        self.net = SimNet(0, default=CLEAN)
        self.net.faults.append(lambda _src, _dst, _data: self.faults.pop(0) if self.faults
                               else 0.0)
        for name, stream, addr, peer in (("a", self.a, A_ADDR, B_ADDR),
                                         ("b", self.b, B_ADDR, A_ADDR)):
            self.net.add(addr, stream, peer=peer,
                         receive=lambda data, _src, now, s=stream: s.datagram_received(data, now),
                         on_output=lambda _node, event, n=name: self._event(n, event))
        self.net.feed(B_ADDR, self.b.listen)
        self.net.feed(A_ADDR, self.a.connect)

    def _event(self, name: str, event: Event) -> None:
        if isinstance(event, DataReceived):
            self.got[name] += event.data
        assert not isinstance(event, Closed), event

    @rule(side=st.sampled_from("ab"), data=st.binary(min_size=1, max_size=4000))
    def send(self, side: str, data: bytes) -> None:
        stream, addr = (self.a, A_ADDR) if side == "a" else (self.b, B_ADDR)
        stream.send(data)
        self.sent[side] += data
        self.net.nodes[addr].driver.service()

    @rule()
    def lose_next(self) -> None:
        self.faults.append(None)

    @rule(delay=st.floats(0.001, 0.5))
    def hold_next(self, delay: float) -> None:
        """Delays the next datagram so later ones overtake it (reordering)."""
        self.faults.append(delay)

    @rule(loss=st.floats(0.0, 0.5), duplicate=st.floats(0.0, 0.3), jitter=st.floats(0.0, 0.1),
          seed=st.integers(0, 2**16))
    def impair(self, loss: float, duplicate: float, jitter: float, seed: int) -> None:
        self.net.random.seed(seed)
        self.net.link(A_ADDR, B_ADDR, LinkModel(delay=0.01, loss=loss, duplicate=duplicate,
                                                jitter=jitter))

    @rule(seconds=st.floats(0.001, 3.0))
    def run(self, seconds: float) -> None:
        self.net.run(seconds)

    @invariant()
    def prefixes(self) -> None:
        assert self.sent["b"].startswith(self.got["a"])
        assert self.sent["a"].startswith(self.got["b"])

    def teardown(self) -> None:
        self.faults.clear()
        self.net.link(A_ADDR, B_ADDR, CLEAN)
        self.net.run(600.0, until=lambda: self._complete() and not (
            self.a.buffered or self.b.buffered))
        assert self._complete()
        assert self.a.connected and self.b.connected

    def _complete(self) -> bool:
        return self.got["b"] == self.sent["a"] and self.got["a"] == self.sent["b"]


Universe.TestCase.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)
test_universe = Universe.TestCase
test_universe.pytestmark = [pytest.mark.slow]
