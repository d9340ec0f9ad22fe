# -*- test-case-name: tests.test_udpmux -*-
"""One UDP port for DHT, stunner, relay and TOU, demultiplexed by the shape of each datagram.

RetroShare runs BitDHT, the stunner, the relay and TOU on the same UDP socket; so do we.  The
shapes do not overlap:

=========================  =============================================================
``d`` ...                  a bencoded KRPC dictionary: the DHT
``RLY1`` + 12 bytes + ...  a relay packet (`tcponudp.relay`): forwarded if we are the
                           proxy for it, unwrapped and handed to TOU if we are an end
20 bytes ``00 01 00 14``   a stunner request: answered at once
28 bytes ``01 01 00 1c``   a stunner response: to the stun client
``00 00 00 00`` + 16 ...   a TOU segment (source and destination ports are always 0)
=========================  =============================================================

Anything else is counted in ``unclaimed`` and dropped.

With the DHT running, `dht.DHTProtocol` owns the socket and hands every non-bencoded datagram to
``other_handler``: pass `UdpMux.datagram_received` there and `UdpMux.attach` the DHT protocol's
transport writer.  Without the DHT, `UdpMuxProtocol` is the socket.

A datagram may be sent with its own IP TTL (``send(..., ttl=N)``, hole punching: see
`tcponudp.transport.HolePunch`) when the mux knows the socket (``attach(writer, sock)``).
The socket has one TTL, but every write is a synchronous ``sendto`` on the reactor thread, so
setting ``IP_TTL`` just before that one write and restoring it just after affects nothing else.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from pqi.wire.errors import DecodeError, EncodeError

from .packet import HEADER_SIZE
from .relay import RelayEnd, RelayForwarder, is_relay_packet
from .stunner import StunRequest, answer_request, decode_stun, is_stun_packet

__all__ = ["UdpMux", "UdpMuxProtocol", "DatagramKind", "classify"]

Address = tuple[str, int]
Handler = Callable[[bytes, Address], None]
Writer = Callable[[bytes, Address], None]

_TOU_PREFIX = b"\x00\x00\x00\x00"


class DatagramKind:
    DHT = "dht"
    RELAY = "relay"
    STUN = "stun"
    TOU = "tou"
    UNKNOWN = "unknown"


def classify(data: bytes) -> str:
    """Which layer a datagram belongs to, from its shape alone."""
    if data[:1] == b"d":
        return DatagramKind.DHT
    if is_relay_packet(data):
        return DatagramKind.RELAY
    if is_stun_packet(data):
        return DatagramKind.STUN
    if len(data) >= HEADER_SIZE and data[:4] == _TOU_PREFIX:
        return DatagramKind.TOU
    return DatagramKind.UNKNOWN


@dataclass
class UdpMux:
    """Routes datagrams to handlers and sends on behalf of the layers (wrapping for relays)."""

    dht_handler: Handler | None = None
    tou_handler: Handler | None = None
    stun_handler: Handler | None = None
    relay_forwarder: RelayForwarder | None = None
    #: Whether we answer stunner requests (RetroShare always does).
    stun_server: bool = True
    clock: Callable[[], float] | None = None
    counts: dict[str, int] = field(default_factory=dict)
    unclaimed: int = 0
    #: Datagrams sent with a TTL of their own.
    ttl_limited: int = 0
    _writer: Writer | None = None
    _socket: socket.socket | None = None
    _relay_ends: dict[Address, RelayEnd] = field(default_factory=dict)
    log = Logger()

    def attach(self, writer: Writer, sock: socket.socket | None = None) -> None:
        """Where datagrams go out (a UDP transport's ``write``), and the socket under it
        (for per-datagram TTLs; without it ``ttl`` is ignored)."""
        self._writer = writer
        self._socket = sock

    def add_relay_end(self, end: RelayEnd) -> None:
        """From now on ``end.remote`` is reached through ``end.proxy``."""
        self._relay_ends[end.remote] = end

    def remove_relay_end(self, remote: Address) -> None:
        self._relay_ends.pop(remote, None)

    def send(self, data: bytes, addr: Address, *, ttl: int | None = None) -> None:
        """Send a datagram to ``addr`` (through its relay if it has one), with IP TTL ``ttl``
        if given (not through a relay: the proxy must receive it)."""
        end = self._relay_ends.get(addr)
        if end is not None:
            try:
                data, addr = end.wrap(data)
            except EncodeError as e:
                self.log.warn("cannot relay to {addr}: {e}", addr=addr, e=str(e))
                return
            ttl = None
        if self._writer is None:
            return
        try:
            if ttl is None or self._socket is None:
                self._writer(data, addr)
            else:
                self._write_with_ttl(data, addr, ttl)
        except OSError as e:  # one unreachable destination must not break the port
            self.log.debug("UDP send to {addr} failed: {e}", addr=addr, e=str(e))

    def _write_with_ttl(self, data: bytes, addr: Address, ttl: int) -> None:
        assert self._socket is not None and self._writer is not None
        sock = self._socket
        usual = sock.getsockopt(socket.IPPROTO_IP, socket.IP_TTL)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        try:
            self._writer(data, addr)
            self.ttl_limited += 1
        finally:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, usual)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        kind = classify(data)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if kind == DatagramKind.DHT and self.dht_handler is not None:
            self.dht_handler(data, addr)
        elif kind == DatagramKind.RELAY:
            self._relay(data, addr)
        elif kind == DatagramKind.STUN:
            self._stun(data, addr)
        elif kind == DatagramKind.TOU and self.tou_handler is not None:
            self.tou_handler(data, addr)
        else:
            self.unclaimed += 1

    def _relay(self, data: bytes, addr: Address) -> None:
        try:
            if self.relay_forwarder is not None:
                now = self.clock() if self.clock is not None else 0.0
                onward = self.relay_forwarder.forward(data, addr, now)
                if onward is not None:
                    if self._writer is not None:
                        self._writer(*onward)
                    return
            for end in self._relay_ends.values():
                if end.proxy == addr:
                    inner = end.unwrap(data)
                    if inner is not None:
                        if self.tou_handler is not None and classify(inner) == DatagramKind.TOU:
                            self.tou_handler(inner, end.remote)
                        return
        except (DecodeError, OSError) as e:
            self.log.debug("relay packet from {addr} dropped: {e}", addr=addr, e=str(e))
        self.unclaimed += 1

    def _stun(self, data: bytes, addr: Address) -> None:
        packet = decode_stun(data)  # classify() checked the shape: cannot fail
        if isinstance(packet, StunRequest):
            if self.stun_server:
                self.send(answer_request(packet, addr), addr)
        elif self.stun_handler is not None:
            self.stun_handler(data, addr)
        else:
            self.unclaimed += 1


class UdpMuxProtocol(DatagramProtocol):
    """The UDP socket when no DHT owns it: everything goes to the mux."""

    def __init__(self, mux: UdpMux) -> None:
        self.mux = mux

    def startProtocol(self) -> None:
        self.mux.attach(self.transport.write, getattr(self.transport, "socket", None))

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        self.mux.datagram_received(datagram, (addr[0], addr[1]))
