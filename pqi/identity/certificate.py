# -*- test-case-name: tests.test_certificate -*-
"""RetroShare's long text certificate: what users paste to become friends.

The text is base64 of a list of sections ``[tag u8][OpenPGP new-format length][data]``: the
format version, the profile's public key, the location's addresses, name and SSL id, optional
extra locator URLs, and last a CRC-24 (OpenPGP's) of everything before it, stored
little-endian.  RetroShare 0.6.7 writes the base64 on one line by default; it can also slice it
into 64-character lines, and it ignores spaces, tabs and newlines when reading.

The section framing (`SectionFraming`) and the section bodies (`Ipv4Port`, `ReversedIpv4Port`,
`Utf8Rest`) are bounded `construct` schemas, shared with the short invite.  Decoding follows
RetroShare's reader: unknown sections are skipped, a section announcing more
bytes than remain, a misplaced or wrong checksum, a malformed id or address, and a version
other than 6 are errors.  Every error is a `pqi.wire.errors.DecodeError`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import ipaddress
from collections.abc import Iterator
from typing import Any, Final, NamedTuple

import construct as c

from pqi.identity.errors import CertificateDecodeError, ChecksumError
from pqi.identity.pgp import PublicKey
from pqi.identity.pgp_packets import FixedBytes, PgpLength, parse_whole
from pqi.wire.address import NetAddress
from pqi.wire.errors import DecodeError, EncodeError, LimitExceededError, TruncatedError
from pqi.wire.fields import PgpId, SslId, read_exact, remaining, u16

__all__ = [
    "RsCertificate",
    "crc24",
    "radix_decode",
    "split_sections",
    "encode_section",
    "checksum_section",
    "Section",
    "SectionFraming",
    "Ipv4Port",
    "ReversedIpv4Port",
    "Utf8Rest",
    "parse_section_body",
    "sections",
    "CERTIFICATE_VERSION",
    "MAX_CERTIFICATE_TEXT",
    "MAX_EXTRA_LOCATORS",
]

#: The only certificate format version RetroShare accepts (``CERTIFICATE_VERSION_06``).
CERTIFICATE_VERSION: Final = 0x06
#: Longest certificate or invite text we read (a 4096-bit key makes ~1.6 KiB of text).
MAX_CERTIFICATE_TEXT: Final = 65536
#: Most extra locator URLs in one certificate.
MAX_EXTRA_LOCATORS: Final = 64

PTAG_PGP: Final = 0x01
PTAG_EXT_IP_PORT: Final = 0x02
PTAG_LOC_IP_PORT: Final = 0x03
PTAG_DNS: Final = 0x04
PTAG_SSL_ID: Final = 0x05
PTAG_NAME: Final = 0x06
PTAG_CHECKSUM: Final = 0x07
PTAG_HIDDEN_NODE: Final = 0x08
PTAG_VERSION: Final = 0x09
PTAG_EXTRA_LOCATOR: Final = 0x0A


def _crc24_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
        table.append(crc & 0xFFFFFF)
    return tuple(table)


_CRC24_TABLE: Final = _crc24_table()


def crc24(data: bytes) -> int:
    """OpenPGP's CRC-24 (RFC 4880 6.1), which RetroShare reuses for certificates."""
    crc = 0xB704CE
    table = _CRC24_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFF) ^ table[(crc >> 16) ^ byte]
    return crc


def radix_decode(text: str, what: str) -> bytes:
    """Base64 text (whitespace ignored, as RetroShare does) to bytes, bounded."""
    if len(text) > MAX_CERTIFICATE_TEXT:
        raise LimitExceededError("MAX_CERTIFICATE_TEXT", len(text), MAX_CERTIFICATE_TEXT,
                                 field=what, offset=0)
    compact = "".join(text.split())
    try:
        return base64.b64decode(compact.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise CertificateDecodeError(f"not base64: {e}", field=what, offset=0) from e


class Section(NamedTuple):
    """One ``[tag][length][data]`` section and where it (header, then data) starts."""

    tag: int
    data: bytes
    offset: int = 0
    data_offset: int = 0


class _SectionFraming(c.Construct):
    """``[tag u8][OpenPGP new-format length][data]``: the unit of certificates and invites.

    The announced length is checked against the bytes left before the data is read.  Parses to
    a `Section`; builds from any ``(tag, data)`` pair, with the shortest length form.
    """

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> Section:
        start = stream.tell()
        tag = read_exact(stream, 1, self.what)[0]
        size = PgpLength._parsereport(stream, context, f"{self.what}.section[{tag}]")
        left = remaining(stream)
        if size > left:
            raise TruncatedError(f"section 0x{tag:02x} announces {size} bytes, {left} left",
                                 field=self.what, offset=start)
        at = stream.tell()
        return Section(tag, stream.read(size), start, at)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        tag, data = obj[0], bytes(obj[1])
        if not 0 <= tag <= 0xFF:
            raise EncodeError(f"section tag {tag} out of range")
        stream.write(bytes([tag]))
        PgpLength._build(len(data), stream, context, path)
        stream.write(data)
        return obj


def SectionFraming(what: str) -> c.Construct:
    """The section construct; ``what`` ("certificate", "invite") prefixes error fields."""
    return _SectionFraming(what)


_SECTION = SectionFraming("section")


def encode_section(tag: int, data: bytes) -> bytes:
    return _SECTION.build((tag, data))


def checksum_section(tag: int, body: bytes) -> bytes:
    """The closing section: CRC-24 of ``body``, little-endian (RetroShare's byte order)."""
    return encode_section(tag, crc24(body).to_bytes(3, "little"))


def sections(raw: bytes, checksum_tag: int, what: str) -> Iterator[Section]:
    """Yield each `Section` before a valid closing checksum, one at a time.

    Lazily, so that a section whose content is wrong is reported before anything after it.
    The checksum must be the last section, 3 bytes, and match; its absence is an error too.
    """
    framing = SectionFraming(what)
    stream = io.BytesIO(raw)
    while remaining(stream):
        section = framing.parse_stream(stream)
        if section.tag == checksum_tag:
            if len(section.data) != 3 or remaining(stream):
                raise CertificateDecodeError("checksum section must be 3 bytes and last",
                                             field=what, offset=section.offset)
            if int.from_bytes(section.data, "little") != crc24(raw[:section.offset]):
                raise ChecksumError("checksum does not match: the text was altered or cut",
                                    field=what, offset=section.offset)
            return
        yield section
    raise CertificateDecodeError("checksum section missing", field=what, offset=len(raw))


def split_sections(raw: bytes, checksum_tag: int, what: str
                   ) -> Iterator[tuple[int, bytes, int]]:
    """Yield (tag, data, offset of the section) for each section, as `sections` does."""
    for section in sections(raw, checksum_tag, what):
        yield section.tag, section.data, section.offset


class _Utf8Rest(c.Construct):
    """The rest of a section as UTF-8 text (a section's length bounds it)."""

    def __init__(self, field: str) -> None:
        super().__init__()
        self.field = field

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> str:
        start = stream.tell()
        try:
            return stream.read(remaining(stream)).decode("utf-8")
        except UnicodeDecodeError as e:
            raise CertificateDecodeError(f"{self.field} is not UTF-8", field=self.field,
                                         offset=start) from e

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> str:
        stream.write(str(obj).encode("utf-8"))
        return str(obj)


def Utf8Rest(field: str) -> c.Construct:
    """Text filling the rest of a section; errors name ``field``."""
    return _Utf8Rest(field)


class _Ipv4PortAdapter(c.Adapter):
    """4 address octets then a big-endian port, decoded to a `NetAddress`.

    ``reverse`` copies the short invite's little-endian-host quirk: octets in reverse order.
    """

    def __init__(self, reverse: bool) -> None:
        super().__init__(c.Struct("host" / FixedBytes(4), "port" / u16))
        self.reverse = reverse

    def _decode(self, obj: Any, context: Any, path: str) -> NetAddress:
        host = obj.host[::-1] if self.reverse else obj.host
        return NetAddress(ipaddress.IPv4Address(host), obj.port)

    def _encode(self, obj: Any, context: Any, path: str) -> dict[str, Any]:
        if obj.host.version != 4:
            raise EncodeError(f"{path}: only an IPv4 address fits here")
        if not 0 <= obj.port <= 0xFFFF:
            raise EncodeError(f"port {obj.port} out of range")
        packed = obj.host.packed
        return {"host": packed[::-1] if self.reverse else packed, "port": obj.port}


#: IPv4 address and port as the long certificate writes them (both big-endian).
Ipv4Port = _Ipv4PortAdapter(reverse=False)
#: IPv4 address in reversed octet order, port big-endian (short invite LOC4/EXT4 locators).
ReversedIpv4Port = _Ipv4PortAdapter(reverse=True)


def parse_section_body(schema: c.Construct, section: Section, field: str, *,
                       exact: int | None = None, minimum: int | None = None) -> Any:
    """Parse a section's data with ``schema`` after checking its size.

    A wrong size is reported at the section's header (it announced the wrong length); errors
    inside the data point into the whole decoded buffer.
    """
    size = len(section.data)
    if exact is not None and size != exact:
        raise CertificateDecodeError(f"{field} must be {exact} bytes, got {size}", field=field,
                                     offset=section.offset)
    if minimum is not None and size < minimum:
        raise CertificateDecodeError(f"{field} needs at least {minimum} bytes, got {size}",
                                     field=field, offset=section.offset)
    return parse_whole(schema, section.data, section.data_offset)


def _text(section: Section, field: str) -> str:
    return parse_section_body(Utf8Rest(field), section, field)


def _pack_ipv4(addr: NetAddress) -> bytes:
    if addr.host.version != 4:
        raise EncodeError("long certificates carry IPv4 addresses only")
    return Ipv4Port.build(addr)


@dataclasses.dataclass(frozen=True)
class RsCertificate:
    """A decoded long certificate.

    ``ssl_id`` is None for a profile-only certificate (no location part).  An address is None
    when its section is absent; RetroShare writes 0.0.0.0:0 for an unknown external address,
    and that is kept as written.  ``hidden_address`` non-empty marks a hidden (Tor/I2P) node,
    which carries it instead of IP addresses and DNS.
    """

    public_key: PublicKey
    ssl_id: SslId | None = None
    location: str = ""
    local_addr: NetAddress | None = None
    ext_addr: NetAddress | None = None
    dns: str = ""
    hidden_address: str = ""
    extra_locators: tuple[str, ...] = ()
    version: int = CERTIFICATE_VERSION

    @classmethod
    def decode(cls, text: str) -> RsCertificate:
        raw = radix_decode(text, "certificate")
        fields: dict[str, object] = {}
        locators: list[str] = []
        version = None
        key = None
        for section in sections(raw, PTAG_CHECKSUM, "certificate"):
            tag, data, offset = section.tag, section.data, section.offset
            if tag == PTAG_VERSION:
                if len(data) != 1:
                    raise CertificateDecodeError("version section must be 1 byte",
                                                 field="certificate.version", offset=offset)
                version = data[0]
            elif tag == PTAG_PGP:
                try:
                    key = PublicKey.from_bytes(data)
                except DecodeError as e:
                    if e.offset is not None:  # make it an offset into the whole certificate
                        e.offset += section.data_offset
                    raise
            elif tag == PTAG_NAME:
                fields["location"] = _text(section, "certificate.name")
            elif tag == PTAG_SSL_ID:
                if len(data) != SslId.LENGTH:
                    raise CertificateDecodeError(f"SSL id must be 16 bytes, got {len(data)}",
                                                 field="certificate.ssl_id", offset=offset)
                fields["ssl_id"] = SslId(data)
            elif tag == PTAG_DNS:
                fields["dns"] = _text(section, "certificate.dns")
            elif tag == PTAG_HIDDEN_NODE:
                fields["hidden_address"] = _text(section, "certificate.hidden")
            elif tag == PTAG_LOC_IP_PORT:
                fields["local_addr"] = parse_section_body(
                    Ipv4Port, section, "certificate.local_addr", exact=6)
            elif tag == PTAG_EXT_IP_PORT:
                fields["ext_addr"] = parse_section_body(
                    Ipv4Port, section, "certificate.ext_addr", exact=6)
            elif tag == PTAG_EXTRA_LOCATOR:
                if len(locators) >= MAX_EXTRA_LOCATORS:
                    raise LimitExceededError("MAX_EXTRA_LOCATORS", len(locators) + 1,
                                             MAX_EXTRA_LOCATORS, field="certificate.locator",
                                             offset=offset)
                locators.append(_text(section, "certificate.locator"))
            # Any other tag: skipped, as RetroShare does (newer writers may add sections).
        if version != CERTIFICATE_VERSION:
            raise CertificateDecodeError(f"certificate version {version}, expected 6",
                                         field="certificate.version")
        if key is None:
            raise CertificateDecodeError("certificate has no PGP key section",
                                         field="certificate.pgp")
        if "ssl_id" not in fields:
            # Profile-only: RetroShare ignores location sections without an SSL id.
            return cls(public_key=key, version=version)
        if fields.get("hidden_address"):
            # A hidden node is reached only through its hidden address.
            for name in ("local_addr", "ext_addr", "dns"):
                fields.pop(name, None)
        return cls(public_key=key, extra_locators=tuple(locators), version=version,
                   **fields)  # type: ignore[arg-type]

    def to_bytes(self) -> bytes:
        """The binary sections, in RetroShare's order, checksum last."""
        parts: list[tuple[int, bytes]] = [(PTAG_VERSION, bytes([self.version])),
                                          (PTAG_PGP, self.public_key.to_bytes())]
        if self.ssl_id is not None:
            if self.hidden_address:
                parts.append((PTAG_HIDDEN_NODE, self.hidden_address.encode("utf-8")))
            else:
                if self.ext_addr is not None:
                    parts.append((PTAG_EXT_IP_PORT, _pack_ipv4(self.ext_addr)))
                if self.local_addr is not None:
                    parts.append((PTAG_LOC_IP_PORT, _pack_ipv4(self.local_addr)))
                if self.dns:
                    parts.append((PTAG_DNS, self.dns.encode("utf-8")))
            parts.append((PTAG_NAME, self.location.encode("utf-8")))
            parts.append((PTAG_SSL_ID, bytes(self.ssl_id)))
            parts.extend((PTAG_EXTRA_LOCATOR, url.encode("utf-8")) for url in self.extra_locators)
        out = b"".join(encode_section(tag, data) for tag, data in parts)
        return out + checksum_section(PTAG_CHECKSUM, out)

    def encode(self, wrap: bool = False) -> str:
        """Base64 text: one line as RetroShare writes by default, or 64-character lines."""
        text = base64.b64encode(self.to_bytes()).decode("ascii")
        if not wrap:
            return text
        return "".join(text[i:i + 64] + "\n" for i in range(0, len(text), 64))

    @property
    def pgp_id(self) -> PgpId:
        return self.public_key.pgp_id
