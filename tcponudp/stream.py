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
fast retransmit on three duplicate ACKs with NewReno recovery (congestion control is pluggable,
`tcponudp.congestion`), immediate duplicate ACKs for out-of-order segments, RST on abort, and
a short TIME_WAIT that re-sends our FIN if the peer's FIN shows that ours was lost.
The state diagram is in ``docs/tou.md``.
"""

from __future__ import annotations

import enum
import os
from collections import deque
from dataclasses import dataclass
from typing import Final

from pqi.errors import DecodeError

from .congestion import CongestionControl, NewReno
from .errors import NotConnectedError
from .packet import Flags, TouPacket, decode_packet, encode_packet

__all__ = [
    "State", "CloseReason", "TouConfig", "TouStream",
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
    min_rto: float = 0.2
    max_rto: float = 15.0
    clock_granularity: float = 0.001
    #: Retransmissions of one segment before giving up (RetroShare: 10).
    max_retransmits: int = 10
    #: SYN / SYN+ACK repeat interval during the handshake (fixed, for hole punching).
    syn_interval: float = 1.0
    connect_timeout: float = 80.0
    keepalive_interval: float = 15.0
    idle_timeout: float = 60.0
    time_wait: float = 2.0


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
            self.cc.on_timeout(self._flight(), now)
            self._recover = self._snd_nxt
            self._dupacks = 0
            self._retransmit(head, now)
            self._rto = min(self._rto * 2, cfg.max_rto)
            self._rto_deadline = now + self._rto
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
        if self._unacked and self._rto_deadline is not None:
            candidates.append(self._rto_deadline)
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
            if (self._unacked and not packet.payload and not packet.has(Flags.FIN)
                    and not window_changed):
                self._dupacks += 1
                if self._dupacks == 3 and self._recover is None:
                    self.cc.on_loss(self._flight(), now)
                    self._recover = self._snd_nxt
                    self._retransmit(self._unacked[0], now)
            self._check_fin_acked(packet, now)
            return
        flight_before = in_flight
        self._dupacks = 0
        sample: float | None = None
        while self._unacked and _diff(packet.ack, self._unacked[0].end) >= 0:
            seg = self._unacked.popleft()
            if seg.transmissions == 1:
                sample = now - seg.sent_at
        self._snd_una = packet.ack
        if sample is not None:
            self._rtt_sample(sample)
        else:
            # Progress ends the backoff even without a sample (Karn forbids one here); otherwise
            # every later loss doubles the timer again and a lossy link crawls.
            self._rto = self._computed_rto()
        self.cc.on_ack(advance, flight_before, now)
        if self._recover is not None:
            if _diff(packet.ack, self._recover) >= 0:
                self._recover = None
                self.cc.on_recovery_end(now)
            elif self._unacked:
                self._retransmit(self._unacked[0], now)  # NewReno partial ack
        self._rto_deadline = now + self._rto if self._unacked else None
        self._check_fin_acked(packet, now)

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
                return  # a duplicate: the ACK we owe tells the peer
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
        seg.transmissions += 1
        seg.sent_at = now
        self.retransmissions += 1
        self._emit(Flags.ACK, now, seq=seg.seq, payload=seg.data)

    def _send_new_segment(self, now: float, *, probe: bool = False) -> bool:
        mss = self.config.mss
        if probe:
            size = min(mss, len(self._send_buf))
        else:
            room = min(self.cc.cwnd, self._peer_window) - self._flight()
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
