# -*- test-case-name: tests.test_certificate -*-
"""RetroShare's long text certificate: what users paste to become friends.

The text is base64 of a list of sections ``[tag u8][OpenPGP new-format length][data]``: the
format version, the profile's public key, the location's addresses, name and SSL id, optional
extra locator URLs, and last a CRC-24 (OpenPGP's) of everything before it, stored
little-endian.  RetroShare 0.6.7 writes the base64 on one line by default; it can also slice it
into 64-character lines, and it ignores spaces, tabs and newlines when reading.

Decoding follows RetroShare's reader: unknown sections are skipped, a section announcing more
bytes than remain, a misplaced or wrong checksum, a malformed id or address, and a version
other than 6 are errors.  Every error is a `pqi.errors.DecodeError`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import struct
from collections.abc import Iterator
from typing import Final

from .errors import DecodeError, EncodeError, LimitExceededError, TruncatedError
from .fields import PgpId, SslId
from .identity_errors import CertificateDecodeError, ChecksumError
from .pgp import PublicKey, decode_length, encode_length
from .tlvvalues import NetAddress

__all__ = [
    "RsCertificate",
    "crc24",
    "radix_decode",
    "split_sections",
    "encode_section",
    "checksum_section",
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


def crc24(data: bytes) -> int:
    """OpenPGP's CRC-24 (RFC 4880 6.1), which RetroShare reuses for certificates."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


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


def encode_section(tag: int, data: bytes) -> bytes:
    return bytes([tag]) + encode_length(len(data)) + data


def checksum_section(tag: int, body: bytes) -> bytes:
    """The closing section: CRC-24 of ``body``, little-endian (RetroShare's byte order)."""
    return encode_section(tag, crc24(body).to_bytes(3, "little"))


def split_sections(raw: bytes, checksum_tag: int, what: str
                   ) -> Iterator[tuple[int, bytes, int]]:
    """Yield (tag, data, offset) for each section before a valid closing checksum.

    The checksum must be the last section, 3 bytes, and match; its absence is an error too.
    """
    pos = 0
    while pos < len(raw):
        start = pos
        tag = raw[pos]
        size, pos = decode_length(raw, pos + 1, f"{what}.section[{tag}]")
        if pos + size > len(raw):
            raise TruncatedError(f"section 0x{tag:02x} announces {size} bytes, "
                                 f"{len(raw) - pos} left", field=what, offset=start)
        data = raw[pos:pos + size]
        pos += size
        if tag == checksum_tag:
            if size != 3 or pos != len(raw):
                raise CertificateDecodeError("checksum section must be 3 bytes and last",
                                             field=what, offset=start)
            if int.from_bytes(data, "little") != crc24(raw[:start]):
                raise ChecksumError("checksum does not match: the text was altered or cut",
                                    field=what, offset=start)
            return
        yield tag, data, start
    raise CertificateDecodeError("checksum section missing", field=what, offset=len(raw))


def _text(data: bytes, field: str, offset: int) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CertificateDecodeError(f"{field} is not UTF-8", field=field, offset=offset) from e


def _ipv4_port(data: bytes, field: str, offset: int) -> NetAddress:
    if len(data) != 6:
        raise CertificateDecodeError(f"{field} must be 6 bytes, got {len(data)}", field=field,
                                     offset=offset)
    return NetAddress(ipaddress.IPv4Address(data[:4]), struct.unpack(">H", data[4:])[0])


def _pack_ipv4(addr: NetAddress) -> bytes:
    if addr.host.version != 4:
        raise EncodeError("long certificates carry IPv4 addresses only")
    return addr.host.packed + struct.pack(">H", addr.port)


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
        for tag, data, offset in split_sections(raw, PTAG_CHECKSUM, "certificate"):
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
                        e.offset += offset + 1 + len(encode_length(len(data)))
                    raise
            elif tag == PTAG_NAME:
                fields["location"] = _text(data, "certificate.name", offset)
            elif tag == PTAG_SSL_ID:
                if len(data) != SslId.LENGTH:
                    raise CertificateDecodeError(f"SSL id must be 16 bytes, got {len(data)}",
                                                 field="certificate.ssl_id", offset=offset)
                fields["ssl_id"] = SslId(data)
            elif tag == PTAG_DNS:
                fields["dns"] = _text(data, "certificate.dns", offset)
            elif tag == PTAG_HIDDEN_NODE:
                fields["hidden_address"] = _text(data, "certificate.hidden", offset)
            elif tag == PTAG_LOC_IP_PORT:
                fields["local_addr"] = _ipv4_port(data, "certificate.local_addr", offset)
            elif tag == PTAG_EXT_IP_PORT:
                fields["ext_addr"] = _ipv4_port(data, "certificate.ext_addr", offset)
            elif tag == PTAG_EXTRA_LOCATOR:
                if len(locators) >= MAX_EXTRA_LOCATORS:
                    raise LimitExceededError("MAX_EXTRA_LOCATORS", len(locators) + 1,
                                             MAX_EXTRA_LOCATORS, field="certificate.locator",
                                             offset=offset)
                locators.append(_text(data, "certificate.locator", offset))
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
        out = encode_section(PTAG_VERSION, bytes([self.version]))
        out += encode_section(PTAG_PGP, self.public_key.to_bytes())
        if self.ssl_id is not None:
            if self.hidden_address:
                out += encode_section(PTAG_HIDDEN_NODE, self.hidden_address.encode("utf-8"))
            else:
                if self.ext_addr is not None:
                    out += encode_section(PTAG_EXT_IP_PORT, _pack_ipv4(self.ext_addr))
                if self.local_addr is not None:
                    out += encode_section(PTAG_LOC_IP_PORT, _pack_ipv4(self.local_addr))
                if self.dns:
                    out += encode_section(PTAG_DNS, self.dns.encode("utf-8"))
            out += encode_section(PTAG_NAME, self.location.encode("utf-8"))
            out += encode_section(PTAG_SSL_ID, bytes(self.ssl_id))
            for url in self.extra_locators:
                out += encode_section(PTAG_EXTRA_LOCATOR, url.encode("utf-8"))
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
