# -*- test-case-name: tests.test_tou_packet -*-
"""RetroShare's TCP-over-UDP segment header (``src/tcponudp/tcppacket.cc``).

Twenty bytes, all big-endian, then the payload::

    0  u16 source port       always 0 (the UDP header has the ports)
    2  u16 destination port  always 0
    4  u32 sequence number
    8  u32 acknowledgement number
    12 u16 hlen_flags        flags in the low byte, header-length nibble in bits 8..11
    14 u16 window            receive window in bytes
    16 u16 checksum          always 0 (UDP checks the datagram)
    18 u16 urgent pointer    always 0

The flag bits are not TCP's: RetroShare numbers them the other way round inside the low byte
(URG 0x04, ACK 0x08, PSH 0x10, RST 0x20, SYN 0x40, FIN 0x80).  RetroShare never sets the
header-length nibble and ignores it, the ports, the checksum and the urgent pointer when reading;
we write zeros there too and keep what we read so that a decoded header encodes to the same bytes.
"""

from __future__ import annotations

import enum
import struct
from typing import Final, NamedTuple

from pqi.wire.errors import EncodeError

from .errors import DatagramTruncatedError, DatagramValueError

__all__ = [
    "HEADER_SIZE", "MAX_PAYLOAD", "MAX_SEGMENT_PAYLOAD", "CAPABILITY_MAGIC", "CAPABILITY_SACK",
    "CAPABILITY_WINDOW", "WINDOW_SHIFT", "HOLE_WINDOW_SHIFT",
    "MAX_SACK_BLOCKS", "WIDE_SACK_BLOCKS", "Flags", "TouPacket", "decode_packet", "encode_packet",
    "encode_segment",
    "encode_sack", "decode_sack",
]

HEADER_SIZE: Final = 20
#: Largest payload RetroShare's relay buffer carries (``MAX_RELAY_UDP_PACKET_SIZE`` - 36).
MAX_PAYLOAD: Final = 1400

#: The largest payload one segment can carry (a UDP datagram over IPv4 holds 65,507 bytes).
MAX_SEGMENT_PAYLOAD: Final = 65507 - HEADER_SIZE
#: In the checksum field of a SYN or SYN+ACK: the urgent pointer holds the largest segment
#: payload the sender takes from an rsproto peer ("rs").  RetroShare writes zeros in both
#: fields and never reads them (``TcpPacket::readPacket``), so it neither sees nor sends this;
#: see ``docs/tou.md`` ("Larger segments between rsproto nodes").
CAPABILITY_MAGIC: Final = 0x7273
#: In the checksum field of a SYN or SYN+ACK: as `CAPABILITY_MAGIC` (the urgent pointer holds
#: the segment offer, 0 for none), and the sender also takes and sends SACK ranges ("rS").  In
#: a pure ACK between two ends that both sent it: the payload is SACK ranges, not data
#: (`encode_sack`).  RetroShare never reads the field, and is never sent such an ACK.
CAPABILITY_SACK: Final = 0x7253
#: In the checksum field of a SYN or SYN+ACK: as `CAPABILITY_SACK`, and the sender also scales
#: its window ("rW"): where both ends sent it, every segment after the SYN and SYN+ACK counts
#: its window field in units of ``1 << WINDOW_SHIFT`` bytes.  A SYN's window is never scaled.
#: RetroShare never writes it, so a window it sends or is sent is always in bytes.
CAPABILITY_WINDOW: Final = 0x7257
#: The window scale between two ends that both sent `CAPABILITY_WINDOW`: 65,535 units of 4
#: bytes, 256 KiB, what `tcponudp.config.TouConfig.receive_buffer` holds by default.
WINDOW_SHIFT: Final = 2
#: In the header-length nibble of a SYN or SYN+ACK that carries `CAPABILITY_WINDOW`: how many
#: bits beyond `WINDOW_SHIFT` its sender offers to scale windows by (0, what the first rsproto
#: ends with window scaling wrote, offers none).  Both ends then scale by `WINDOW_SHIFT` plus the
#: smaller offer: with ours, units of 8 bytes and windows up to 512 KiB, room for the bytes a
#: receiver holds beyond a hole (`tcponudp.config.OUT_OF_ORDER_ALLOWANCE`).  RetroShare never
#: sets or reads the nibble (``TcpPacket::readPacket``), and is never sent it.
HOLE_WINDOW_SHIFT: Final = 1
#: Most ranges one SACK carries (8 bytes each).
MAX_SACK_BLOCKS: Final = 8
#: Most ranges one SACK carries between two ends that agreed the wider window scale
#: (`HOLE_WINDOW_SHIFT`): a receiver with room beyond a hole holds twenty holes and more at 5%
#: loss, and ranges it cannot report leave the sender blind to what arrived beyond them
#: (256 bytes of payload; an end without the wider scale takes at most `MAX_SACK_BLOCKS`).
WIDE_SACK_BLOCKS: Final = 32

_HEADER = struct.Struct("!HHIIHHHH")
_BLOCK = struct.Struct("!II")


class Flags(enum.IntFlag):
    """RetroShare's flag bits (low byte of ``hlen_flags``)."""

    NONE = 0
    URG = 0x04
    ACK = 0x08
    PSH = 0x10
    RST = 0x20
    SYN = 0x40
    FIN = 0x80


class TouPacket(NamedTuple):
    """One TOU segment.  ``flags`` holds the whole low byte (bits 0-1 are unused but kept).

    An immutable named tuple rather than a frozen dataclass: every datagram received builds
    one, and a tuple is built in C (about 1 µs against 6 µs for eleven frozen fields)."""

    seq: int
    ack: int
    flags: Flags
    window: int
    payload: bytes = b""
    hlen: int = 0
    src_port: int = 0
    dst_port: int = 0
    checksum: int = 0
    urgent: int = 0
    #: Bits 12..15 of ``hlen_flags``, unused by RetroShare.
    reserved: int = 0

    @property
    def hlen_flags(self) -> int:
        return (self.reserved << 12) | (self.hlen << 8) | int(self.flags)

    def has(self, flag: Flags) -> bool:
        # Plain int arithmetic: IntFlag's own ``&`` builds a new member on every call, and this
        # runs several times for every segment.
        return (self.flags._value_ & flag._value_) != 0


def encode_packet(packet: TouPacket) -> bytes:
    """The datagram for ``packet``; raises `EncodeError` for a field out of range or a payload
    no datagram holds (one above RetroShare's `MAX_PAYLOAD` only goes to an rsproto peer that
    offered to take it)."""
    if len(packet.payload) > MAX_SEGMENT_PAYLOAD:
        raise EncodeError(f"TOU payload of {len(packet.payload)} bytes > {MAX_SEGMENT_PAYLOAD}")
    try:
        header = _HEADER.pack(packet.src_port, packet.dst_port, packet.seq, packet.ack,
                              packet.hlen_flags, packet.window, packet.checksum, packet.urgent)
    except struct.error as e:
        raise EncodeError(f"TOU header field out of range: {e}") from None
    if not (0 <= int(packet.flags) <= 0xFF and 0 <= packet.hlen <= 0xF
            and 0 <= packet.reserved <= 0xF):
        raise EncodeError("TOU hlen_flags field out of range")
    return header + packet.payload


def encode_segment(seq: int, ack: int, flags: Flags, window: int, payload: bytes,
                   checksum: int = 0, urgent: int = 0, hlen: int = 0) -> bytes:
    """The datagram of a segment we send (zero ports, and zero checksum, urgent pointer and
    header-length nibble unless given, as RetroShare writes them): `encode_packet` without
    building a `TouPacket`, for the stream's per-segment path.  The payload may exceed
    `MAX_PAYLOAD` (the stream sends more only to an rsproto peer that offered it); raises
    `EncodeError` for a field out of range."""
    if len(payload) > MAX_SEGMENT_PAYLOAD:
        raise EncodeError(f"TOU payload of {len(payload)} bytes > {MAX_SEGMENT_PAYLOAD}")
    try:
        return _HEADER.pack(0, 0, seq, ack, (hlen << 8) | flags._value_, window, checksum,
                            urgent) + payload
    except struct.error as e:
        raise EncodeError(f"TOU header field out of range: {e}") from None


#: Every low byte's `Flags` value, built once: decoding a segment looks its flags up.
_FLAGS: Final = tuple(Flags(i) for i in range(256))


def decode_packet(datagram: bytes) -> TouPacket:
    """Read a TOU segment.  Anything of at least 20 bytes is a segment, as for RetroShare;
    the payload is at most `MAX_PAYLOAD` bytes only by the size of a UDP read."""
    if len(datagram) < HEADER_SIZE:
        raise DatagramTruncatedError(
            f"TOU segment of {len(datagram)} bytes, header needs {HEADER_SIZE}",
            field="tou.header", offset=len(datagram))
    src, dst, seq, ack, hlen_flags, window, checksum, urgent = _HEADER.unpack_from(datagram)
    return TouPacket(seq=seq, ack=ack, flags=_FLAGS[hlen_flags & 0xFF], window=window,
                     payload=bytes(datagram[HEADER_SIZE:]), hlen=(hlen_flags >> 8) & 0xF,
                     src_port=src, dst_port=dst, checksum=checksum, urgent=urgent,
                     reserved=hlen_flags >> 12)


def encode_sack(blocks: list[tuple[int, int]], limit: int = MAX_SACK_BLOCKS) -> bytes:
    """The payload of a SACK ACK: each range the receiver holds beyond its cumulative ACK, as
    (first sequence number, sequence number after the last), 32 bits each, at most ``limit``
    (`MAX_SACK_BLOCKS`, or `WIDE_SACK_BLOCKS` with the wider window scale); raises
    `EncodeError` for more ranges or a number out of range."""
    if len(blocks) > limit:
        raise EncodeError(f"{len(blocks)} SACK ranges > {limit}")
    try:
        return b"".join(_BLOCK.pack(start, end) for start, end in blocks)
    except struct.error as e:
        raise EncodeError(f"SACK range out of range: {e}") from None


def decode_sack(payload: bytes, limit: int = MAX_SACK_BLOCKS) -> list[tuple[int, int]]:
    """The ranges of a SACK ACK's payload; raises `DatagramValueError` unless it is whole ranges,
    at most ``limit`` of them (`MAX_SACK_BLOCKS`, or `WIDE_SACK_BLOCKS` with the wider window
    scale)."""
    if len(payload) % _BLOCK.size or len(payload) > limit * _BLOCK.size:
        raise DatagramValueError(f"SACK payload of {len(payload)} bytes is not "
                                 f"0..{limit} ranges of {_BLOCK.size}",
                                 field="tou.sack", offset=0)
    return [_BLOCK.unpack_from(payload, i) for i in range(0, len(payload), _BLOCK.size)]
