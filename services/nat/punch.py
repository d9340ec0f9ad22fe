# -*- test-case-name: tests.test_punch -*-
"""Connection set-up through the DHT: BitDHT's ``connect`` exchange, sans IO.

Two friends behind NATs cannot reach each other, but both talk to DHT nodes.  A node that knows
both (the *proxy*) carries a four-message exchange for them (libbitdht ``bdconnection.cc``)::

    A (start)                 P (proxy, mid point)                 B (end)
      REQUEST(src=A, dest=B) ──>
                                 finds B in its table, authorises
                                 REQUEST(src=A, dest=B) ───────────>
                                                                     authorises (a friend?)
                                 <─────────────── REPLY(src=A, dest=B, status)
      <── START(src=A@a, dest=B@b) ──  START(src=A@a, dest=B@b) ────>
      ACK ─────────────────────>  <────────────────────────────── ACK

``src``/``dest`` are compact nodes (id + address).  An end point leaves its own address zero;
the proxy fills a zero address with the address it sees the sender's datagrams come from, so
START tells each end the other's *mapped* address (and its own).  ``param`` is the longest
delay the requester accepts in REQUEST/REPLY, the delay left in START (PROXY mode), or the
relay's bandwidth in START (RELAY mode).  The proxy repeats START every 3 s until both ends
ACK (at most 3 repeats; the exchange is dropped after 20 s without progress).  A refusal
travels back as a REPLY whose ``status`` is an error code or'ed with where it arose.

Modes: PROXY (0x2) is hole punching: on START both ends send TOU SYNs to each other's mapped
address after the delay, which opens both NATs.  RELAY (0x4): on START the proxy has installed
a relay between the two mapped addresses, and the ends run TOU through it (`tcponudp.relay`).
DIRECT mode (0x1, dest reachable and acting as its own proxy) is not offered: we answer it
with UNSUPPORTED as a BitDHT node that disallows the mode does.

`ConnectCoordinator` plays all three roles.  It keeps the `pqi.core.Core` contract: it is fed
`dht.Connect` queries (the `dht.node.ConnectReceived` events of the DHT node) and requests,
with the time; `drain` hands over the `pqi.core.Datagram` to send and, in order with them, the
events the layer above acts on (`Started`, `Failed`, `RelayRequest`).
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
from collections.abc import Callable
from typing import Final

from dht.krpc import (
    CONNECT_ACK,
    CONNECT_MODE_DIRECT,
    CONNECT_MODE_PROXY,
    CONNECT_MODE_RELAY,
    CONNECT_REPLY,
    CONNECT_REQUEST,
    CONNECT_START,
    RS_VERSION,
    Address,
    Connect,
    NodeInfo,
    encode,
)
from pqi.core import Datagram

__all__ = [
    "ANSWER_OKAY", "ConnectError", "Point", "error_status", "error_code",
    "START_RETRY_PERIOD", "START_MAX_RETRY", "CONNECTION_MAX_TIMEOUT", "ZERO_ADDRESS",
    "Started", "Failed", "RelayRequest", "Event", "ConnectCoordinator",
]

#: ``BITDHT_CONNECT_ANSWER_OKAY``.
ANSWER_OKAY: Final = 0
#: Seconds between two STARTs while an end has not ACKed (``BD_CONNECTION_START_RETRY_PERIOD``).
START_RETRY_PERIOD: Final = 3.0
#: STARTs repeated at most this often (``BD_CONNECTION_START_MAX_RETRY``).
START_MAX_RETRY: Final = 3
#: An exchange with no progress for this long is forgotten (``BD_CONNECTION_MAX_TIMEOUT``).
CONNECTION_MAX_TIMEOUT: Final = 20.0
#: What an end point puts where it does not know (or will not say) an address.
ZERO_ADDRESS: Final = ("0.0.0.0", 0)

_SOURCE_MASK: Final = 0x00FF0000
_TYPE_MASK: Final = 0x0000FFFF


class ConnectError(enum.IntEnum):
    """``BITDHT_CONNECT_ERROR_*``: why an exchange failed (the low 16 bits of ``status``)."""

    GENERIC = 1
    PROTOCOL = 2
    TIMEOUT = 3
    TEMPUNAVAIL = 4
    NOADDRESS = 5
    UNREACHABLE = 6
    UNSUPPORTED = 7
    OVERLOADED = 8
    AUTH_DENIED = 9
    DUPLICATE = 10
    TOOMANYRETRY = 11
    OUTOFPROXY = 12
    USER = 13


class Point(enum.IntEnum):
    """``BD_PROXY_CONNECTION_*_POINT``: our place in an exchange."""

    START = 1
    MID = 2
    END = 3


_SOURCE_BITS: Final = {Point.START: 0x00010000, Point.MID: 0x00020000, Point.END: 0x00040000}


def error_status(error: ConnectError, point: Point) -> int:
    """The ``status`` of a refusal: the error code or'ed with where it arose
    (``createConnectionErrorCode``)."""
    return int(error) | _SOURCE_BITS[point]


def error_code(status: int) -> ConnectError:
    """The error in a ``status`` (GENERIC for a code we do not know)."""
    try:
        return ConnectError(status & _TYPE_MASK)
    except ValueError:
        return ConnectError.GENERIC


@dataclasses.dataclass(frozen=True)
class Started:
    """Connect now: ``peer`` is the far end's mapped address, ``own`` ours as the proxy sees
    it, ``delay`` seconds to wait first (PROXY) or ``bandwidth`` the relay allows (RELAY).
    ``initiator`` is whether we sent the REQUEST (the TLS client)."""

    peer_id: bytes
    peer: Address
    own: Address
    proxy: Address
    mode: int
    delay: float
    bandwidth: int
    initiator: bool


@dataclasses.dataclass(frozen=True)
class Failed:
    """An exchange we started failed: ``error`` says why, ``point`` where."""

    peer_id: bytes
    proxy: Address
    mode: int
    error: ConnectError
    point: Point | None


@dataclasses.dataclass(frozen=True)
class RelayRequest:
    """(Proxy) the ends agreed: ``a`` and ``b`` are their mapped addresses.  Informational:
    the relay itself was installed when the exchange was authorised."""

    a: Address
    b: Address
    bandwidth: int


Event = Started | Failed | RelayRequest


@dataclasses.dataclass
class _Exchange:
    point: Point
    mode: int
    src: NodeInfo          # the requester, with its connect address
    dest: NodeInfo         # the target, with its connect address (once known)
    proxy: Address         # whom we talk to (start, end); the requester (mid)
    started: float
    last_event: float
    max_delay: int = 0
    src_seen: Address = ZERO_ADDRESS   # (mid) where the requester's datagrams come from
    dest_seen: Address = ZERO_ADDRESS  # (mid) where the target is
    waiting_ack: bool = False
    src_ack: bool = False
    dest_ack: bool = False
    retries: int = 0
    last_start: float = 0.0
    bandwidth: int = 0
    completed: bool = False


def _zero(addr: Address) -> bool:
    return ipaddress.ip_address(addr[0]).is_unspecified or addr[1] == 0


class ConnectCoordinator:
    """Our side of BitDHT ``connect`` exchanges, in every role.

    ``own_id`` is our DHT id.  ``locate(node_id)`` gives the address of a node in our DHT
    table (for the proxy role).  ``authorise(peer_id, mode)`` decides whether we accept an
    exchange as its end (is the requester a friend?).  ``install_relay(src_id, src_addr,
    dest_id, dest_addr)`` reserves a relay as proxy of a RELAY exchange and returns the
    bandwidth granted, or None when there is no room (``OVERLOADED``);
    ``release_relay(src_addr, dest_addr)`` frees it when the exchange then fails (refused by
    the target, or no progress).  ``new_tid`` makes transaction ids.
    """

    def __init__(self, own_id: bytes, *, locate: Callable[[bytes], Address | None],
                 authorise: Callable[[bytes, int], bool],
                 install_relay: Callable[[bytes, Address, bytes, Address], int | None],
                 new_tid: Callable[[], bytes], version: bytes | None = RS_VERSION,
                 release_relay: Callable[[Address, Address], None] | None = None,
                 allowed_modes: int = CONNECT_MODE_PROXY | CONNECT_MODE_RELAY) -> None:
        self.own_id = own_id
        self.locate = locate
        self.authorise = authorise
        self.install_relay = install_relay
        self.release_relay = release_relay
        self.new_tid = new_tid
        self.version = version
        self.allowed_modes = allowed_modes
        self._exchanges: dict[tuple[bytes, bytes], _Exchange] = {}
        self._out: list[Datagram | Event] = []
        #: Messages that matched no exchange or came from the wrong place.
        self.ignored = 0

    # -- output ----------------------------------------------------------------------------

    def drain(self, now: float) -> list[Datagram | Event]:
        """Datagrams to send and events, oldest first (`pqi.core.Core`)."""
        out, self._out = self._out, []
        return out

    def _send(self, to: Address, ctype: int, src: NodeInfo, dest: NodeInfo, mode: int,
              param: int, status: int) -> None:
        msg = Connect(self.new_tid(), self.own_id, src, dest, mode, param, status, ctype,
                      self.version)
        self._out.append(Datagram(encode(msg), to))

    def next_deadline(self) -> float | None:
        deadlines = [x.last_event + CONNECTION_MAX_TIMEOUT for x in self._exchanges.values()]
        deadlines += [x.last_start + START_RETRY_PERIOD for x in self._exchanges.values()
                      if x.waiting_ack]
        return min(deadlines, default=None)

    def in_progress(self, peer_id: bytes) -> bool:
        return any(peer_id in key for key in self._exchanges)

    # -- API -------------------------------------------------------------------------------

    def request(self, dest_id: bytes, proxy: Address, mode: int, now: float, *,
                own: Address = ZERO_ADDRESS, max_delay: int = 0) -> None:
        """Ask ``proxy`` to connect us to ``dest_id`` in ``mode`` (PROXY or RELAY)."""
        key = (self.own_id, dest_id)
        self._forget_completed(key)
        if key in self._exchanges or (dest_id, self.own_id) in self._exchanges:
            self._out.append(Failed(dest_id, proxy, mode, ConnectError.DUPLICATE, Point.START))
            return
        src = NodeInfo(self.own_id, *own)
        dest = NodeInfo(dest_id, *ZERO_ADDRESS)
        self._exchanges[key] = _Exchange(Point.START, mode, src, dest, proxy, now, now,
                                         max_delay=max_delay)
        self._send(proxy, CONNECT_REQUEST, src, dest, mode, max_delay, ANSWER_OKAY)

    def cancel(self, dest_id: bytes) -> None:
        """Forget the exchange we started towards ``dest_id`` (the caller gave up)."""
        self._exchanges.pop((self.own_id, dest_id), None)

    def _forget_completed(self, key: tuple[bytes, bytes]) -> None:
        """An end's finished exchange (kept to re-ACK a repeated START) gives way to a new
        one between the same two nodes, in either direction."""
        for k in (key, (key[1], key[0])):
            x = self._exchanges.get(k)
            if x is not None and x.completed:
                del self._exchanges[k]

    def connect_received(self, msg: Connect, addr: Address, now: float) -> None:
        """Handle one ``connect`` query from ``addr`` (a `dht.node.ConnectReceived`)."""
        handler = {CONNECT_REQUEST: self._on_request, CONNECT_REPLY: self._on_reply,
                   CONNECT_START: self._on_start, CONNECT_ACK: self._on_ack}[msg.type]
        handler(msg, addr, now)

    def handle_timer(self, now: float) -> None:
        """Drop exchanges without progress; repeat STARTs not yet ACKed."""
        for key, x in list(self._exchanges.items()):
            if now - x.last_event >= CONNECTION_MAX_TIMEOUT:
                del self._exchanges[key]
                self._release(x)
                if x.point is Point.START and not x.completed:
                    self._out.append(Failed(x.dest.node_id, x.proxy, x.mode,
                                               ConnectError.TIMEOUT, None))
                continue
            if x.waiting_ack and now - x.last_start >= START_RETRY_PERIOD:
                if x.retries >= START_MAX_RETRY:
                    del self._exchanges[key]
                    self._release(x)
                    continue
                x.retries += 1
                self._send_starts(x, now)

    # -- the four messages -----------------------------------------------------------------

    def _refuse(self, to: Address, msg: Connect, error: ConnectError, point: Point) -> None:
        self._send(to, CONNECT_REPLY, msg.src, msg.dest, msg.mode, 0, error_status(error, point))

    def _on_request(self, msg: Connect, addr: Address, now: float) -> None:
        are_proxy = msg.src.node_id == msg.sender_id
        point = Point.MID if are_proxy else Point.END
        if not msg.mode & self.allowed_modes or msg.mode == CONNECT_MODE_DIRECT:
            self._refuse(addr, msg, ConnectError.UNSUPPORTED, point)
            return
        key = (msg.src.node_id, msg.dest.node_id)
        self._forget_completed(key)
        if key in self._exchanges or (key[1], key[0]) in self._exchanges:
            self._refuse(addr, msg, ConnectError.DUPLICATE, point)
            return
        if are_proxy:
            self._proxy_request(msg, addr, now, key)
        else:
            self._end_request(msg, addr, now, key)

    def _proxy_request(self, msg: Connect, addr: Address, now: float,
                       key: tuple[bytes, bytes]) -> None:
        if msg.dest.node_id == self.own_id:
            self._refuse(addr, msg, ConnectError.UNSUPPORTED, Point.MID)
            return
        dest_addr = self.locate(msg.dest.node_id)
        if dest_addr is None:
            self._refuse(addr, msg, ConnectError.NOADDRESS, Point.MID)
            return
        bandwidth = 0
        if msg.mode == CONNECT_MODE_RELAY:
            granted = self.install_relay(msg.src.node_id, addr, msg.dest.node_id, dest_addr)
            if granted is None:
                self._refuse(addr, msg, ConnectError.OVERLOADED, Point.MID)
                return
            bandwidth = granted
        x = _Exchange(Point.MID, msg.mode, msg.src, NodeInfo(msg.dest.node_id, *ZERO_ADDRESS),
                      addr, now, now, max_delay=msg.param, src_seen=addr, dest_seen=dest_addr,
                      bandwidth=bandwidth)
        self._exchanges[key] = x
        self._send(dest_addr, CONNECT_REQUEST, msg.src, msg.dest, msg.mode, 0, ANSWER_OKAY)

    def _end_request(self, msg: Connect, addr: Address, now: float,
                     key: tuple[bytes, bytes]) -> None:
        if msg.dest.node_id != self.own_id or not self.authorise(msg.src.node_id, msg.mode):
            self._refuse(addr, msg, ConnectError.AUTH_DENIED, Point.END)
            return
        src = NodeInfo(msg.src.node_id, *ZERO_ADDRESS)
        dest = NodeInfo(self.own_id, *ZERO_ADDRESS)
        self._exchanges[key] = _Exchange(Point.END, msg.mode, src, dest, addr, now, now)
        self._send(addr, CONNECT_REPLY, src, dest, msg.mode, 0, ANSWER_OKAY)

    def _on_reply(self, msg: Connect, addr: Address, now: float) -> None:
        key = (msg.src.node_id, msg.dest.node_id)
        x = self._exchanges.get(key)
        if x is None:
            self.ignored += 1
            return
        if x.point is Point.START and addr == x.proxy:
            # Only a refusal comes back to the requester.
            del self._exchanges[key]
            error = (error_code(msg.status) if msg.status != ANSWER_OKAY
                     else ConnectError.PROTOCOL)
            source = msg.status & _SOURCE_MASK
            where = next((p for p, bit in _SOURCE_BITS.items() if bit == source), None)
            self._out.append(Failed(x.dest.node_id, x.proxy, x.mode, error, where))
            return
        if x.point is not Point.MID or addr != x.dest_seen or x.waiting_ack:
            self.ignored += 1
            return
        if msg.status != ANSWER_OKAY:
            del self._exchanges[key]
            self._release(x)
            self._send(x.src_seen, CONNECT_REPLY, x.src, msg.dest, x.mode, 0, msg.status)
            return
        # Fill the addresses the ends left zero with where we see them.
        src_addr = x.src.addr if not _zero(x.src.addr) else x.src_seen
        dest_addr = msg.dest.addr if not _zero(msg.dest.addr) else x.dest_seen
        x.src = NodeInfo(x.src.node_id, *src_addr)
        x.dest = NodeInfo(x.dest.node_id, *dest_addr)
        x.max_delay = max(x.max_delay, msg.param)
        x.waiting_ack = True
        x.last_event = now
        self._send_starts(x, now)

    def _release(self, x: _Exchange) -> None:
        """(Proxy) a RELAY exchange that will not complete gives its relay back."""
        if (x.point is Point.MID and x.mode == CONNECT_MODE_RELAY and not x.src_ack
                and not x.dest_ack and self.release_relay is not None):
            self.release_relay(x.src_seen, x.dest_seen)

    def _send_starts(self, x: _Exchange, now: float) -> None:
        x.last_start = now
        if x.mode == CONNECT_MODE_RELAY:
            param = x.bandwidth
        else:
            param = max(0, int(x.max_delay - (now - x.started)))
        for to, acked in ((x.src_seen, x.src_ack), (x.dest_seen, x.dest_ack)):
            if not acked:
                self._send(to, CONNECT_START, x.src, x.dest, x.mode, param, ANSWER_OKAY)

    def _on_start(self, msg: Connect, addr: Address, now: float) -> None:
        key = (msg.src.node_id, msg.dest.node_id)
        x = self._exchanges.get(key)
        if x is None or x.point is Point.MID or addr != x.proxy:
            self.ignored += 1
            return
        self._send(addr, CONNECT_ACK, x.src, x.dest, x.mode, 0, ANSWER_OKAY)
        x.last_event = now
        if x.completed:
            return  # a repeated START: our ACK was lost
        x.completed = True
        initiator = x.point is Point.START
        peer, own = (msg.dest, msg.src) if initiator else (msg.src, msg.dest)
        relay = x.mode == CONNECT_MODE_RELAY
        self._out.append(Started(
            peer.node_id, peer.addr, own.addr, addr, x.mode,
            0.0 if relay else float(msg.param), msg.param if relay else 0, initiator))

    def _on_ack(self, msg: Connect, addr: Address, now: float) -> None:
        key = (msg.src.node_id, msg.dest.node_id)
        x = self._exchanges.get(key)
        if x is None or x.point is not Point.MID or not x.waiting_ack:
            self.ignored += 1
            return
        if addr == x.src_seen and msg.sender_id == x.src.node_id:
            x.src_ack = True
        elif addr == x.dest_seen and msg.sender_id == x.dest.node_id:
            x.dest_ack = True
        else:
            self.ignored += 1
            return
        x.last_event = now
        if x.src_ack and x.dest_ack:
            del self._exchanges[key]
            if x.mode == CONNECT_MODE_RELAY:
                self._out.append(RelayRequest(x.src_seen, x.dest_seen, x.bandwidth))
