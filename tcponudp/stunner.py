# -*- test-case-name: tests.test_stunner -*-
"""RetroShare's UDP stunner: learn our external address from friends and DHT peers.

The packets (``src/tcponudp/udpstunner.cc``) look like RFC 3489 STUN but are not quite it:
the length field holds the **whole packet** size, not the attribute length, and the reply puts
the address right after the header with no attribute header, the family in host (little-endian)
order::

    request  (20 bytes)  u16 0x0001  u16 20  16-byte transaction id
    response (28 bytes)  u16 0x0101  u16 28  the request's transaction id
                         02 00 (AF_INET, little-endian)  u16 port  4-byte IPv4 (network order)

RetroShare answers every request and takes any 28-byte response without checking the
transaction id; `StunClient` checks it (and the sender) before believing an answer.

`classify_nat` turns the answers into a NAT type: the mapped address equal to our local one
means no NAT; the same mapping seen by every peer means a cone NAT (a peer that reached us
unasked (`StunClient.unsolicited_seen`) makes it full-cone-like, otherwise we call it
restricted); different mappings for different peers mean a symmetric NAT, which hole punching
cannot pass.
"""

from __future__ import annotations

import enum
import ipaddress
import os
import struct
from dataclasses import dataclass, field
from typing import Final

from pqi.core import Datagram
from pqi.wire.errors import DecodeError, EncodeError

from .errors import DatagramTruncatedError, DatagramValueError

__all__ = [
    "STUN_BINDING_REQUEST", "STUN_BINDING_RESPONSE", "REQUEST_SIZE", "RESPONSE_SIZE",
    "StunRequest", "StunResponse", "decode_stun", "is_stun_packet", "answer_request",
    "NatType", "classify_nat", "StunClient", "StunResult", "StunDone",
]

STUN_BINDING_REQUEST: Final = 0x0001
STUN_BINDING_RESPONSE: Final = 0x0101
REQUEST_SIZE: Final = 20
RESPONSE_SIZE: Final = 28
#: AF_INET as a little-endian host writes it.
_FAMILY_HOST_ORDER: Final = b"\x02\x00"

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class StunRequest:
    transaction_id: bytes

    def encode(self) -> bytes:
        if len(self.transaction_id) != 16:
            raise EncodeError("stun transaction id must be 16 bytes")
        return struct.pack("!HH", STUN_BINDING_REQUEST, REQUEST_SIZE) + self.transaction_id

    @classmethod
    def new(cls) -> StunRequest:
        return cls(os.urandom(16))


@dataclass(frozen=True, slots=True)
class StunResponse:
    transaction_id: bytes
    mapped: Address
    #: The family bytes as received (RetroShare writes ``02 00``).
    family: bytes = _FAMILY_HOST_ORDER

    def encode(self) -> bytes:
        host, port = self.mapped
        if len(self.transaction_id) != 16 or len(self.family) != 2:
            raise EncodeError("stun transaction id must be 16 bytes, family 2")
        try:
            packed = ipaddress.IPv4Address(host).packed
            return (struct.pack("!HH", STUN_BINDING_RESPONSE, RESPONSE_SIZE)
                    + self.transaction_id + self.family + struct.pack("!H", port) + packed)
        except (ipaddress.AddressValueError, struct.error) as e:
            raise EncodeError(f"stun mapped address {self.mapped!r}: {e}") from None


def is_stun_packet(data: bytes) -> bool:
    """RetroShare's test (``UdpStun_isStunPacket``): a request or response of exact size."""
    if len(data) not in (REQUEST_SIZE, RESPONSE_SIZE):
        return False
    kind, size = struct.unpack_from("!HH", data)
    return size == len(data) and kind == (
        STUN_BINDING_REQUEST if size == REQUEST_SIZE else STUN_BINDING_RESPONSE)


def decode_stun(data: bytes) -> StunRequest | StunResponse:
    """Read a stunner packet; raises a `DatagramDecodeError` subclass for anything else."""
    if len(data) < 4:
        raise DatagramTruncatedError(f"stun packet of {len(data)} bytes", field="stun.header",
                                     offset=len(data))
    kind, size = struct.unpack_from("!HH", data)
    if size != len(data):
        raise DatagramValueError(f"stun length field {size} != datagram size {len(data)}",
                                 field="stun.length", offset=2)
    if kind == STUN_BINDING_REQUEST and size == REQUEST_SIZE:
        return StunRequest(bytes(data[4:20]))
    if kind == STUN_BINDING_RESPONSE and size == RESPONSE_SIZE:
        (port,) = struct.unpack_from("!H", data, 22)
        host = str(ipaddress.IPv4Address(bytes(data[24:28])))
        return StunResponse(bytes(data[4:20]), (host, port), bytes(data[20:22]))
    raise DatagramValueError(f"stun type 0x{kind:04x} with size {size}", field="stun.type",
                             offset=0)


def answer_request(request: StunRequest, sender: Address) -> bytes:
    """The server side: tell ``sender`` the address its request came from."""
    return StunResponse(request.transaction_id, sender).encode()


class NatType(enum.Enum):
    UNKNOWN = "unknown (not enough answers)"
    OPEN = "open (no NAT)"
    FULL_CONE = "full-cone-like NAT"
    RESTRICTED = "restricted cone NAT"
    SYMMETRIC = "symmetric NAT"

    def __str__(self) -> str:
        return self.value


def classify_nat(local: Address, answers: dict[Address, Address], *,
                 unsolicited_seen: bool = False) -> NatType:
    """The NAT type from the mapped addresses that several peers (``answers``: peer -> mapped)
    reported for the same local UDP port.  Two answers at least are needed for a verdict beyond
    OPEN."""
    mapped = set(answers.values())
    if not mapped:
        return NatType.UNKNOWN
    if mapped == {local}:
        return NatType.OPEN
    if len(mapped) > 1:
        return NatType.SYMMETRIC
    if len(answers) < 2:
        return NatType.UNKNOWN
    return NatType.FULL_CONE if unsolicited_seen else NatType.RESTRICTED


@dataclass(frozen=True, slots=True)
class StunResult:
    external: Address | None
    nat: NatType
    answers: dict[Address, Address]


@dataclass(frozen=True, slots=True)
class StunDone:
    """Event: every peer answered or was given up on; ``result`` is final."""

    result: StunResult


@dataclass(slots=True)
class _Pending:
    request: StunRequest
    sent_at: float
    tries: int = 1


@dataclass
class StunClient:
    """Sans-IO (a `pqi.core.Core`): ask several peers for our mapped address, retry, then
    classify.

    Call `start(peers, now)` and feed answers to `datagram_received`; `drain` gives the
    `pqi.core.Datagram` requests to send and, once every peer answered or was given up on, one
    `StunDone` event (`result()` is then final, `done` true).
    """

    local: Address
    retry_interval: float = 2.0
    max_tries: int = 3
    answers: dict[Address, Address] = field(default_factory=dict)
    unsolicited_seen: bool = False
    _pending: dict[Address, _Pending] = field(default_factory=dict)
    _out: list[Datagram | StunDone] = field(default_factory=list)
    _reported: bool = False
    ignored: int = 0

    def start(self, peers: list[Address], now: float) -> None:
        for peer in peers:
            if peer in self._pending or peer in self.answers:
                continue
            request = StunRequest.new()
            self._pending[peer] = _Pending(request, now)
            self._out.append(Datagram(request.encode(), peer))

    def datagram_received(self, data: bytes, sender: Address, now: float) -> bool:
        """Take a response from a peer we asked; returns whether it was one of ours."""
        pending = self._pending.get(sender)
        try:
            packet = decode_stun(data)
        except DecodeError:
            packet = None
        if (pending is None or not isinstance(packet, StunResponse)
                or packet.transaction_id != pending.request.transaction_id):
            self.ignored += 1
            return False
        del self._pending[sender]
        self.answers[sender] = packet.mapped
        self._report()
        return True

    def handle_timer(self, now: float) -> None:
        """Ask the silent peers again; give up on those asked `max_tries` times."""
        for peer, pending in list(self._pending.items()):
            if now < pending.sent_at + self.retry_interval:
                continue
            if pending.tries >= self.max_tries:
                del self._pending[peer]
                continue
            pending.tries += 1
            pending.sent_at = now
            self._out.append(Datagram(pending.request.encode(), peer))
        self._report()

    def _report(self) -> None:
        if self.done and not self._reported:
            self._reported = True
            self._out.append(StunDone(self.result()))

    def drain(self, now: float) -> list[Datagram | StunDone]:
        """Requests to send and the final `StunDone`, oldest first."""
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        if not self._pending:
            return None
        return min(p.sent_at + self.retry_interval for p in self._pending.values())

    @property
    def done(self) -> bool:
        return not self._pending

    def result(self) -> StunResult:
        nat = classify_nat(self.local, self.answers, unsolicited_seen=self.unsolicited_seen)
        mapped = list(self.answers.values())
        external = max(set(mapped), key=mapped.count) if mapped else None
        return StunResult(external, nat, dict(self.answers))
