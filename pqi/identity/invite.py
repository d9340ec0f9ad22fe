# -*- test-case-name: tests.test_invite -*-
"""RetroShare's short invite: a location's id, profile fingerprint, name and where to reach it.

Same framing as the long certificate (``[type u8][new-format length][data]`` in base64, CRC-24
little-endian last) but without the public key: the key arrives later through discovery, so a
friend added this way is "SSL-only" until then.  Locators keep their order, so an invite
re-encodes byte for byte.

The LOC4 and EXT4 locators copy a RetroShare quirk: the IPv4 address is written in reversed
octet order (127.0.0.1 is ``01 00 00 7f``) while the port is big-endian.  The invite may also be
wrapped in a URL as its ``rsInvite`` query parameter.
"""

from __future__ import annotations

import base64
import dataclasses
import urllib.parse
from typing import Final, Union

import construct as c

from pqi.identity.certificate import (
    ReversedIpv4Port,
    Utf8Rest,
    checksum_section,
    encode_section,
    parse_section_body,
    radix_decode,
    sections,
)
from pqi.identity.errors import CertificateDecodeError
from pqi.wire.address import NetAddress
from pqi.wire.errors import EncodeError, LimitExceededError
from pqi.wire.fields import PgpFingerprint, PgpId, SslId, u16, u32

__all__ = [
    "ShortInvite",
    "Locator",
    "Loc4Locator",
    "Ext4Locator",
    "DnsLocator",
    "HiddenLocator",
    "UrlLocator",
    "DnsLocatorBody",
    "HiddenLocatorBody",
    "DEFAULT_INVITE_BASE",
    "MAX_INVITE_LOCATORS",
]

#: Where RetroShare's invite links point by default.
DEFAULT_INVITE_BASE: Final = "https://me.retroshare.cc"
#: Most locators we keep from one invite.
MAX_INVITE_LOCATORS: Final = 64

F_SSL_ID: Final = 0x00
F_PEER_NAME: Final = 0x01
F_LOCATOR: Final = 0x02
F_PGP_FINGERPRINT: Final = 0x03
F_CHECKSUM: Final = 0x04
F_HIDDEN_LOCATOR: Final = 0x90
F_DNS_LOCATOR: Final = 0x91
F_EXT4_LOCATOR: Final = 0x92
F_LOC4_LOCATOR: Final = 0x93


@dataclasses.dataclass(frozen=True)
class Loc4Locator:
    """The location's LAN IPv4 address."""

    address: NetAddress


@dataclasses.dataclass(frozen=True)
class Ext4Locator:
    """The location's external (Internet) IPv4 address."""

    address: NetAddress


@dataclasses.dataclass(frozen=True)
class DnsLocator:
    """A dynamic-DNS name and the port to dial on it."""

    host: str
    port: int


@dataclasses.dataclass(frozen=True)
class HiddenLocator:
    """A Tor/I2P address; ``kind`` is RetroShare's hidden type number."""

    kind: int
    address: str
    port: int


@dataclasses.dataclass(frozen=True)
class UrlLocator:
    """A locator URL such as ``ipv4://1.2.3.4:7812`` or ``ipv6://[::1]:7812``."""

    url: str


Locator = Union[Loc4Locator, Ext4Locator, DnsLocator, HiddenLocator, UrlLocator]


#: DNS_LOCATOR data: the port to dial, then the host name filling the rest.
DnsLocatorBody = c.Struct("port" / u16, "host" / Utf8Rest("invite.dns"))
#: HIDDEN_LOCATOR data: RetroShare's hidden type, the port, then the address.
HiddenLocatorBody = c.Struct("kind" / u32, "port" / u16, "address" / Utf8Rest("invite.hidden"))


def _pack_quirk_ipv4(addr: NetAddress) -> bytes:
    if addr.host.version != 4:
        raise EncodeError("LOC4/EXT4 locators carry IPv4 addresses only")
    _check_port(addr.port)
    return ReversedIpv4Port.build(addr)


def _check_port(port: int) -> None:
    if not 0 <= port <= 0xFFFF:
        raise EncodeError(f"port {port} out of range")


def _encode_locator(loc: Locator) -> bytes:
    if isinstance(loc, Loc4Locator):
        return encode_section(F_LOC4_LOCATOR, _pack_quirk_ipv4(loc.address))
    if isinstance(loc, Ext4Locator):
        return encode_section(F_EXT4_LOCATOR, _pack_quirk_ipv4(loc.address))
    if isinstance(loc, DnsLocator):
        _check_port(loc.port)
        return encode_section(F_DNS_LOCATOR,
                              DnsLocatorBody.build({"port": loc.port, "host": loc.host}))
    if isinstance(loc, HiddenLocator):
        if not 0 <= loc.kind <= 0xFFFFFFFF:
            raise EncodeError(f"hidden type {loc.kind} out of range")
        _check_port(loc.port)
        return encode_section(F_HIDDEN_LOCATOR, HiddenLocatorBody.build(
            {"kind": loc.kind, "port": loc.port, "address": loc.address}))
    return encode_section(F_LOCATOR, loc.url.encode("utf-8"))


def _invite_text(text: str) -> str:
    """The radix part of ``text``: itself, or the ``rsInvite`` parameter of a URL."""
    # Split by hand: urllib's URL parser raises on malformed hosts, which are not our business.
    query = text.strip().partition("?")[2].partition("#")[0] if "://" in text else ""
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == "rsInvite":
            # unquote, not unquote_plus: a '+' left unescaped is base64, not a space.
            return urllib.parse.unquote(value)
    if "://" in text:
        raise CertificateDecodeError("URL has no rsInvite parameter", field="invite", offset=0)
    return text


@dataclasses.dataclass(frozen=True)
class ShortInvite:
    """A decoded short invite.  ``name`` is the profile (PGP) name, not the location name."""

    ssl_id: SslId
    pgp_fingerprint: PgpFingerprint | None = None
    name: str = ""
    locators: tuple[Locator, ...] = ()

    @property
    def pgp_id(self) -> PgpId | None:
        return None if self.pgp_fingerprint is None else PgpId(self.pgp_fingerprint[12:])

    @classmethod
    def decode(cls, text: str) -> ShortInvite:
        """Read the radix text or an ``...?rsInvite=`` URL."""
        raw = radix_decode(_invite_text(text), "invite")
        ssl_id = fingerprint = None
        name = ""
        locators: list[Locator] = []
        for section in sections(raw, F_CHECKSUM, "invite"):
            tag, data, offset = section.tag, section.data, section.offset
            if tag in (F_LOC4_LOCATOR, F_EXT4_LOCATOR, F_DNS_LOCATOR, F_HIDDEN_LOCATOR,
                       F_LOCATOR) and len(locators) >= MAX_INVITE_LOCATORS:
                raise LimitExceededError("MAX_INVITE_LOCATORS", len(locators) + 1,
                                         MAX_INVITE_LOCATORS, field="invite.locator",
                                         offset=offset)
            if tag == F_SSL_ID:
                if len(data) != SslId.LENGTH:
                    raise CertificateDecodeError(f"SSL id must be 16 bytes, got {len(data)}",
                                                 field="invite.ssl_id", offset=offset)
                ssl_id = SslId(data)
            elif tag == F_PGP_FINGERPRINT:
                if len(data) != PgpFingerprint.LENGTH:
                    raise CertificateDecodeError(
                        f"PGP fingerprint must be 20 bytes, got {len(data)}",
                        field="invite.pgp_fingerprint", offset=offset)
                fingerprint = PgpFingerprint(data)
            elif tag == F_PEER_NAME:
                name = parse_section_body(Utf8Rest("invite.name"), section, "invite.name")
            elif tag == F_LOC4_LOCATOR:
                locators.append(Loc4Locator(parse_section_body(
                    ReversedIpv4Port, section, "invite.loc4", exact=6)))
            elif tag == F_EXT4_LOCATOR:
                locators.append(Ext4Locator(parse_section_body(
                    ReversedIpv4Port, section, "invite.ext4", exact=6)))
            elif tag == F_DNS_LOCATOR:
                dns = parse_section_body(DnsLocatorBody, section, "invite.dns", minimum=2)
                locators.append(DnsLocator(dns.host, dns.port))
            elif tag == F_HIDDEN_LOCATOR:
                hidden = parse_section_body(HiddenLocatorBody, section, "invite.hidden",
                                            minimum=6)
                locators.append(HiddenLocator(hidden.kind, hidden.address, hidden.port))
            elif tag == F_LOCATOR:
                locators.append(UrlLocator(parse_section_body(
                    Utf8Rest("invite.locator"), section, "invite.locator")))
            # Any other type: skipped, as RetroShare does.
        if ssl_id is None:
            raise CertificateDecodeError("invite has no SSL id", field="invite.ssl_id")
        return cls(ssl_id, fingerprint, name, tuple(locators))

    def to_bytes(self) -> bytes:
        """The binary fields in RetroShare's order: id, fingerprint, name, locators, checksum."""
        out = encode_section(F_SSL_ID, bytes(self.ssl_id))
        if self.pgp_fingerprint is not None:
            out += encode_section(F_PGP_FINGERPRINT, bytes(self.pgp_fingerprint))
        out += encode_section(F_PEER_NAME, self.name.encode("utf-8"))
        out += b"".join(_encode_locator(loc) for loc in self.locators)
        return out + checksum_section(F_CHECKSUM, out)

    def encode(self) -> str:
        return base64.b64encode(self.to_bytes()).decode("ascii")

    def to_url(self, base: str = DEFAULT_INVITE_BASE) -> str:
        """The link form RetroShare shows by default: ``<base>?rsInvite=<escaped radix>``."""
        return f"{base}?rsInvite={urllib.parse.quote(self.encode(), safe='')}"
