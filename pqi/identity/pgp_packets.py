# -*- test-case-name: tests.test_pgp_packets -*-
"""`construct` schemas of the OpenPGP (RFC 4880) packets a RetroShare profile is made of.

Framing (packet headers in old and new format, new-format lengths, packet sequences), the v4
RSA public-key body with its MPIs, and the v4 signature body with its hashed and unhashed
subpacket areas.  `pqi.identity.pgp` gives them meaning (fingerprints, self-certifications, RSA
checks);
this module only says where the bytes go.

Every construct here that reads a length or a count checks it against a named limit and
against the bytes left *before* it reads or loops, and raises only `pqi.wire.errors.DecodeError`
subclasses naming the field and the offset; none of construct's unbounded readers
(``GreedyBytes``, ``GreedyRange``, ``PrefixedArray``...) is used.  Offsets are relative to the
buffer handed to `parse_whole`, which shifts them by the caller's ``base`` so that an error deep
in a signature still points into the whole key block.
"""

from __future__ import annotations

import io
import struct
from typing import Any, Final, NamedTuple

import construct as c

from pqi.identity.errors import PgpPacketError
from pqi.wire.errors import EncodeError, LimitExceededError, TruncatedError
from pqi.wire.fields import read_exact, remaining, u8, u32
from pqi.wire.tlv import nested_errors

__all__ = [
    "RawPacket",
    "Subpacket",
    "PgpLength",
    "SubpacketLength",
    "PacketHeader",
    "Packet",
    "Packets",
    "Mpi",
    "FixedBytes",
    "PublicKeyBody",
    "UserIdBody",
    "SignatureHashedPart",
    "SignatureBody",
    "Subpackets",
    "parse_whole",
    "MAX_PGP_PACKET_SIZE",
    "MAX_PGP_KEY_BLOCK",
    "MAX_PGP_PACKETS",
    "MAX_MPI_BITS",
    "MAX_USER_ID",
]

#: Largest single packet we read.  An RSA-16384 key packet is ~2 KiB; a user ID is short.
MAX_PGP_PACKET_SIZE: Final = 16384
#: Largest key block (a key with all its certifications, or a keyring) we read.
MAX_PGP_KEY_BLOCK: Final = 262144
#: Most packets in one block (and subpackets in one area): a key with many friends'
#: certifications still fits.
MAX_PGP_PACKETS: Final = 1024
#: Largest multiprecision integer (RSA modulus or signature) in bits.
MAX_MPI_BITS: Final = 16384
#: Longest user ID we read; RetroShare's are a name and a fixed 29-byte decoration.
MAX_USER_ID: Final = 1024

TAG_SIGNATURE: Final = 2
TAG_PUBLIC_KEY: Final = 6
TAG_USER_ID: Final = 13

PUBKEY_RSA: Final = 1
PUBKEY_RSA_SIGN_ONLY: Final = 3
RSA_ALGOS: Final = (PUBKEY_RSA, PUBKEY_RSA_SIGN_ONLY)

_U32 = struct.Struct(">I")
_MAX_LENGTH: Final = 0xFFFFFFFF


class RawPacket(NamedTuple):
    """One packet cut out of a block: its tag, its body, where its header and body start."""

    tag: int
    body: bytes
    offset: int = 0
    body_offset: int = 0


class Subpacket(NamedTuple):
    """One signature subpacket; ``critical`` is the top bit of its type octet."""

    kind: int
    data: bytes
    critical: bool = False


def _field(own: str | None, path: str) -> str:
    return own if own is not None else path


# --- lengths and headers --------------------------------------------------------------------

class _Length(c.Construct):
    """RFC 4880 4.2.2 new-format length: 1, 2 or 5 octets, written in the shortest form.

    Packet lengths refuse partial body lengths (first octet 224..254: nothing RetroShare writes
    uses them); subpacket lengths have no partial form, so there those octets are malformed.
    """

    def __init__(self, subpacket: bool = False, field: str | None = None) -> None:
        super().__init__()
        self.subpacket = subpacket
        self.field = field

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> int:
        field = _field(self.field, path)
        start = stream.tell()
        first = stream.read(1)
        if not first:
            raise TruncatedError("length missing", field=field, offset=start)
        octet = first[0]
        if octet < 192:
            return octet
        if octet < 224:
            second = stream.read(1)
            if not second:
                raise TruncatedError("two-octet length cut short", field=field, offset=start)
            return ((octet - 192) << 8) + second[0] + 192
        if octet == 255:
            rest = stream.read(4)
            if len(rest) != 4:
                raise TruncatedError("five-octet length cut short", field=field, offset=start)
            return int(_U32.unpack(rest)[0])
        if self.subpacket:
            raise PgpPacketError("bad subpacket length", field=field, offset=start)
        raise PgpPacketError("partial body length is not supported", field=field, offset=start)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> int:
        n = int(obj)
        if not 0 <= n <= _MAX_LENGTH:
            raise EncodeError(f"{path}: length {n} does not fit an OpenPGP length")
        if n < 192:
            stream.write(bytes([n]))
        elif n < 8384:
            stream.write(bytes([((n - 192) >> 8) + 192, (n - 192) & 0xFF]))
        else:
            stream.write(b"\xff" + _U32.pack(n))
        return n


#: A packet (or RetroShare certificate section) length.
PgpLength = _Length()
#: A signature subpacket length (same octets, no partial form).
SubpacketLength = _Length(subpacket=True)
_HEADER_LENGTH = _Length(field="pgp.length")
_SUBPACKET_LENGTH = _Length(subpacket=True, field="signature.subpacket")


class _PacketHeader(c.Construct):
    """Tag and body length, from an old- or new-format header; built new-format.

    Parses to a `construct.Container` with ``tag``, ``length`` and ``new_format``; the length is
    checked against `MAX_PGP_PACKET_SIZE` here, before anyone reads the body.
    """

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> c.Container:
        start = stream.tell()
        ctb = read_exact(stream, 1, "pgp")[0]
        if not ctb & 0x80:
            raise PgpPacketError(f"not a packet header: 0x{ctb:02x}", field="pgp", offset=start)
        if ctb & 0x40:
            tag = ctb & 0x3F
            length = _HEADER_LENGTH._parsereport(stream, context, path)
        else:
            tag = (ctb >> 2) & 0x0F
            kind = ctb & 0x03
            if kind == 3:
                raise PgpPacketError("indeterminate packet length is not supported",
                                     field="pgp", offset=start)
            size = (1, 2, 4)[kind]
            raw = stream.read(size)
            if len(raw) != size:
                raise TruncatedError("old-format length cut short", field="pgp", offset=start)
            length = int.from_bytes(raw, "big")
        if length > MAX_PGP_PACKET_SIZE:
            raise LimitExceededError("MAX_PGP_PACKET_SIZE", length, MAX_PGP_PACKET_SIZE,
                                     field=f"pgp.packet[{tag}]", offset=start)
        return c.Container(tag=tag, length=length, new_format=bool(ctb & 0x40))

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        tag = int(obj["tag"])
        if not 0 <= tag <= 0x3F:
            raise EncodeError(f"{path}: packet tag {tag} out of range")
        stream.write(bytes([0xC0 | tag]))
        PgpLength._build(obj["length"], stream, context, path)
        return obj


PacketHeader = _PacketHeader()


class _Packet(c.Construct):
    """Header then body, as a `RawPacket`; the body is read only once known to be present."""

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> RawPacket:
        start = stream.tell()
        header = PacketHeader._parsereport(stream, context, path)
        left = remaining(stream)
        if header.length > left:
            raise TruncatedError(f"packet of tag {header.tag} announces {header.length} bytes, "
                                 f"{left} left", field="pgp", offset=start)
        at = stream.tell()
        return RawPacket(header.tag, stream.read(header.length), start, at)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        tag, body = obj[0], bytes(obj[1])
        PacketHeader._build({"tag": tag, "length": len(body)}, stream, context, path)
        stream.write(body)
        return obj


Packet = _Packet()


class _Packets(c.Construct):
    """Packets back to back up to the end of the buffer (a key, a keyring, one signature).

    The block is capped at `MAX_PGP_KEY_BLOCK` and the count at `MAX_PGP_PACKETS`, both checked
    before the loop reads on; every packet consumes at least two bytes, so the loop ends.
    """

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> list[RawPacket]:
        size = remaining(stream)
        if size > MAX_PGP_KEY_BLOCK:
            raise LimitExceededError("MAX_PGP_KEY_BLOCK", size, MAX_PGP_KEY_BLOCK,
                                     field="pgp", offset=stream.tell())
        out: list[RawPacket] = []
        while remaining(stream):
            if len(out) >= MAX_PGP_PACKETS:
                raise LimitExceededError("MAX_PGP_PACKETS", len(out) + 1, MAX_PGP_PACKETS,
                                         field="pgp", offset=stream.tell())
            out.append(Packet._parsereport(stream, context, path))
        return out

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        for packet in obj:
            Packet._build(packet, stream, context, path)
        return obj


Packets = _Packets()


# --- body fields ----------------------------------------------------------------------------

class _Mpi(c.Construct):
    """Multiprecision integer: u16 bit count, then the big-endian magnitude."""

    def __init__(self, field: str | None = None) -> None:
        super().__init__()
        self.field = field

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> int:
        field = _field(self.field, path)
        start = stream.tell()
        head = stream.read(2)
        if len(head) != 2:
            raise TruncatedError("MPI length missing", field=field, offset=start)
        bits = (head[0] << 8) | head[1]
        if bits > MAX_MPI_BITS:
            raise LimitExceededError("MAX_MPI_BITS", bits, MAX_MPI_BITS, field=field,
                                     offset=start)
        size = (bits + 7) // 8
        data = stream.read(size)
        if len(data) != size:
            raise TruncatedError("MPI cut short", field=field, offset=start)
        return int.from_bytes(data, "big")

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> int:
        value = int(obj)
        bits = value.bit_length()
        if value < 0 or bits > 0xFFFF:
            raise EncodeError(f"{path}: {value} is not an MPI")
        stream.write(struct.pack(">H", bits) + value.to_bytes((bits + 7) // 8, "big"))
        return value


def Mpi(field: str | None = None) -> c.Construct:
    """An RFC 4880 3.2 MPI capped at `MAX_MPI_BITS`; errors name ``field`` (or the path)."""
    return _Mpi(field)


class _FixedBytes(c.Construct):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> bytes:
        return read_exact(stream, self.size, path)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> bytes:
        data = bytes(obj)
        if len(data) != self.size:
            raise EncodeError(f"{path}: needs {self.size} bytes, got {len(data)}")
        stream.write(data)
        return data

    def _sizeof(self, context: Any, path: str) -> int:
        return self.size


def FixedBytes(size: int) -> c.Construct:
    """Exactly ``size`` raw bytes (a short read is a `TruncatedError`)."""
    return _FixedBytes(size)


class _Need(c.Construct):
    """Zero-width: at least ``size`` bytes must be left (a fixed header's truncation message)."""

    def __init__(self, size: int, message: str, field: str) -> None:
        super().__init__()
        self.size, self.message, self.field = size, message, field
        self.flagbuildnone = True

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> None:
        if remaining(stream) < self.size:
            raise TruncatedError(self.message, field=self.field, offset=stream.tell())

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> None:
        return None

    def _sizeof(self, context: Any, path: str) -> int:
        return 0


class _Require(c.Construct):
    """Zero-width: an already-read field of the enclosing struct must take an allowed value.

    Placed after the fields it follows so that a truncated header is reported as truncated
    before its values are judged (the order RFC readers, and our tests, expect).
    """

    def __init__(self, key: str, allowed: tuple[int, ...], message: str, field: str,
                 at: int) -> None:
        super().__init__()
        self.flagbuildnone = True
        self.key, self.allowed, self.message, self.field, self.at = (
            key, allowed, message, field, at)

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> None:
        value = context[self.key]
        if value not in self.allowed:
            raise PgpPacketError(self.message.format(value), field=self.field, offset=self.at)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> None:
        return None

    def _sizeof(self, context: Any, path: str) -> int:
        return 0


class _End(c.Construct):
    """Zero-width: the buffer must be used up (a body has no room for anything after it)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__()
        self.message, self.field = message, field
        self.flagbuildnone = True

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> None:
        if remaining(stream):
            raise PgpPacketError(self.message, field=self.field, offset=stream.tell())

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> None:
        return None

    def _sizeof(self, context: Any, path: str) -> int:
        return 0


class _UserId(c.Construct):
    """A user-ID packet body: the rest of the packet, at most `MAX_USER_ID` bytes."""

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> bytes:
        size = remaining(stream)
        if size > MAX_USER_ID:
            raise LimitExceededError("MAX_USER_ID", size, MAX_USER_ID, field="pgp.user_id",
                                     offset=stream.tell())
        return stream.read(size)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> bytes:
        data = bytes(obj)
        if len(data) > MAX_USER_ID:
            raise EncodeError(f"user ID of {len(data)} bytes exceeds MAX_USER_ID")
        stream.write(data)
        return data


UserIdBody = _UserId()

#: Public-key packet body, v4 RSA (RFC 4880 5.5.2): version, creation time, algorithm, n, e.
PublicKeyBody = c.Struct(
    _Need(6, "public-key packet cut short", "pgp.key"),
    "version" / u8,
    "created" / u32,
    "algorithm" / u8,
    _Require("version", (4,), "key version {}, only v4 is supported", "pgp.key.version", 0),
    _Require("algorithm", RSA_ALGOS, "public-key algorithm {}: only RSA is supported",
             "pgp.key.algorithm", 5),
    "n" / Mpi("pgp.key.n"),
    "e" / Mpi("pgp.key.e"),
    _End("bytes after the RSA key", "pgp.key"),
)


# --- signatures -----------------------------------------------------------------------------

class _SubpacketArea(c.Construct):
    """u16 length + the raw area (kept raw: the signature hashes these exact bytes)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> bytes:
        start = stream.tell()
        head = stream.read(2)
        if len(head) != 2:
            raise TruncatedError(f"{self.name} subpackets cut short", field="signature",
                                 offset=start)
        size = (head[0] << 8) | head[1]
        if size > remaining(stream):
            raise TruncatedError(f"{self.name} subpackets cut short", field="signature",
                                 offset=start)
        return stream.read(size)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> bytes:
        data = bytes(obj)
        if len(data) > 0xFFFF:
            raise EncodeError(f"{self.name} subpacket area of {len(data)} bytes is too long")
        stream.write(struct.pack(">H", len(data)) + data)
        return data


_HEAD_FIELDS = (
    _Need(6, "signature header cut short", "signature"),
    "version" / u8,
    "sig_type" / u8,
    "pubkey_algo" / u8,
    "hash_algo" / u8,
    _Require("version", (4,), "signature version {}, only v4 is supported",
             "signature.version", 0),
    "hashed" / _SubpacketArea("hashed"),
)

#: The part of a v4 signature body that is hashed (RFC 4880 5.2.4): version to hashed area.
SignatureHashedPart = c.Struct(*_HEAD_FIELDS)

#: A v4 signature packet body: the hashed part, the unhashed area, the left 16 bits of the
#: digest, and the RSA signature MPI.
SignatureBody = c.Struct(
    *_HEAD_FIELDS,
    "unhashed" / _SubpacketArea("unhashed"),
    "left16" / FixedBytes(2),
    _Require("pubkey_algo", RSA_ALGOS, "public-key algorithm {}: only RSA is supported",
             "signature.pubkey_algo", 2),
    "value" / Mpi("signature.rsa"),
    _End("bytes after the signature MPI", "signature"),
)


class _Subpacket(c.Construct):
    """One subpacket: length (type octet included), type octet, data."""

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> Subpacket:
        start = stream.tell()
        length = _SUBPACKET_LENGTH._parsereport(stream, context, path)
        if length == 0 or length > remaining(stream):
            raise TruncatedError("subpacket runs past its area", field="signature.subpacket",
                                 offset=start)
        raw = stream.read(length)
        return Subpacket(raw[0] & 0x7F, raw[1:], bool(raw[0] & 0x80))

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        sub = Subpacket(*obj)
        if not 0 <= sub.kind <= 0x7F:
            raise EncodeError(f"{path}: subpacket type {sub.kind} out of range")
        data = bytes(sub.data)
        SubpacketLength._build(len(data) + 1, stream, context, path)
        stream.write(bytes([sub.kind | (0x80 if sub.critical else 0)]) + data)
        return obj


_SUBPACKET = _Subpacket()


class _Subpackets(c.Construct):
    """A whole subpacket area as a list of `Subpacket`, count capped at `MAX_PGP_PACKETS`."""

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> list[Subpacket]:
        out: list[Subpacket] = []
        while remaining(stream):
            if len(out) >= MAX_PGP_PACKETS:
                raise LimitExceededError("MAX_PGP_PACKETS", len(out) + 1, MAX_PGP_PACKETS,
                                         field="signature.subpacket", offset=stream.tell())
            out.append(_SUBPACKET._parsereport(stream, context, path))
        return out

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        for sub in obj:
            _SUBPACKET._build(sub, stream, context, path)
        return obj


Subpackets = _Subpackets()


def parse_whole(schema: c.Construct, data: bytes, base: int = 0) -> Any:
    """Parse ``data`` with ``schema``; errors are `DecodeError`s at ``base`` + their offset.

    The schemas above end with an explicit end check where the format wants one; this only
    makes sure nothing but the `DecodeError` family escapes and offsets point into the caller's
    buffer.
    """
    stream = io.BytesIO(data)
    with nested_errors(stream, base):
        return schema.parse_stream(stream)
