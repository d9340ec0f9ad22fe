# -*- test-case-name: tests.test_tou_stream -*-
"""The TCP-over-UDP stream: a sans-IO reliable byte stream that speaks RetroShare's TOU.

`TouStream` is a core in the sense of `pqi.core`: it is fed datagrams (`datagram_received`),
application calls (`connect`, `listen`, `send`, `close`, `abort`, `pause_reading`) and the time
(`handle_timer`), all taking ``now``; `drain` returns, in the order they happened, the
datagrams to send (`pqi.core.Datagram` with no address: a stream has one peer) and the events
(`Connected`, `DataReceived`, `EndOfStream`, `Closed`); `next_deadline` says when it next
wants `handle_timer`.  It never reads a clock.  `tcponudp.transport` drives it with
`pqi.driver.CoreDriver`, tests and benches on `tools.simnet`.

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
* the window field is 16 bits of bytes (no scaling): at most 65535 bytes are ever in flight
  (between two rsproto ends that both offered `CAPABILITY_WINDOW`, units of four bytes, or
  of eight where both also offered `HOLE_WINDOW_SHIFT`);
* keep-alive: an ACK after 15 s without sending; the link is dead after 60 s without hearing
  from the peer (RetroShare's ``TCP_ALIVE_TIMEOUT`` and ``kNoPktTimeout``).

The stream is the coordinator: it keeps the connection state machine, the sequence numbers,
the send queue and the ACK policy, and hands the rest to its parts, each in its own module:
`tcponudp.reassembly` (receive buffer, in-order delivery, flow window), `tcponudp.recovery`
(retransmission, RACK-like detection, tail loss probes, fast retransmit, undo),
`tcponudp.rtt` (RFC 6298) and `tcponudp.congestion` (pluggable).  Also RST on abort, zero-window
probes, and a short TIME_WAIT that re-sends our FIN if the peer's FIN shows that ours was lost.
The state diagram and the loss recovery rules are in ``docs/tou.md``.
"""

from __future__ import annotations

import enum
import os
from typing import Final

from pqi.core import Datagram
from pqi.wire.errors import DecodeError

from .config import DEFAULT_MSS, MAX_WINDOW, OUT_OF_ORDER_ALLOWANCE, RETROSHARE_MSS, TouConfig
from .congestion import CongestionControl, NewReno
from .errors import NotConnectedError
from .events import Closed, CloseReason, Connected, DataReceived, EndOfStream, Event
from .packet import (
    CAPABILITY_MAGIC,
    CAPABILITY_SACK,
    CAPABILITY_WINDOW,
    HOLE_WINDOW_SHIFT,
    MAX_SACK_BLOCKS,
    WIDE_SACK_BLOCKS,
    WINDOW_SHIFT,
    Flags,
    TouPacket,
    decode_packet,
    decode_sack,
    encode_sack,
    encode_segment,
)
from .reassembly import Arrival, ReceiveBuffer
from .recovery import LossRecovery, RecoveryStats
from .rtt import RttEstimator
from .sequence import SEQ_MOD, Segment, SendSequence, seq_diff

# The stream's vocabulary is defined next to it (events, config, recovery) and named here too,
# so ``tcponudp.stream`` stays the one import for code that drives a stream.
__all__ = [
    "State", "CloseReason", "TouConfig", "TouStream", "RecoveryStats", "Output",
    "Event", "Connected", "DataReceived", "EndOfStream", "Closed",
    "DEFAULT_MSS", "RETROSHARE_MSS", "MAX_WINDOW",
]

#: What `TouStream.drain` returns: datagrams for the peer and events, in order.
Output = Datagram | Event


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
_HANDSHAKE: Final = frozenset({State.LISTEN, State.SYN_SENT, State.SYN_RCVD})
#: Flag values the per-segment paths use, computed once (IntFlag arithmetic is slow).
_ACK_PSH: Final = Flags.ACK | Flags.PSH
_ACK_BIT: Final = Flags.ACK._value_
_SYN_BIT: Final = Flags.SYN._value_


class TouStream:
    """One TOU connection's state machine.  Create it, then `connect` (active open) or
    `listen` (passive open), and drive it with datagrams and timers."""

    def __init__(self, *, config: TouConfig | None = None,
                 congestion: CongestionControl | None = None,
                 isn: int | None = None) -> None:
        self.config = config or TouConfig()
        self.state = State.CLOSED
        self.close_reason: CloseReason | None = None
        self._iss = isn if isn is not None else int.from_bytes(os.urandom(4), "big")
        self._irs = 0
        # the parts
        self.rtt = RttEstimator(self.config)
        self._snd = SendSequence(self._iss, self._iss)
        self._loss = LossRecovery(self.config, self.rtt,
                                  congestion or NewReno(self.config.mss), self._snd,
                                  resend=self._resend, probe_new_data=self._probe_new_data)
        self._rx = ReceiveBuffer(self.config.receive_buffer)
        #: Payload per new segment: the configured MSS, or what both rsproto ends offered.
        self.segment_size = self.config.mss
        #: The largest segment the peer offered to take (0: none, as from RetroShare).
        self.peer_offer = 0
        #: Both ends offered SACK ranges (`TouConfig.sack`): our ACKs over a hole carry them,
        #: and the peer's are read.  Never with RetroShare, which offers nothing.  Over a
        #: hole the ranges also stand in for the duplicate ACK per segment RetroShare's wire
        #: needs: segments read in one reactor turn get one ACK, at the drain (`_ack_needed`).
        self.sack = False
        #: Both ends offered window scaling (`TouConfig.scale_window`): window fields after
        #: the handshake count units of ``1 << window_shift`` bytes (0: bytes, RetroShare's).
        self.window_shift = 0
        #: Most SACK ranges one ACK carries either way: `MAX_SACK_BLOCKS`, or
        #: `WIDE_SACK_BLOCKS` where both ends agreed the wider window scale.
        self.sack_limit = MAX_SACK_BLOCKS
        # sending
        self._send_buf = bytearray()
        self._peer_window = MAX_WINDOW
        self._ack_needed = False
        self._last_window_sent = MAX_WINDOW
        self._persist_deadline: float | None = None
        self._last_sent = 0.0
        self._last_heard = 0.0
        # handshake
        self._syn_deadline: float | None = None
        self._syn_sent_at: float | None = None
        self._syn_repeated = False
        self._connect_deadline: float | None = None
        # closing
        self._close_wanted = False
        self._fin_sent = False
        self._fin_acked = False
        self._fin_deadline: float | None = None
        self._fin_rto = self.config.initial_rto
        self._time_wait_deadline: float | None = None
        #: Outputs since the last drain; a list of byte strings stands for one `DataReceived`
        #: (consecutive in-order payloads, joined once by `drain`).
        self._out: list[Output | list[bytes]] = []
        #: Events were queued since the last drain (see `drain`).
        self._events_queued = False
        #: When a drain that handed over events left the cutting of segments for (see `drain`).
        self._pump_due: float | None = None
        # counters
        self.segments_sent = 0
        self.segments_received = 0
        self.retransmissions = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.undecodable = 0
        #: Seconds the sender had bytes queued that the peer's advertised window, or our
        #: congestion window, held back (Linux's ``tcpi_rwnd_limited`` / busy time): where
        #: a transfer's time went.
        self.rwnd_limited = 0.0
        self.cwnd_limited = 0.0
        self._limited_since: float | None = None
        self._limited_by_rwnd = False
        #: Of those seconds, the ones spent in a loss recovery.
        self.recovery_limited = 0.0
        self._limited_in_recovery = False
        #: Seconds our receive buffer held bytes beyond a hole (the left edge of the window
        #: we advertise stood still meanwhile).
        self.hole_seconds = 0.0
        self._hole_since: float | None = None

    # -- the application's side --------------------------------------------------------------

    def connect(self, now: float) -> None:
        """Active open: send SYN and repeat it until answered or ``connect_timeout``."""
        if self.state is not State.CLOSED or self.close_reason is not None:
            raise NotConnectedError(f"connect() in state {self.state.name}")
        self._snd.nxt = (self._iss + 1) % SEQ_MOD
        self._snd.una = self._iss
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
        return len(self._send_buf) + self._snd.flight()

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
        self._rx.reading_paused = True

    def resume_reading(self) -> None:
        data = self._rx.resume()
        if data:
            self._event(DataReceived(data))
        if self._last_window_sent < 2 * self.config.mss <= self._rx.window():
            self._ack_needed = True

    # -- the core contract (pqi.core) --------------------------------------------------------

    def drain(self, now: float) -> list[Output]:
        """Everything since the last call, in order: datagrams for the peer and events.

        New segments (data as the windows allow, FIN, a pure ACK) are cut here, but only by a
        drain that hands over no events: one that does leaves them to the next drain, due at
        once (`next_deadline` returns ``now``).  A skin that reacts to an event (a reply, a
        close) and drains again so sends the reaction in the same segments as the ACK, as
        a socket's owner does over TCP; a skin that does not gets them a timer turn later,
        at the same time."""
        if self._events_queued:
            self._events_queued = False
            self._pump_due = now
        else:
            self._pump_due = None
            self._pump(now)
        out, self._out = self._out, []
        return [DataReceived(b"".join(o)) if type(o) is list else o  # type: ignore[misc]
                for o in out]

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
        if self.state is State.LISTEN:
            self._in_listen(packet, now)
            return
        if self.state is State.CLOSED:
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
        if self.state is State.TIME_WAIT:
            if self._time_wait_deadline is not None and now >= self._time_wait_deadline:
                self.state = State.CLOSED
                self._time_wait_deadline = None
            return
        if self.close_reason is not None:
            return
        if self.state in _HANDSHAKE:
            self._handshake_timers(now)
            return
        if now >= self._last_heard + self.config.idle_timeout:
            self._finish(CloseReason.IDLE_TIMEOUT, State.CLOSED)
            return
        loss = self._loss
        if loss.rto_due(now):
            if loss.retransmit_limit_reached(self._peer_window):
                self._emit(Flags.RST | Flags.ACK, now)
                self._finish(CloseReason.RETRANSMIT_LIMIT, State.CLOSED)
                return
            loss.on_timeout(now)
        loss.on_timers(now)
        self._sender_timers(now)

    def next_deadline(self) -> float | None:
        """When `handle_timer` must next run (``None``: nothing pending)."""
        if self.state is State.TIME_WAIT:
            return self._time_wait_deadline
        if self.close_reason is not None:
            return None
        if self.state in _HANDSHAKE:
            return min(d for d in (self._connect_deadline, self._syn_deadline) if d is not None)
        cfg = self.config
        candidates = [self._last_heard + cfg.idle_timeout, *self._loss.deadlines()]
        for d in (self._persist_deadline, self._fin_deadline):
            if d is not None:
                candidates.append(d)
        candidates.append(self._last_sent + cfg.keepalive_interval)
        if self._pump_due is not None:
            candidates.append(self._pump_due)
        return min(candidates)

    # -- what the parts report ---------------------------------------------------------------

    @property
    def cc(self) -> CongestionControl:
        """The congestion controller (replaceable before data flows)."""
        return self._loss.cc

    @cc.setter
    def cc(self, cc: CongestionControl) -> None:
        self._loss.cc = cc
        if self.sack:
            cc.set_batched_acks()

    @property
    def recovery(self) -> RecoveryStats:
        """How the sender recovered from losses so far."""
        return self._loss.stats

    @property
    def rto(self) -> float:
        return self.rtt.rto

    @property
    def srtt(self) -> float | None:
        return self.rtt.srtt

    # -- timers ------------------------------------------------------------------------------

    def _handshake_timers(self, now: float) -> None:
        if self._connect_deadline is not None and now >= self._connect_deadline:
            self._finish(CloseReason.CONNECT_TIMEOUT, State.CLOSED)
            return
        if self._syn_deadline is not None and now >= self._syn_deadline:
            self._syn_repeated = True
            self._send_syn(now)

    def _sender_timers(self, now: float) -> None:
        """The zero-window probe and the FIN's retransmission."""
        if self._persist_deadline is not None and now >= self._persist_deadline:
            self._persist_deadline = None
            self.rtt.back_off()
            self._send_new_segment(now, probe=True)
        if self._fin_deadline is not None and now >= self._fin_deadline:
            self._fin_rto = min(self._fin_rto * 2, self.config.max_rto)
            self._fin_deadline = now + self._fin_rto
            self._emit(Flags.ACK | Flags.FIN, now)

    # -- handshake ---------------------------------------------------------------------------

    def _send_syn(self, now: float) -> None:
        self._syn_sent_at = now
        self._syn_deadline = now + self.config.syn_interval
        cfg = self.config
        offer = cfg.offer_segment
        scale = cfg.sack and cfg.scale_window
        magic = (CAPABILITY_WINDOW if scale else
                 CAPABILITY_SACK if cfg.sack else CAPABILITY_MAGIC if offer else 0)
        hlen = HOLE_WINDOW_SHIFT if scale and cfg.hole_window else 0
        if self.state is State.SYN_SENT:
            self._emit(Flags.SYN, now, seq=self._iss, ack=0, checksum=magic, urgent=offer,
                       hlen=hlen)
        else:
            self._emit(Flags.SYN | Flags.ACK, now, seq=self._iss, checksum=magic, urgent=offer,
                       hlen=hlen)

    def _take_peer_syn(self, packet: TouPacket) -> None:
        self._irs = packet.seq
        self._rx.rcv_nxt = (packet.seq + 1) % SEQ_MOD
        self._peer_window = packet.window
        self._take_offer(packet)

    def _take_offer(self, packet: TouPacket) -> None:
        """An rsproto peer's SYN or SYN+ACK offers larger segments (and SACK ranges, and
        window scaling); if we offered too, both ends send the smaller of the two segment
        offers from now on, SACK ranges if both offered them, and scaled windows if both
        offered that, by the wider scale and with room beyond a hole if both offered that too
        (RetroShare offers nothing)."""
        cfg = self.config
        if packet.checksum in (CAPABILITY_SACK, CAPABILITY_WINDOW) and cfg.sack:
            self.sack = self._loss.sack = True
            self._loss.cc.set_batched_acks()  # our receiver's batching (`_ack_needed`)
            if packet.checksum == CAPABILITY_WINDOW and cfg.scale_window:
                extra = min(packet.hlen, HOLE_WINDOW_SHIFT if cfg.hole_window else 0)
                self.window_shift = WINDOW_SHIFT + extra
                self._rx.max_window = MAX_WINDOW << self.window_shift
                self._rx.allowance = OUT_OF_ORDER_ALLOWANCE if extra else 0
                self.sack_limit = WIDE_SACK_BLOCKS if extra else MAX_SACK_BLOCKS
        if packet.checksum not in (CAPABILITY_MAGIC, CAPABILITY_SACK, CAPABILITY_WINDOW) or (
                not cfg.offer_segment):
            return
        self.peer_offer = packet.urgent
        size = min(packet.urgent, self.config.offer_segment)
        if size > self.segment_size and not self.bytes_sent:
            self.segment_size = size
            self._loss.cc.set_segment_size(size)

    def _in_listen(self, packet: TouPacket, now: float) -> None:
        if not packet.has(Flags.SYN) or packet.has(Flags.ACK):
            return
        self._take_peer_syn(packet)
        self._snd.nxt = (self._iss + 1) % SEQ_MOD
        self._snd.una = self._iss
        self.state = State.SYN_RCVD
        self._last_heard = now
        self._send_syn(now)

    def _in_syn_sent(self, packet: TouPacket, now: float) -> None:
        if packet.has(Flags.SYN) and packet.has(Flags.ACK):
            if packet.ack != self._snd.nxt:
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
        if not packet.has(Flags.ACK) or packet.ack != self._snd.nxt:
            return
        if packet.has(Flags.SYN):
            if packet.seq != self._irs:
                return
            self._ack_needed = True
            self._take_offer(packet)
            self._peer_window = packet.window  # a SYN's window is never scaled
        else:
            self._peer_window = packet.window << self.window_shift
        self._established(now)
        if packet.payload or packet.has(Flags.FIN):
            self._in_synchronised(packet, now)

    def _established(self, now: float) -> None:
        self.state = State.ESTABLISHED
        self._snd.una = self._snd.nxt
        if self._syn_sent_at is not None and not self._syn_repeated:
            self.rtt.sample(now - self._syn_sent_at)
        self._syn_deadline = None
        self._connect_deadline = None
        self._event(Connected())

    def _rst_received(self, packet: TouPacket) -> None:
        if self.state in (State.CLOSED, State.LISTEN, State.TIME_WAIT):
            return
        if self.state is State.SYN_SENT:
            acceptable = packet.has(Flags.ACK) and packet.ack == self._snd.nxt
        else:
            acceptable = 0 <= seq_diff(packet.seq, self._rx.rcv_nxt) <= MAX_WINDOW
        if acceptable:
            self._finish(CloseReason.RESET, State.CLOSED)

    # -- established -------------------------------------------------------------------------

    def _in_synchronised(self, packet: TouPacket, now: float) -> None:
        if packet.has(Flags.SYN):
            # Our ACK of their SYN+ACK (or SYN) was lost; say it again.
            self._ack_needed = True
            return
        if self.sack and packet.checksum == CAPABILITY_SACK and packet.flags._value_ == _ACK_BIT:
            self._sack_received(packet, now)
            return
        if packet.has(Flags.ACK):
            self._process_ack(packet, now)
        if packet.payload or packet.has(Flags.FIN):
            self._process_data(packet, now)

    def _process_ack(self, packet: TouPacket, now: float, ranges: bool = False) -> None:
        """``ranges``: the ACK carried SACK ranges.  Where the wider window was agreed such an
        ACK still counts as a duplicate when its window changed: the peer's window grows with
        every segment it holds beyond a hole (`ReceiveBuffer.window`), so the change is no
        window update."""
        advance = seq_diff(packet.ack, self._snd.una)
        in_flight = self._snd.flight()
        if advance > in_flight or advance < 0:
            return  # acknowledges something we never sent, or very old
        window = packet.window << self.window_shift
        window_changed = window != self._peer_window
        self._peer_window = window
        if window and self._persist_deadline is not None:
            self._persist_deadline = None
        if advance == 0:
            pure = not packet.payload and not packet.has(Flags.FIN) and (
                not window_changed or (ranges and self._rx.allowance > 0))
            if pure and self._loss.outstanding:
                self._loss.on_duplicate_ack(now)
            elif pure and not self._fin_sent:
                # Nothing outstanding, so no hole: this answers a duplicate segment.
                self._loss.on_lone_ack(now)
        else:
            self._snd.una = packet.ack
            self._loss.on_ack(packet.ack, advance, in_flight, now)
        self._check_fin_acked(packet, now)

    def _sack_received(self, packet: TouPacket, now: float) -> None:
        """A pure ACK whose payload is the peer's SACK ranges (both ends offered them)."""
        try:
            blocks = decode_sack(packet.payload, self.sack_limit)
        except DecodeError:
            self.undecodable += 1
            return
        self._loss.on_sack(blocks)
        self._process_ack(packet._replace(payload=b""), now, ranges=True)

    def _check_fin_acked(self, packet: TouPacket, now: float) -> None:
        if not self._fin_sent or self._fin_acked or packet.ack != self._snd.nxt:
            return
        self._fin_acked = True
        if self.state is State.FIN_WAIT_1:
            self.state = State.FIN_WAIT_2
        elif self.state in (State.CLOSING, State.LAST_ACK):
            self._enter_time_wait(now)

    def _process_data(self, packet: TouPacket, now: float) -> None:
        rx = self._rx
        self._ack_needed = True
        if packet.has(Flags.FIN):
            rx.note_fin(packet.seq, len(packet.payload))
        arrival, delivered = rx.receive(packet.seq, packet.payload)
        if arrival is Arrival.BEYOND_WINDOW:
            return  # dropped: the ACK shows our window
        if arrival is Arrival.OUT_OF_ORDER:
            if self._hole_since is None:
                self._hole_since = now
            if not self.sack:
                self._emit(Flags.ACK, now)  # a duplicate ACK at once: the sender's loss signal
            return
        if delivered:
            self.bytes_received += len(delivered)
            if self._hole_since is not None and not rx.has_hole:
                self.hole_seconds += now - self._hole_since
                self._hole_since = None
            if rx.has_hole and not self.sack:
                # A hole remains: every segment is ACKed at once so the sender counts them.
                self._emit(Flags.ACK, now)
            readable = rx.deliverable(delivered)
            if readable is not None:
                self._event(DataReceived(readable))
        self._maybe_peer_fin(now)
        if arrival is Arrival.DUPLICATE and self._ack_needed:
            self._emit(Flags.ACK, now)  # a duplicate: ACK at once (RFC 5681 4.2)

    def _maybe_peer_fin(self, now: float) -> None:
        if not self._rx.fin_reached():
            return
        self._fin_deadline = None if self._fin_acked else self._fin_deadline
        self._event(EndOfStream())
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

    def _event(self, event: Event) -> None:
        out = self._out
        if isinstance(event, DataReceived):
            # In-order bytes right after in-order bytes make one event, so a batch of segments
            # read in one reactor turn reaches the reader (TLS, say) in one call.
            if out and type(out[-1]) is list:
                out[-1].append(event.data)  # type: ignore[union-attr]
            else:
                out.append([event.data])
        else:
            out.append(event)
        self._events_queued = True

    def _emit(self, flags: Flags, now: float, *, seq: int | None = None, ack: int | None = None,
              payload: bytes = b"", checksum: int = 0, urgent: int = 0, hlen: int = 0) -> None:
        if ack is None:
            ack = self._rx.rcv_nxt
        if self.sack and flags._value_ == _ACK_BIT and not payload and self._rx.has_hole:
            # Over a hole, to a peer that offered them: what we hold beyond it.
            payload = encode_sack(self._rx.sack_blocks(self.sack_limit), self.sack_limit)
            checksum = CAPABILITY_SACK
        window = self._rx.window()
        if flags._value_ & _SYN_BIT:
            field = window = min(window, MAX_WINDOW)  # a SYN's window is never scaled
        else:
            field = window >> self.window_shift
            window = field << self.window_shift
        self._out.append(Datagram(encode_segment(self._snd.nxt if seq is None else seq, ack,
                                                 flags, field, payload, checksum, urgent,
                                                 hlen)))
        self._last_window_sent = window
        self._last_sent = now
        self.segments_sent += 1
        if flags._value_ & _ACK_BIT:
            self._ack_needed = False

    def _resend(self, seg: Segment, now: float) -> None:
        """Loss recovery's way to the wire: ``seg`` again, same boundaries."""
        self.retransmissions += 1
        self._emit(Flags.ACK, now, seq=seg.seq, payload=seg.data)

    def _probe_new_data(self, now: float) -> bool:
        """A tail loss probe with new data, if there is some and the peer's window allows."""
        return bool(self._send_buf and self._snd.flight() + self.segment_size <= self._peer_window
                    and self._send_new_segment(now, probe=True))

    def _segment_size(self, probe: bool) -> int:
        """How much the next new segment may carry (0: nothing may be sent now)."""
        mss = self.segment_size
        if probe:
            return min(mss, len(self._send_buf))
        flight = self._snd.flight()
        left = self._loss.pipe_credit(mss)
        room = min(self.cc.cwnd - (flight - left), self._peer_window - flight)
        size = min(mss, len(self._send_buf), room)
        if size <= 0 or (size < min(mss, len(self._send_buf)) and flight > 0):
            return 0
        return size

    def _send_new_segment(self, now: float, *, probe: bool = False) -> bool:
        size = self._segment_size(probe)
        if size <= 0:
            return False
        data = bytes(self._send_buf[:size])
        del self._send_buf[:size]
        seg = Segment(self._snd.nxt, data, now)
        self._emit(_ACK_PSH if not self._send_buf else Flags.ACK, now, payload=data)
        self._snd.nxt = seg.end
        self.bytes_sent += size
        self._loss.on_sent(seg, now, probe=probe)
        return True

    def _pump(self, now: float) -> None:
        if self.close_reason is not None or self.state not in _SYNCHRONISED:
            return
        if not self._fin_sent:
            while self._send_buf and self._send_new_segment(now):
                pass
            self._note_limit(now)
            if (self._send_buf and self._peer_window == 0 and not self._loss.outstanding
                    and self._persist_deadline is None):
                self._persist_deadline = now + self.rtt.rto
            if self._close_wanted and not self._send_buf and self.state in (
                    State.ESTABLISHED, State.CLOSE_WAIT):
                self._send_fin(now)
        if self._fin_acked and self._fin_deadline is not None and (
                self.state is not State.FIN_WAIT_2):
            self._fin_deadline = None
        if self._ack_needed or now >= self._last_sent + self.config.keepalive_interval:
            self._emit(Flags.ACK, now)

    def _note_limit(self, now: float) -> None:
        """Account the time since the last pump to the window that held the sender back
        then, and note which one holds it back now (none: nothing queued)."""
        since = self._limited_since
        if since is not None:
            if self._limited_by_rwnd:
                self.rwnd_limited += now - since
            else:
                self.cwnd_limited += now - since
            if self._limited_in_recovery:
                self.recovery_limited += now - since
        if not self._send_buf:
            self._limited_since = None
            return
        self._limited_since = now
        self._limited_in_recovery = self._loss.recover is not None
        self._limited_by_rwnd = (
            self._peer_window - self._snd.flight() < min(self.segment_size, len(self._send_buf)))

    def _send_fin(self, now: float) -> None:
        self._fin_sent = True
        self._emit(Flags.ACK | Flags.FIN, now)
        self._fin_rto = max(self.rtt.rto, self.config.initial_rto)
        self._fin_deadline = now + self._fin_rto
        self.state = State.FIN_WAIT_1 if self.state is State.ESTABLISHED else State.LAST_ACK

    # -- the end -----------------------------------------------------------------------------

    def _finish(self, reason: CloseReason, state: State) -> None:
        self.state = state
        self.close_reason = reason
        self._persist_deadline = self._fin_deadline = None
        self._syn_deadline = self._connect_deadline = None
        self._loss.clear()
        self._send_buf.clear()
        held = self._rx.clear()
        if held and reason is CloseReason.CLOSED:
            # A clean close with unread data still held: the reader gets it first.
            self._event(DataReceived(held))
        self._event(Closed(reason))
