# -*- test-case-name: tests.test_tou_stream -*-
"""The TCP-over-UDP stream: a sans-IO reliable byte stream that speaks RetroShare's TOU.

`TouStream` is fed datagrams (`datagram_received`), application calls (`send`, `close`,
`abort`, `pause_reading`) and the time (`handle_timer`); it returns the datagrams to send
(`datagrams_to_send`), the next time it wants to be woken (`next_deadline`) and events
(`events`: `Connected`, `DataReceived`, `EndOfStream`, `Closed`).  It never reads a clock.

What RetroShare's ``TcpStream`` (``src/tcponudp/tcpstream.cc``) expects, and we therefore do:

* the SYN consumes one sequence number and carries no ACK flag; every other segment carries ACK
  and the next expected sequence number;
* a FIN consumes **no** sequence number: it is sent with the next sequence number and is
  acknowledged by an ACK equal to it.  RetroShare never retransmits its FIN; we do (with
  backoff) until the peer's FIN arrives, which RetroShare answers with an ACK each time;
* a receiver only takes the segment whose sequence number equals the next expected one, so
  retransmissions keep their original boundaries (we never re-segment);
* in a simultaneous open each side answers the other's SYN with a plain ACK; the SYN (or
  SYN+ACK) is repeated at a fixed interval, not backed off, which keeps NAT holes open;
* the window field is 16 bits of bytes (no scaling): at most 65535 bytes are ever in flight;
* keep-alive: an ACK after 15 s without sending; the link is dead after 60 s without hearing
  from the peer (RetroShare's ``TCP_ALIVE_TIMEOUT`` and ``kNoPktTimeout``).

Beyond RetroShare: RTO estimation per RFC 6298 (Karn's rule, exponential backoff, bounds),
loss recovery from cumulative ACKs alone (the header has no options, so no SACK, DSACK or
timestamps): fast retransmit on duplicate ACKs or by time (RACK-like, with a reorder window
learnt from measured reordering), NewReno partial ACKs, limited transmit and "pipe" sending in
recovery, tail loss probes, a second chance for a lost retransmission before the timer, and
undo of window cuts that prove spurious; the receiver ACKs every segment at once while it holds
out-of-order data.  Congestion control is pluggable (`tcponudp.congestion`).  Also RST on
abort, and a short TIME_WAIT that re-sends our FIN if the peer's FIN shows that ours was lost.
The state diagram and the loss recovery rules are in ``docs/tou.md``.
"""

from __future__ import annotations

import enum
import os
from collections import deque
from dataclasses import dataclass
from typing import Final

from pqi.wire.errors import DecodeError

from .congestion import CongestionControl, NewReno
from .errors import NotConnectedError
from .packet import Flags, TouPacket, decode_packet, encode_packet

__all__ = [
    "State", "CloseReason", "TouConfig", "TouStream", "RecoveryStats",
    "Event", "Connected", "DataReceived", "EndOfStream", "Closed",
    "DEFAULT_MSS", "RETROSHARE_MSS", "MAX_WINDOW",
]

#: Payload per segment: a relayed datagram (16-byte relay header + 20-byte TOU header + payload)
#: stays within 1400 bytes.
DEFAULT_MSS: Final = 1364
#: What RetroShare itself sends (``MAX_SEG``); it accepts up to twice that in one segment.
RETROSHARE_MSS: Final = 1000
#: The window field is 16 bits.
MAX_WINDOW: Final = 0xFFFF

_MOD: Final = 1 << 32
#: Cap on what observed reordering may raise the reorder window to, in quarters of the minimum
#: RTT (the window is also capped in SRTTs, below).
_MAX_REO_STEPS: Final = 64
#: The reorder window's cap in SRTTs.  RFC 8985 caps it at one SRTT; measured reordering of
#: several round trips (the lossy relay holds datagrams 10 ms on a 2 ms path) then makes
#: nearly every reordered segment a window cut, and two SRTTs gave clearly better goodput in
#: the simulation (``python3 -m tools.bench.tou --sim``).  The window only grows on measured
#: reordering and falls back to min RTT / 4 after 16 recoveries without any.
_REO_WND_SRTTS: Final = 2


def _diff(a: int, b: int) -> int:
    """``a - b`` in sequence space, as a signed number."""
    return ((a - b + (1 << 31)) % _MOD) - (1 << 31)


class State(enum.Enum):
    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN_SENT"
    SYN_RCVD = "SYN_RCVD"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN_WAIT_1"
    FIN_WAIT_2 = "FIN_WAIT_2"
    CLOSING = "CLOSING"
    TIME_WAIT = "TIME_WAIT"
    CLOSE_WAIT = "CLOSE_WAIT"
    LAST_ACK = "LAST_ACK"


_SYNCHRONISED: Final = frozenset({
    State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSING, State.TIME_WAIT,
    State.CLOSE_WAIT, State.LAST_ACK})


class CloseReason(enum.Enum):
    """Why a stream ended (the text is what a user sees)."""

    CLOSED = "closed cleanly by both sides"
    RESET = "the peer reset the connection"
    ABORTED = "aborted locally"
    CONNECT_TIMEOUT = "the peer never answered the handshake"
    IDLE_TIMEOUT = "nothing heard from the peer for too long"
    RETRANSMIT_LIMIT = "the peer stopped acknowledging data"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Connected:
    """The handshake completed."""


@dataclass(frozen=True, slots=True)
class DataReceived:
    """In-order bytes from the peer."""

    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfStream:
    """The peer sent FIN: it will send no more (it may still read)."""


@dataclass(frozen=True, slots=True)
class Closed:
    """The stream is over; nothing more will be delivered or sent."""

    reason: CloseReason


Event = Connected | DataReceived | EndOfStream | Closed


@dataclass(frozen=True, slots=True)
class TouConfig:
    """Tunables; defaults follow RetroShare where it has a value, RFC 6298 otherwise."""

    mss: int = DEFAULT_MSS
    #: Bytes we buffer for the reader (out-of-order plus unread); the advertised window is the
    #: free part of it, at most `MAX_WINDOW`.
    receive_buffer: int = 4 * MAX_WINDOW
    initial_rto: float = 1.0
    #: RFC 6298 says 1 s and allows less; Linux uses 0.2 s.  RetroShare itself has no floor
    #: (2 * (SRTT + 4 RTTVAR)).  Every RTT sample already contains the peer's ACK delay, so the
    #: floor only guards against a too-small RTTVAR on a steady link; a spurious timeout is
    #: detected and undone (see `TouStream`).  50 ms is 50 clock granules.
    min_rto: float = 0.05
    max_rto: float = 15.0
    clock_granularity: float = 0.001
    #: Duplicate ACKs that mark the first unacknowledged segment lost before the reorder timer
    #: does (RFC 5681).  Once a connection has seen reordering only time decides (as Linux's
    #: RACK does), until 16 recoveries pass without any.
    dupthresh: int = 3
    #: Send a tail loss probe (RFC 8985) after ~2 SRTT without an ACK instead of waiting for
    #: the retransmission timer.
    tail_loss_probe: bool = True
    #: Retransmissions of one segment before giving up (RetroShare: 10).
    max_retransmits: int = 10
    #: SYN / SYN+ACK repeat interval during the handshake (fixed, for hole punching).
    syn_interval: float = 1.0
    connect_timeout: float = 80.0
    keepalive_interval: float = 15.0
    idle_timeout: float = 60.0
    time_wait: float = 2.0


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


@dataclass(slots=True)
class _Segment:
    seq: int
    data: bytes
    sent_at: float
    transmissions: int = 1

    @property
    def end(self) -> int:
        return (self.seq + len(self.data)) % _MOD


class TouStream:
    """One TOU connection's state machine.  Create it, then `connect` (active open) or
    `listen` (passive open), and drive it with datagrams and timers."""

    def __init__(self, *, config: TouConfig | None = None,
                 congestion: CongestionControl | None = None,
                 isn: int | None = None) -> None:
        self.config = config or TouConfig()
        self.cc: CongestionControl = congestion or NewReno(self.config.mss)
        self.state = State.CLOSED
        self.close_reason: CloseReason | None = None
        self._iss = isn if isn is not None else int.from_bytes(os.urandom(4), "big")
        self._snd_nxt = self._iss
        self._snd_una = self._iss
        self._send_buf = bytearray()
        self._unacked: deque[_Segment] = deque()
        self._peer_window = MAX_WINDOW
        self._dupacks = 0
        self._recover: int | None = None
        # loss detection and undo (docs/tou.md, "Loss recovery")
        self._reo_steps = 1
        self._reordering = False
        self._recoveries_since_reordering = 0
        self._hole_since: float | None = None
        self._last_dupack_at: float | None = None
        self._reorder_deadline: float | None = None
        self._tlp_deadline: float | None = None
        self._tlp_sent = False
        # The current loss episode, while it may still prove spurious (see `_undo_check`).
        self._episode_until: float | None = None
        self._episode_retx = 0
        self._episode_proved = 0
        self._episode_acked = False
        self._close_wanted = False
        self._fin_sent = False
        self._fin_acked = False
        # receive side
        self._irs = 0
        self._rcv_nxt = 0
        self._ooo: dict[int, bytes] = {}
        self._ooo_bytes = 0
        self._peer_fin_at: int | None = None
        self._peer_finished = False
        self._reading_paused = False
        self._held = bytearray()
        self._ack_needed = False
        self._last_window_sent = MAX_WINDOW
        # RTT / timers
        self._srtt: float | None = None
        self._min_rtt: float | None = None
        self._rttvar = 0.0
        self._rto = self.config.initial_rto
        self._rto_deadline: float | None = None
        self._syn_deadline: float | None = None
        self._syn_sent_at: float | None = None
        self._syn_repeated = False
        self._connect_deadline: float | None = None
        self._fin_deadline: float | None = None
        self._fin_rto = self.config.initial_rto
        self._persist_deadline: float | None = None
        self._time_wait_deadline: float | None = None
        self._last_sent = 0.0
        self._last_heard = 0.0
        self._out: list[bytes] = []
        self._events: list[Event] = []
        # counters
        self.segments_sent = 0
        self.segments_received = 0
        self.retransmissions = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.undecodable = 0
        self.recovery = RecoveryStats()

    # -- the application's side --------------------------------------------------------------

    def connect(self, now: float) -> None:
        """Active open: send SYN and repeat it until answered or ``connect_timeout``."""
        if self.state is not State.CLOSED or self.close_reason is not None:
            raise NotConnectedError(f"connect() in state {self.state.name}")
        self._snd_nxt = (self._iss + 1) % _MOD
        self._snd_una = self._iss
        self.state = State.SYN_SENT
        self._connect_deadline = now + self.config.connect_timeout
        self._last_heard = now
        self._send_syn(now)

    def listen(self, now: float) -> None:
        """Passive open: wait for the peer's SYN (until ``connect_timeout``)."""
        if self.state is not State.CLOSED or self.close_reason is not None:
            raise NotConnectedError(f"listen() in state {self.state.name}")
        self.state = State.LISTEN
        self._connect_deadline = now + self.config.connect_timeout
        self._last_heard = now

    def send(self, data: bytes) -> None:
        """Queue bytes; raises `NotConnectedError` after `close` or once the stream is over."""
        if self._close_wanted or self.close_reason is not None:
            raise NotConnectedError("the stream is closed for sending")
        self._send_buf += data

    @property
    def buffered(self) -> int:
        """Bytes queued or in flight (for the transport's producer high-water mark)."""
        return len(self._send_buf) + _diff(self._snd_nxt, self._snd_una)

    @property
    def connected(self) -> bool:
        return self.state in _SYNCHRONISED and self.close_reason is None

    def close(self, now: float) -> None:
        """Graceful close: FIN once the queued bytes are sent (after the handshake, if it is
        still under way).  A stream that was never opened, or only listens, just ends."""
        if self.close_reason is not None:
            return
        if self.state in (State.CLOSED, State.LISTEN):
            self._finish(CloseReason.ABORTED, State.CLOSED)
            return
        self._close_wanted = True

    def abort(self, now: float) -> None:
        """Send RST and drop everything."""
        if self.close_reason is not None:
            return
        if self.state in _SYNCHRONISED or self.state is State.SYN_RCVD:
            self._emit(Flags.RST | Flags.ACK, now)
        self._finish(CloseReason.ABORTED, State.CLOSED)

    def pause_reading(self) -> None:
        """Hold received data (the reader is busy); the advertised window shrinks."""
        self._reading_paused = True

    def resume_reading(self) -> None:
        self._reading_paused = False
        if self._held:
            data = bytes(self._held)
            self._held.clear()
            self._events.append(DataReceived(data))
        if self._last_window_sent < 2 * self.config.mss <= self._window():
            self._ack_needed = True

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    def events(self) -> list[Event]:
        """Events since the last call, in order."""
        events, self._events = self._events, []
        return events

    # -- the network's side ------------------------------------------------------------------

    def datagram_received(self, data: bytes, now: float) -> None:
        """Feed one datagram from the peer (a TOU segment; anything else is counted and
        dropped)."""
        try:
            packet = decode_packet(data)
        except DecodeError:
            self.undecodable += 1
            return
        self.segments_received += 1
        if self.close_reason is not None and self.state is not State.TIME_WAIT:
            return
        if packet.has(Flags.RST):
            self._rst_received(packet)
            return
        if self.state is State.LISTEN or self.state is State.CLOSED and self.close_reason is None:
            if self.state is State.LISTEN:
                self._in_listen(packet, now)
            return
        self._last_heard = now
        if self.state is State.SYN_SENT:
            self._in_syn_sent(packet, now)
        elif self.state is State.SYN_RCVD:
            self._in_syn_rcvd(packet, now)
        elif self.state is State.TIME_WAIT:
            if packet.has(Flags.FIN):
                # The peer still sends its FIN: ours was lost.  Answer with ACK and our FIN.
                self._emit(Flags.ACK | Flags.FIN, now)
        else:
            self._in_synchronised(packet, now)

    def handle_timer(self, now: float) -> None:
        """Run whatever timers are due at ``now``."""
        cfg = self.config
        if self.state is State.TIME_WAIT:
            if self._time_wait_deadline is not None and now >= self._time_wait_deadline:
                self.state = State.CLOSED
                self._time_wait_deadline = None
            return
        if self.close_reason is not None:
            return
        if self.state in (State.LISTEN, State.SYN_SENT, State.SYN_RCVD):
            if self._connect_deadline is not None and now >= self._connect_deadline:
                self._finish(CloseReason.CONNECT_TIMEOUT, State.CLOSED)
                return
            if self._syn_deadline is not None and now >= self._syn_deadline:
                self._syn_repeated = True
                self._send_syn(now)
            return
        if now >= self._last_heard + cfg.idle_timeout:
            self._finish(CloseReason.IDLE_TIMEOUT, State.CLOSED)
            return
        if self._rto_deadline is not None and now >= self._rto_deadline and self._unacked:
            head = self._unacked[0]
            # Probes into a zero window are answered; they do not count towards the limit.
            if head.transmissions > cfg.max_retransmits and self._peer_window:
                self._emit(Flags.RST | Flags.ACK, now)
                self._finish(CloseReason.RETRANSMIT_LIMIT, State.CLOSED)
                return
            self.recovery.timeouts += 1
            self.cc.on_timeout(self._flight(), now)
            self._recover = self._snd_nxt
            self._start_episode(now)
            self._dupacks = 0
            self._hole_since = self._last_dupack_at = self._reorder_deadline = None
            self._tlp_deadline = None
            self._retransmit(head, now)
            self._rto = min(self._rto * 2, cfg.max_rto)
            self._rto_deadline = now + self._rto
        if self._reorder_deadline is not None and now >= self._reorder_deadline:
            self._reorder_deadline = None
            self._detect_loss(now)
        if self._tlp_deadline is not None and now >= self._tlp_deadline:
            self._send_probe(now)
        if self._persist_deadline is not None and now >= self._persist_deadline:
            self._persist_deadline = None
            self._rto = min(self._rto * 2, cfg.max_rto)
            self._send_new_segment(now, probe=True)
        if self._fin_deadline is not None and now >= self._fin_deadline:
            self._fin_rto = min(self._fin_rto * 2, cfg.max_rto)
            self._fin_deadline = now + self._fin_rto
            self._emit(Flags.ACK | Flags.FIN, now)

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """Everything the stream wants on the wire now (data as the windows allow, ACKs)."""
        self._pump(now)
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        """When `handle_timer` must next run (``None``: nothing pending)."""
        if self.state is State.TIME_WAIT:
            return self._time_wait_deadline
        if self.close_reason is not None:
            return None
        if self.state in (State.LISTEN, State.SYN_SENT, State.SYN_RCVD):
            return min(d for d in (self._connect_deadline, self._syn_deadline) if d is not None)
        cfg = self.config
        candidates = [self._last_heard + cfg.idle_timeout]
        if self._unacked:
            for d in (self._rto_deadline, self._reorder_deadline, self._tlp_deadline):
                if d is not None:
                    candidates.append(d)
        for d in (self._persist_deadline, self._fin_deadline):
            if d is not None:
                candidates.append(d)
        candidates.append(self._last_sent + cfg.keepalive_interval)
        return min(candidates)

    # -- handshake ---------------------------------------------------------------------------

    def _send_syn(self, now: float) -> None:
        self._syn_sent_at = now
        self._syn_deadline = now + self.config.syn_interval
        if self.state is State.SYN_SENT:
            self._emit(Flags.SYN, now, seq=self._iss, ack=0)
        else:
            self._emit(Flags.SYN | Flags.ACK, now, seq=self._iss)

    def _take_peer_syn(self, packet: TouPacket) -> None:
        self._irs = packet.seq
        self._rcv_nxt = (packet.seq + 1) % _MOD
        self._peer_window = packet.window

    def _in_listen(self, packet: TouPacket, now: float) -> None:
        if not packet.has(Flags.SYN) or packet.has(Flags.ACK):
            return
        self._take_peer_syn(packet)
        self._snd_nxt = (self._iss + 1) % _MOD
        self._snd_una = self._iss
        self.state = State.SYN_RCVD
        self._last_heard = now
        self._send_syn(now)

    def _in_syn_sent(self, packet: TouPacket, now: float) -> None:
        if packet.has(Flags.SYN) and packet.has(Flags.ACK):
            if packet.ack != self._snd_nxt:
                return
            self._take_peer_syn(packet)
            self._established(now)
            self._ack_needed = True
        elif packet.has(Flags.SYN):
            # Simultaneous open: acknowledge their SYN, keep repeating ours (now with ACK).
            self._take_peer_syn(packet)
            self.state = State.SYN_RCVD
            self._emit(Flags.ACK, now)

    def _in_syn_rcvd(self, packet: TouPacket, now: float) -> None:
        if packet.has(Flags.SYN) and not packet.has(Flags.ACK) and packet.seq == self._irs:
            self._syn_repeated = True
            self._send_syn(now)  # our SYN+ACK was lost
            return
        if not packet.has(Flags.ACK) or packet.ack != self._snd_nxt:
            return
        if packet.has(Flags.SYN):
            if packet.seq != self._irs:
                return
            self._ack_needed = True
        self._peer_window = packet.window
        self._established(now)
        if packet.payload or packet.has(Flags.FIN):
            self._in_synchronised(packet, now)

    def _established(self, now: float) -> None:
        self.state = State.ESTABLISHED
        self._snd_una = self._snd_nxt
        if self._syn_sent_at is not None and not self._syn_repeated:
            self._rtt_sample(now - self._syn_sent_at)
        self._syn_deadline = None
        self._connect_deadline = None
        self._events.append(Connected())

    def _rst_received(self, packet: TouPacket) -> None:
        if self.state in (State.CLOSED, State.LISTEN, State.TIME_WAIT):
            return
        if self.state is State.SYN_SENT:
            acceptable = packet.has(Flags.ACK) and packet.ack == self._snd_nxt
        else:
            acceptable = 0 <= _diff(packet.seq, self._rcv_nxt) <= MAX_WINDOW
        if acceptable:
            self._finish(CloseReason.RESET, State.CLOSED)

    # -- established -------------------------------------------------------------------------

    def _in_synchronised(self, packet: TouPacket, now: float) -> None:
        if packet.has(Flags.SYN):
            # Our ACK of their SYN+ACK (or SYN) was lost; say it again.
            self._ack_needed = True
            return
        if packet.has(Flags.ACK):
            self._process_ack(packet, now)
        if packet.payload or packet.has(Flags.FIN):
            self._process_data(packet, now)

    def _process_ack(self, packet: TouPacket, now: float) -> None:
        advance = _diff(packet.ack, self._snd_una)
        in_flight = _diff(self._snd_nxt, self._snd_una)
        if advance > in_flight or advance < 0:
            return  # acknowledges something we never sent, or very old
        window_changed = packet.window != self._peer_window
        self._peer_window = packet.window
        if packet.window and self._persist_deadline is not None:
            self._persist_deadline = None
        if advance == 0:
            pure = not packet.payload and not packet.has(Flags.FIN) and not window_changed
            if pure and self._unacked:
                # The receiver got a segment beyond the first unacknowledged one.
                self._dupacks += 1
                self._last_dupack_at = now
                if self._hole_since is None:
                    self._hole_since = now
                self._detect_loss(now)
            elif pure and not self._fin_sent and self._undo_check(True, now):
                # Nothing outstanding, so no hole: this answers a duplicate segment.
                self._undo(now)
            self._check_fin_acked(packet, now)
            return
        flight_before = in_flight
        head = self._unacked[0] if self._unacked else None
        hole_since, dupacks = self._hole_since, self._dupacks
        sample: float | None = None
        karn = False
        while self._unacked and _diff(packet.ack, self._unacked[0].end) >= 0:
            seg = self._unacked.popleft()
            if seg.transmissions == 1:
                if sample is None or not dupacks:
                    # The segment whose arrival sent this ACK: the last one covered, or the
                    # first when it filled a hole (the rest waited at the receiver and would
                    # make the sample as long as the whole recovery).
                    sample = now - seg.sent_at
                continue
            karn = True
            self._episode_acked = True
            if (self._episode_until is not None and self._min_rtt is not None
                    and now - seg.sent_at < self._min_rtt / 2):
                # Acknowledged sooner after the retransmission than any round trip takes:
                # an earlier copy arrived, this retransmission was needless.
                self._episode_proved += 1
        self._snd_una = packet.ack
        if sample is not None and not karn:
            self._rtt_sample(sample)
        else:
            # Progress ends the backoff even without a sample (Karn forbids one here); otherwise
            # every later loss doubles the timer again and a lossy link crawls.
            self._rto = self._computed_rto()
        self._dupacks = 0
        self._hole_since = self._last_dupack_at = self._reorder_deadline = None
        self._tlp_sent = False
        if self._undo_check(dupacks == 1, now):
            self._undo(now)
        elif head is not None and head.transmissions == 1 and hole_since is not None:
            # The hole filled by itself: that was reordering, not loss.
            self._reordering_seen(now - hole_since)
        self.cc.on_ack(advance, flight_before, now)
        if self._recover is not None:
            if _diff(packet.ack, self._recover) >= 0:
                self._recover = None
                self.cc.on_recovery_end(now)
            elif self._unacked and self._unacked[0].transmissions == 1:
                self._retransmit(self._unacked[0], now)  # NewReno partial ack: the next hole
            self._detect_loss(now)
        self._rto_deadline = now + self._rto if self._unacked else None
        self._arm_probe(now)
        self._check_fin_acked(packet, now)

    # -- loss detection ----------------------------------------------------------------------

    def _reo_wnd(self) -> float:
        """How long after an expected ACK a hole may still be reordering rather than loss."""
        if self._min_rtt is None or self._srtt is None:
            return 0.0
        return max(self.config.clock_granularity,
                   min(self._reo_steps * self._min_rtt / 4, _REO_WND_SRTTS * self._srtt))

    def _head_lost(self, now: float) -> bool | float:
        """Whether the first unacknowledged segment is lost; or when it will be deemed lost
        if nothing arrives before; or False without evidence (no later segment delivered)."""
        head = self._unacked[0]
        if self._srtt is None:
            # No RTT measured (the handshake was repeated): duplicate ACKs only.
            return (head.transmissions == 1 and self._last_dupack_at is not None
                    and self._dupacks >= self.config.dupthresh)
        srtt = max(self._srtt, self.config.clock_granularity)
        if head.transmissions == 2 and self._recover is not None:
            # A lost retransmission: nothing sent later may be left to draw duplicate ACKs
            # (the window is full), so when its ACK is overdue it is sent once more rather
            # than waiting for the retransmission timer and starting again from one segment.
            probe = head.sent_at + srtt + self._reo_wnd()
        else:
            probe = None
        evidence = self._last_dupack_at is not None
        if evidence and head.transmissions > 1:
            # Only a duplicate ACK caused by something sent after the retransmission counts.
            evidence = self._last_dupack_at >= head.sent_at + (self._min_rtt or 0.0)
        if evidence and head.transmissions == 1 and (
                self._dupacks >= self.config.dupthresh and not self._reordering):
            return True
        deadline = head.sent_at + srtt + self._reo_wnd() if evidence else None
        if probe is not None:
            deadline = probe if deadline is None else min(deadline, probe)
        if deadline is None:
            return False
        return True if now >= deadline else deadline

    def _detect_loss(self, now: float) -> None:
        if not self._unacked:
            return
        lost = self._head_lost(now)
        if lost is False:
            self._reorder_deadline = None
            return
        if lost is not True:
            self._reorder_deadline = lost
            return
        self._reorder_deadline = None
        head = self._unacked[0]
        if self._recover is None:
            self.recovery.fast_retransmits += 1
            self.cc.on_loss(self._flight(), now)
            self._recover = self._snd_nxt
            self._start_episode(now)
            self._tlp_deadline = None
            self._recoveries_since_reordering += 1
            if self._recoveries_since_reordering > 16:
                # Reordering not seen for a while: be quick again (as Linux does).
                self._reo_steps = 1
                self._reordering = False
        self._retransmit(head, now)
        self._rto_deadline = now + self._rto  # the timer runs from the latest transmission
        self._detect_loss(now)  # arms the timer for a lost retransmission

    def _reordering_seen(self, extent: float) -> None:
        self.recovery.reorderings += 1
        self._reordering = True
        self._recoveries_since_reordering = 0
        if self._min_rtt:
            steps = int(extent / (self._min_rtt / 4)) + 1
            self._reo_steps = min(max(self._reo_steps, steps), _MAX_REO_STEPS)

    def _start_episode(self, now: float) -> None:
        """A window cut begins; its retransmissions are counted (`_retransmit` keeps the
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
        if lone_dupack and self._episode_acked:
            self._episode_proved += 1
        return bool(self._episode_retx) and self._episode_proved >= self._episode_retx

    def _undo(self, now: float) -> None:
        self._episode_until = None
        self.recovery.spurious += 1
        self.cc.undo(now)
        self._recover = None
        self._reordering = True
        self._recoveries_since_reordering = 0
        self._reo_steps = min(self._reo_steps + 1, _MAX_REO_STEPS)

    def _arm_probe(self, now: float) -> None:
        if (not self.config.tail_loss_probe or not self._unacked or self._recover is not None
                or self._tlp_sent or self._srtt is None):
            self._tlp_deadline = None
            return
        pto = max(2 * self._srtt, 2 * self.config.clock_granularity)
        deadline = now + pto
        if self._rto_deadline is not None and deadline >= self._rto_deadline:
            self._tlp_deadline = None  # the timer comes first anyway
        else:
            self._tlp_deadline = deadline

    def _send_probe(self, now: float) -> None:
        """Tail loss probe: new data if the peer's window allows, else the last segment again.
        Either way the ACK it draws shows a lost tail (as duplicate ACKs, or by covering it)."""
        self._tlp_deadline = None
        if not self._unacked or self._recover is not None:
            return
        self._tlp_sent = True
        self.recovery.probes += 1
        if not (self._send_buf and self._flight() + self.config.mss <= self._peer_window
                and self._send_new_segment(now, probe=True)):
            self._retransmit(self._unacked[-1], now)
        self._rto_deadline = now + self._rto

    def _check_fin_acked(self, packet: TouPacket, now: float) -> None:
        if not self._fin_sent or self._fin_acked or packet.ack != self._snd_nxt:
            return
        self._fin_acked = True
        if self.state is State.FIN_WAIT_1:
            self.state = State.FIN_WAIT_2
        elif self.state is State.CLOSING:
            self._enter_time_wait(now)
        elif self.state is State.LAST_ACK:
            self._enter_time_wait(now)

    def _process_data(self, packet: TouPacket, now: float) -> None:
        offset = _diff(packet.seq, self._rcv_nxt)
        data = packet.payload
        self._ack_needed = True
        if packet.has(Flags.FIN) and not self._peer_finished:
            fin_at = (packet.seq + len(data)) % _MOD
            if self._peer_fin_at is None and _diff(fin_at, self._rcv_nxt) >= 0:
                self._peer_fin_at = fin_at
        if offset < 0:
            if -offset >= len(data):
                self._maybe_peer_fin(now)
                if self._ack_needed:
                    self._emit(Flags.ACK, now)  # a duplicate: ACK at once (RFC 5681 4.2)
                return
            data = data[-offset:]
            offset = 0
        if not data:
            self._maybe_peer_fin(now)
            return
        if offset + len(data) > self._space():
            return  # beyond what we can hold: dropped, the ACK shows our window
        if offset > 0:
            if packet.seq not in self._ooo:
                self._ooo[packet.seq] = data
                self._ooo_bytes += len(data)
            self._emit(Flags.ACK, now)  # a duplicate ACK at once: the sender's loss signal
            return
        delivered = bytearray(data)
        self._rcv_nxt = (self._rcv_nxt + len(data)) % _MOD
        while self._ooo:
            nxt = self._ooo.pop(self._rcv_nxt, None)
            if nxt is None:
                self._drop_stale_ooo()
                if self._rcv_nxt not in self._ooo:
                    break
                continue
            self._ooo_bytes -= len(nxt)
            delivered += nxt
            self._rcv_nxt = (self._rcv_nxt + len(nxt)) % _MOD
        self.bytes_received += len(delivered)
        if self._ooo:
            # A hole remains: every segment is ACKed at once so the sender counts them.
            self._emit(Flags.ACK, now)
        if self._reading_paused or self._held:
            self._held += delivered
        else:
            self._events.append(DataReceived(bytes(delivered)))
        self._maybe_peer_fin(now)

    def _drop_stale_ooo(self) -> None:
        """Forget out-of-order segments that now start before ``rcv_nxt``, keeping any tail."""
        for seq in [s for s in self._ooo if _diff(s, self._rcv_nxt) < 0]:
            data = self._ooo.pop(seq)
            self._ooo_bytes -= len(data)
            cut = -_diff(seq, self._rcv_nxt)
            if cut < len(data) and self._rcv_nxt not in self._ooo:
                self._ooo[self._rcv_nxt] = data[cut:]
                self._ooo_bytes += len(data) - cut

    def _maybe_peer_fin(self, now: float) -> None:
        if self._peer_finished or self._peer_fin_at != self._rcv_nxt:
            return
        self._peer_finished = True
        self._fin_deadline = None if self._fin_acked else self._fin_deadline
        self._events.append(EndOfStream())
        if self.state is State.ESTABLISHED:
            self.state = State.CLOSE_WAIT
        elif self.state is State.FIN_WAIT_1:
            self.state = State.CLOSING
        elif self.state is State.FIN_WAIT_2:
            self._ack_needed = False
            self._emit(Flags.ACK, now)
            self._enter_time_wait(now)

    def _enter_time_wait(self, now: float) -> None:
        self._time_wait_deadline = now + self.config.time_wait
        self._finish(CloseReason.CLOSED, State.TIME_WAIT)

    # -- sending -----------------------------------------------------------------------------

    def _space(self) -> int:
        return self.config.receive_buffer - len(self._held) - self._ooo_bytes

    def _window(self) -> int:
        return max(0, min(MAX_WINDOW, self._space()))

    def _flight(self) -> int:
        return _diff(self._snd_nxt, self._snd_una)

    def _emit(self, flags: Flags, now: float, *, seq: int | None = None, ack: int | None = None,
              payload: bytes = b"") -> None:
        if ack is None:
            ack = self._rcv_nxt
        window = self._window()
        packet = TouPacket(seq=self._snd_nxt if seq is None else seq, ack=ack, flags=flags,
                           window=window, payload=payload)
        self._out.append(encode_packet(packet))
        self._last_window_sent = window
        self._last_sent = now
        self.segments_sent += 1
        if flags & Flags.ACK:
            self._ack_needed = False

    def _retransmit(self, seg: _Segment, now: float) -> None:
        if self._episode_until is not None:
            self._episode_retx += 1
            # An original may arrive up to a retransmission timeout after this.
            self._episode_until = now + self._rto
        seg.transmissions += 1
        seg.sent_at = now
        self.retransmissions += 1
        self._emit(Flags.ACK, now, seq=seg.seq, payload=seg.data)

    def _send_new_segment(self, now: float, *, probe: bool = False) -> bool:
        mss = self.config.mss
        if probe:
            size = min(mss, len(self._send_buf))
        else:
            flight = self._flight()
            # Each duplicate ACK is a segment that left the network (RFC 6675's pipe, with
            # duplicate ACKs standing in for SACK); this is also limited transmit (RFC 3042).
            left = min(self._dupacks, len(self._unacked) - 1) * mss if self._unacked else 0
            room = min(self.cc.cwnd - (flight - left), self._peer_window - flight)
            size = min(mss, len(self._send_buf), room)
            if size <= 0 or (size < min(mss, len(self._send_buf)) and self._flight() > 0):
                return False
        if size <= 0:
            return False
        data = bytes(self._send_buf[:size])
        del self._send_buf[:size]
        seg = _Segment(self._snd_nxt, data, now)
        self._unacked.append(seg)
        self._emit(Flags.ACK | Flags.PSH if not self._send_buf else Flags.ACK, now,
                   payload=data)
        self._snd_nxt = seg.end
        self.bytes_sent += size
        if self._rto_deadline is None:
            self._rto_deadline = now + self._rto
        if not probe:
            self._arm_probe(now)
        return True

    def _pump(self, now: float) -> None:
        if self.close_reason is not None or self.state not in _SYNCHRONISED:
            return
        if not self._fin_sent:
            while self._send_buf and self._send_new_segment(now):
                pass
            if (self._send_buf and self._peer_window == 0 and not self._unacked
                    and self._persist_deadline is None):
                self._persist_deadline = now + self._rto
            if self._close_wanted and not self._send_buf and self.state in (
                    State.ESTABLISHED, State.CLOSE_WAIT):
                self._fin_sent = True
                self._emit(Flags.ACK | Flags.FIN, now)
                self._fin_rto = max(self._rto, self.config.initial_rto)
                self._fin_deadline = now + self._fin_rto
                self.state = (State.FIN_WAIT_1 if self.state is State.ESTABLISHED
                              else State.LAST_ACK)
        if self._fin_acked and self._fin_deadline is not None and (
                self.state is not State.FIN_WAIT_2):
            self._fin_deadline = None
        if self._ack_needed or now >= self._last_sent + self.config.keepalive_interval:
            self._emit(Flags.ACK, now)

    # -- bookkeeping -------------------------------------------------------------------------

    def _rtt_sample(self, r: float) -> None:
        self._min_rtt = r if self._min_rtt is None else min(self._min_rtt, r)
        if self._srtt is None:
            self._srtt = r
            self._rttvar = r / 2
        else:
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self._srtt - r)
            self._srtt = 0.875 * self._srtt + 0.125 * r
        self._rto = self._computed_rto()

    def _computed_rto(self) -> float:
        cfg = self.config
        if self._srtt is None:
            return cfg.initial_rto
        rto = self._srtt + max(cfg.clock_granularity, 4 * self._rttvar)
        return min(max(rto, cfg.min_rto), cfg.max_rto)

    @property
    def rto(self) -> float:
        return self._rto

    @property
    def srtt(self) -> float | None:
        return self._srtt

    def _finish(self, reason: CloseReason, state: State) -> None:
        self.state = state
        self.close_reason = reason
        self._rto_deadline = self._persist_deadline = self._fin_deadline = None
        self._reorder_deadline = self._tlp_deadline = None
        self._syn_deadline = self._connect_deadline = None
        self._unacked.clear()
        self._send_buf.clear()
        self._ooo.clear()
        self._ooo_bytes = 0
        if self._held and reason is CloseReason.CLOSED:
            # A clean close with unread data still held: the reader gets it first.
            self._events.append(DataReceived(bytes(self._held)))
        self._held.clear()
        self._events.append(Closed(reason))
