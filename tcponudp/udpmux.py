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

`UdpMux.send_many` is the write pass for a batch of datagrams to one address (a TOU stream's
drain): on Linux with the socket known, runs of equal-sized datagrams leave in one ``sendmsg``
with generic segmentation offload (``UDP_SEGMENT``): the kernel cuts the buffer into the same
datagrams on the wire, so the peer (RetroShare or not) receives exactly what separate sends would
give it, at one system call per run.  Where the kernel refuses, the mux falls back to one send
per datagram for good.  The receiving side's counterpart is `UdpMux.datagrams_received`: a
burst read in one system call (`tcponudp.udpport.BatchUdpPort`, ``UDP_GRO``) reaches TOU in
one call when it is all TOU segments.
"""

from __future__ import annotations

import errno
import socket
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from pqi.wire.errors import DecodeError, EncodeError

from .packet import HEADER_SIZE
from .relay import RelayEnd, RelayForwarder, is_relay_packet
from .stunner import StunRequest, answer_request, decode_stun, is_stun_packet

__all__ = ["UdpMux", "UdpMuxProtocol", "DatagramKind", "classify", "GSO_MAX_SEGMENTS"]

Address = tuple[str, int]
Handler = Callable[[bytes, Address], None]
BatchHandler = Callable[[list[bytes], Address], None]
Writer = Callable[[bytes, Address], None]

_TOU_PREFIX = b"\x00\x00\x00\x00"
#: Datagrams one segmentation-offload send carries at most (Linux's ``UDP_MAX_SEGMENTS``).
GSO_MAX_SEGMENTS = 64
#: Bytes one such send carries at most (the largest UDP payload over IPv4).
_GSO_MAX_BYTES = 65507
_SOL_UDP = 17
_UDP_SEGMENT = 103
#: What a kernel without (usable) segmentation offload answers; the mux stops trying.
_NO_GSO = frozenset({errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP, errno.EIO,
                     errno.EMSGSIZE})


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
    #: Takes a burst of TOU segments from one address in one call (`datagrams_received`).
    tou_batch_handler: BatchHandler | None = None
    stun_handler: Handler | None = None
    relay_forwarder: RelayForwarder | None = None
    #: Whether we answer stunner requests (RetroShare always does).
    stun_server: bool = True
    clock: Callable[[], float] | None = None
    counts: dict[str, int] = field(default_factory=dict)
    unclaimed: int = 0
    #: Datagrams sent with a TTL of their own.
    ttl_limited: int = 0
    #: Whether `send_many` may use segmentation offload (cleared when the kernel refuses it).
    gso: bool = sys.platform.startswith("linux")
    #: Segmentation-offload sends made, and the datagrams they carried.
    gso_sends: int = 0
    gso_datagrams: int = 0
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

    def is_relayed(self, remote: Address) -> bool:
        """Whether datagrams to ``remote`` go through a relay (at most 1400 bytes each)."""
        return remote in self._relay_ends

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

    def send_many(self, datagrams: list[bytes], addr: Address, *,
                  ttl: int | None = None) -> None:
        """Send ``datagrams`` to ``addr`` in order, as `send` would one by one; runs of equal
        size (the last of a run may be shorter) go in one segmentation-offload send when the
        address is direct (no relay, no TTL of its own) and an IP literal."""
        sock = self._socket
        if (not self.gso or sock is None or ttl is not None or len(datagrams) < 2
                or addr in self._relay_ends
                or not (isIPAddress(addr[0]) or isIPv6Address(addr[0]))):
            for data in datagrams:
                self.send(data, addr, ttl=ttl)
            return
        i, n = 0, len(datagrams)
        while i < n:
            size = len(datagrams[i])
            limit = min(n, i + GSO_MAX_SEGMENTS, i + _GSO_MAX_BYTES // max(size, 1))
            j = i + 1
            while j < limit and len(datagrams[j]) == size:
                j += 1
            if j < limit and len(datagrams[j]) < size:
                j += 1  # a shorter datagram may end the run
            if j - i == 1 or not self._send_gso(sock, datagrams[i:j], size, addr):
                for data in datagrams[i:j]:
                    self.send(data, addr)
            i = j

    def _send_gso(self, sock: socket.socket, run: list[bytes], size: int,
                  addr: Address) -> bool:
        """One ``sendmsg`` the kernel cuts into ``run``; False if it must be sent otherwise."""
        try:
            sock.sendmsg([b"".join(run)], [(_SOL_UDP, _UDP_SEGMENT, struct.pack("=H", size))],
                          0, addr)
        except OSError as e:
            if e.errno in _NO_GSO:
                self.log.info("no UDP segmentation offload here ({e}): one send per datagram",
                              e=str(e))
                self.gso = False
                return False
            # Lost like any other datagram (a full buffer, an unreachable destination).
            self.log.debug("UDP send to {addr} failed: {e}", addr=addr, e=str(e))
            return True
        self.gso_sends += 1
        self.gso_datagrams += len(run)
        return True

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

    def datagrams_received(self, datagrams: list[bytes], addr: Address) -> None:
        """A burst of datagrams from ``addr`` read at once (`tcponudp.udpport`): TOU segments
        go to the TOU layer in one call, anything else one by one as `datagram_received`."""
        batch = self.tou_batch_handler
        if batch is None or len(datagrams) < 2 or not all(
                len(d) >= HEADER_SIZE and d[:4] == _TOU_PREFIX for d in datagrams):
            for data in datagrams:
                self.datagram_received(data, addr)
            return
        self.counts[DatagramKind.TOU] = self.counts.get(DatagramKind.TOU, 0) + len(datagrams)
        batch(datagrams, addr)

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

    def datagramsReceived(self, datagrams: list[bytes], addr: tuple[str, int]) -> None:
        """A burst read at once (`tcponudp.udpport.BatchUdpPort`)."""
        self.mux.datagrams_received(datagrams, (addr[0], addr[1]))
