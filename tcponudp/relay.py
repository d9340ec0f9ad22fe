# -*- test-case-name: tests.test_relay_codec -*-
"""RetroShare's UDP relay ("RLY1", ``src/tcponudp/udprelay.{h,cc}``): codec, forwarder, ends.

A relayed datagram is a 16-byte header, then the inner datagram (a TOU segment)::

    0  "RLY1"
    4  source IPv4 (network order)       8  source port (network order)
    10 destination IPv4 (network order)  14 destination port (network order)

An end point sends to the proxy with itself as source and the far end as destination; the proxy
looks the (source, destination) pair up among the relays it agreed to carry and sends the packet
on **unchanged** to the destination; the far end finds its stream by the source in the header.
The proxy never sees inside: TLS runs end to end over the TOU stream.

`RelayForwarder` is the proxy's sans-IO core with RetroShare's limits: relay classes (general,
friend-of-friend, friends), a total count and per-class counts (a class that is full borrows a
slot from the class below it, never from ALL), a bandwidth limit per relay (bytes per second,
smoothed with RetroShare's filter, checked by `check`), a 30 s silence timeout and a lifetime of
1 h (general), 2 h (friend of friend), 4 h (friends).  RetroShare's defaults give friends no
slots of their own (they borrow); `RelayLimits.friends_first` gives friends the slots instead,
which is what the link manager uses.  Unlike RetroShare we also require a relayed packet to
come from the address its header names as source (`RelayForwarder.require_source_match`).
"""

from __future__ import annotations

import collections
import enum
import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Final

from pqi.wire.errors import EncodeError

from .errors import DatagramTruncatedError, DatagramValueError

__all__ = [
    "RELAY_MAGIC", "RELAY_HEADER_SIZE", "MAX_RELAY_PACKET", "RelayHeader", "RelayClass",
    "RelayLimits", "RelayForwarder", "RelayEnd", "encode_relay", "decode_relay",
    "is_relay_packet", "LIFETIMES", "RELAY_TIMEOUT", "BANDWIDTH_FILTER_K", "MAX_DROP_RECORDS",
]

RELAY_MAGIC: Final = b"RLY1"
RELAY_HEADER_SIZE: Final = 16
#: RetroShare's ``MAX_RELAY_UDP_PACKET_SIZE``: 1400 + TOU header + relay header.
MAX_RELAY_PACKET: Final = 1400 + 20 + 16
#: Dropped relays remembered (with why) in `RelayForwarder.dropped`, the newest kept.
MAX_DROP_RECORDS: Final = 256
#: A relay that carried nothing for this long is dropped (``RELAY_TIMEOUT``).
RELAY_TIMEOUT: Final = 30.0
#: The smoothing of the per-relay bandwidth estimate (``BANDWIDTH_FILTER_K``).
BANDWIDTH_FILTER_K: Final = 0.8
_HEADER = struct.Struct("!4s4sH4sH")

Address = tuple[str, int]


class RelayClass(enum.IntEnum):
    """``RsDhtRelayClass``: ALL counts every relay; a higher class is a closer peer."""

    ALL = 0
    GENERAL = 1
    FOF = 2
    FRIENDS = 3


#: Seconds a relay of each class may live (``UDP_RELAY_LIFETIME_*``).
LIFETIMES: Final = {RelayClass.GENERAL: 3600.0, RelayClass.FOF: 7200.0,
                    RelayClass.FRIENDS: 14400.0}


@dataclass(frozen=True, slots=True)
class RelayHeader:
    source: Address
    destination: Address

    def flipped(self) -> RelayHeader:
        return RelayHeader(self.destination, self.source)


def _pack_addr(addr: Address) -> tuple[bytes, int]:
    try:
        return ipaddress.IPv4Address(addr[0]).packed, addr[1]
    except ipaddress.AddressValueError as e:
        raise EncodeError(f"relay address {addr!r}: {e}") from None


def encode_relay(header: RelayHeader, payload: bytes) -> bytes:
    """Header plus payload; raises `EncodeError` for a non-IPv4 address or bad port."""
    src, sport = _pack_addr(header.source)
    dst, dport = _pack_addr(header.destination)
    if len(payload) + RELAY_HEADER_SIZE > MAX_RELAY_PACKET:
        raise EncodeError(f"relayed datagram of {len(payload)} bytes is too large")
    try:
        return _HEADER.pack(RELAY_MAGIC, src, sport, dst, dport) + payload
    except struct.error as e:
        raise EncodeError(f"relay port out of range: {e}") from None


def is_relay_packet(data: bytes) -> bool:
    """RetroShare's test (``isUdpRelayPacket``): the magic and a whole header."""
    return len(data) >= RELAY_HEADER_SIZE and data[:4] == RELAY_MAGIC


def decode_relay(data: bytes) -> tuple[RelayHeader, bytes]:
    """The header and the inner datagram; raises a `DatagramDecodeError` subclass."""
    if len(data) < RELAY_HEADER_SIZE:
        raise DatagramTruncatedError(f"relay packet of {len(data)} bytes", field="relay.header",
                                     offset=len(data))
    magic, src, sport, dst, dport = _HEADER.unpack_from(data)
    if magic != RELAY_MAGIC:
        raise DatagramValueError(f"relay magic {magic!r}", field="relay.magic", offset=0)
    header = RelayHeader((str(ipaddress.IPv4Address(src)), sport),
                         (str(ipaddress.IPv4Address(dst)), dport))
    return header, bytes(data[RELAY_HEADER_SIZE:])


@dataclass(frozen=True, slots=True)
class RelayLimits:
    """How many relays of each class we carry, and bytes per second for each."""

    total: int = 2
    counts: tuple[int, int, int] = (1, 1, 0)  # GENERAL, FOF, FRIENDS
    bandwidth: tuple[int, int, int] = (1024, 1024, 1024)

    @classmethod
    def retroshare_defaults(cls) -> RelayLimits:
        """``UDP_RELAY_DEFAULT_*``: 2 relays, half general, half friend-of-friend, 1 KiB/s."""
        return cls()

    @classmethod
    def friends_first(cls, total: int = 4, bandwidth: int = 1 << 20) -> RelayLimits:
        """Our default: friends get most slots and real bandwidth; strangers a token one."""
        return cls(total=total, counts=(0, 1, total), bandwidth=(1024, 1024, bandwidth))

    def count(self, cls: RelayClass) -> int:
        return self.total if cls is RelayClass.ALL else self.counts[cls - 1]

    def rate(self, cls: RelayClass) -> int:
        return self.bandwidth[cls - 1]


class DropReason(enum.Enum):
    BANDWIDTH = "over its bandwidth limit"
    SILENT = "carried nothing for 30 s"
    LIFETIME = "lived its lifetime"
    REMOVED = "removed"


@dataclass(slots=True)
class _Relay:
    header: RelayHeader
    cls: RelayClass
    limit: float
    started: float
    last: float
    last_check: float
    size: int = 0
    rate: float = 0.0


@dataclass
class RelayForwarder:
    """The proxy: which (source, destination) pairs we carry, with RetroShare's limits."""

    limits: RelayLimits = field(default_factory=RelayLimits.friends_first)
    require_source_match: bool = True
    forwarded_bytes: int = 0
    refused: int = 0
    _relays: dict[RelayHeader, _Relay] = field(default_factory=dict)
    _counts: dict[RelayClass, int] = field(default_factory=lambda: dict.fromkeys(RelayClass, 0))
    #: The latest dropped relays and why (at most `MAX_DROP_RECORDS`), and how many in all.
    dropped: collections.deque[tuple[RelayHeader, DropReason]] = field(
        default_factory=lambda: collections.deque(maxlen=MAX_DROP_RECORDS))
    drops: int = 0

    def add(self, a: Address, b: Address, cls: RelayClass, now: float) -> RelayClass | None:
        """Agree to relay between ``a`` and ``b`` (both directions); returns the class granted
        (a full class borrows from the class below), or ``None`` when there is no room."""
        header = RelayHeader(a, b)
        if header in self._relays or cls is RelayClass.ALL:
            return None
        if self._counts[RelayClass.ALL] >= self.limits.total:
            return None
        granted = cls
        while self._counts[granted] >= self.limits.count(granted):
            if granted == RelayClass.GENERAL:
                return None
            granted = RelayClass(granted - 1)
        self._counts[RelayClass.ALL] += 1
        self._counts[granted] += 1
        limit = float(self.limits.rate(granted))
        for h in (header, header.flipped()):
            self._relays[h] = _Relay(h, granted, limit, now, now, now)
        return granted

    def remove(self, a: Address, b: Address) -> None:
        self._drop(RelayHeader(a, b), DropReason.REMOVED)

    def _drop(self, header: RelayHeader, reason: DropReason) -> None:
        relay = self._relays.pop(header, None)
        if relay is None:
            return
        self._relays.pop(header.flipped(), None)
        self._counts[RelayClass.ALL] -= 1
        self._counts[relay.cls] -= 1
        self.dropped.append((header, reason))
        self.drops += 1

    def __len__(self) -> int:
        return self._counts[RelayClass.ALL]

    def forward(self, data: bytes, sender: Address, now: float) -> tuple[bytes, Address] | None:
        """The datagram to send on (unchanged) and where, or ``None`` if we do not carry it."""
        if not is_relay_packet(data):
            return None
        header, _ = decode_relay(data)
        relay = self._relays.get(header)
        if relay is None or (self.require_source_match and sender != header.source):
            self.refused += 1
            return None
        relay.last = now
        relay.size += len(data)
        self.forwarded_bytes += len(data)
        return data, header.destination

    def check(self, now: float) -> list[tuple[RelayHeader, DropReason]]:
        """RetroShare's periodic check: update rates, drop relays over bandwidth, silent or
        past their lifetime.  Returns what was dropped now."""
        done: list[tuple[RelayHeader, DropReason]] = []
        for header, relay in list(self._relays.items()):
            if header not in self._relays:
                continue
            elapsed = max(now - relay.last_check, 1e-9)
            relay.rate = BANDWIDTH_FILTER_K * relay.rate + (1 - BANDWIDTH_FILTER_K) * (
                relay.size / elapsed)
            relay.size = 0
            relay.last_check = now
            if relay.rate > relay.limit:
                reason = DropReason.BANDWIDTH
            elif now - relay.last > RELAY_TIMEOUT:
                reason = DropReason.SILENT
            elif now - relay.started > LIFETIMES[relay.cls]:
                reason = DropReason.LIFETIME
            else:
                continue
            self._drop(header, reason)
            done.append((header, reason))
        return done


@dataclass(frozen=True, slots=True)
class RelayEnd:
    """One end of a relayed path: we are ``local``, the proxy relays to ``remote``."""

    local: Address
    proxy: Address
    remote: Address

    def wrap(self, datagram: bytes) -> tuple[bytes, Address]:
        return encode_relay(RelayHeader(self.local, self.remote), datagram), self.proxy

    def unwrap(self, data: bytes) -> bytes | None:
        """The inner datagram if ``data`` is a relay packet from ``remote`` to us."""
        header, inner = decode_relay(data)
        if header.source != self.remote or header.destination != self.local or not inner:
            return None
        return inner
