"""Long text certificates: real ones round-trip byte for byte, bad ones fail by name."""

from __future__ import annotations

import base64
import ipaddress
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pqi.identity.certificate import (
    MAX_CERTIFICATE_TEXT,
    MAX_EXTRA_LOCATORS,
    RsCertificate,
    checksum_section,
    crc24,
    encode_section,
)
from pqi.identity.errors import CertificateDecodeError, ChecksumError, PgpPacketError
from pqi.identity.pgp import ProfileKey
from pqi.identity.sslcert import LocationCertificate
from pqi.wire.address import NetAddress
from pqi.wire.errors import DecodeError, LimitExceededError, TruncatedError
from pqi.wire.fields import PgpFingerprint, PgpId, SslId
from tests.identity_fixtures import *  # noqa: F403
from tests.strategies_identity import ipv4_addresses, ssl_ids, text_values

README = {
    "alice": ("e3d224134f8957af7fa9e65647cb7308", "ED101593758F53C0", "e1270d", 7801),
    "bob": ("65c312566c89e99e04516702cc795383", "459BFF4289C58EEB", "ebdc57", 7802),
}


def _text(body: bytes) -> str:
    """A certificate text from sections, with a correct checksum appended."""
    return base64.b64encode(body + checksum_section(0x07, body)).decode()


def _body(cert: RsCertificate) -> bytes:
    return cert.to_bytes()[:-5]


@pytest.mark.parametrize("name", sorted(README))
def test_real_certificate(vectors, name: str) -> None:
    """RetroShare's own certificates decode to the README's values and re-encode identically."""
    text = (vectors / f"{name}.cert.txt").read_text()
    cert = RsCertificate.decode(text)
    ssl_id, pgp_id, crc, port = README[name]
    assert cert.ssl_id == SslId.from_hex(ssl_id)
    assert cert.pgp_id == PgpId.from_hex(pgp_id)
    assert cert.location == f"{name}-loc"
    assert cert.local_addr == NetAddress(ipaddress.IPv4Address("127.0.0.1"), port)
    assert cert.ext_addr == NetAddress(ipaddress.IPv4Address("0.0.0.0"), 0)
    assert cert.dns == "" and cert.hidden_address == "" and cert.extra_locators == ()
    assert cert.version == 6
    assert cert.to_bytes()[-3:].hex() == crc
    assert cert.public_key.to_bytes() == (vectors / f"{name}.pgp_pubkey.gpg").read_bytes()
    assert cert.encode() == text.strip()  # the file adds only a final newline


@pytest.mark.parametrize("name", sorted(README))
def test_real_certificate_key_verifies_location(vectors, name: str) -> None:
    """The key inside a real certificate verifies that location's TLS certificate."""
    cert = RsCertificate.decode((vectors / f"{name}.cert.txt").read_text())
    tls = LocationCertificate.from_der((vectors / f"{name}.ssl_cert.der").read_bytes())
    tls.verify(cert.public_key)
    assert tls.ssl_id == cert.ssl_id


@pytest.mark.parametrize("node", ["alice", "bob", "carol"])
def test_capture_nodes(captures, node: str) -> None:
    """The three captured nodes' certificates carry the ids nodes.json records."""
    info = json.loads((captures / "nodes.json").read_text())[node]
    text = (captures / info["invite_file"]).read_text()
    cert = RsCertificate.decode(text)
    assert cert.ssl_id == SslId.from_hex(info["ssl_id"])
    assert cert.pgp_id == PgpId.from_hex(info["pgp_id"])
    assert cert.public_key.fingerprint == PgpFingerprint.from_hex(info["pgp_fingerprint"])
    assert cert.public_key.name == info["pgp_name"]
    assert cert.location == info["location_name"]
    assert str(cert.local_addr) == info["p2p_address"]
    assert cert.encode() == text.strip()


def test_crc24() -> None:
    """CRC-24 is OpenPGP's: the empty input gives the initial value, known bytes a known CRC."""
    assert crc24(b"") == 0xB704CE
    assert crc24(b"123456789") == 0x21CF02  # the standard CRC-24/OPENPGP check value


def test_wrapped_text(vectors) -> None:
    """The 64-column form RetroShare can also write decodes to the same certificate."""
    cert = RsCertificate.decode((vectors / "alice.cert.txt").read_text())
    wrapped = cert.encode(wrap=True)
    lines = wrapped.splitlines()
    assert all(len(ln) == 64 for ln in lines[:-1]) and 0 < len(lines[-1]) <= 64
    assert wrapped.endswith("\n")
    assert RsCertificate.decode(wrapped) == cert
    assert RsCertificate.decode(" \t" + wrapped.replace("\n", "\r\n")) == cert


def test_bad_checksum(vectors) -> None:
    """A single flipped bit anywhere before the checksum is a ChecksumError."""
    raw = bytearray(base64.b64decode((vectors / "bob.cert.txt").read_text()))
    raw[-10] ^= 0x01  # inside the SSL id
    with pytest.raises(ChecksumError, match="checksum does not match") as info:
        RsCertificate.decode(base64.b64encode(bytes(raw)).decode())
    assert info.value.offset == len(raw) - 5


def test_checksum_placement(profile_key: ProfileKey) -> None:
    """A checksum that is missing, short, or not last is refused."""
    body = encode_section(9, b"\x06") + encode_section(1, profile_key.public.to_bytes())
    with pytest.raises(CertificateDecodeError, match="missing"):
        RsCertificate.decode(base64.b64encode(body).decode())
    with pytest.raises(CertificateDecodeError, match="3 bytes and last"):
        RsCertificate.decode(base64.b64encode(body + checksum_section(7, body) + b"\x06\x00")
                             .decode())
    with pytest.raises(CertificateDecodeError, match="3 bytes and last"):
        RsCertificate.decode(base64.b64encode(body + encode_section(7, b"\0\0")).decode())


def test_unknown_sections_are_skipped(location_cert: LocationCertificate,
                                      profile_key: ProfileKey) -> None:
    """Sections of unknown type are ignored, as RetroShare ignores them."""
    cert = RsCertificate(profile_key.public, location_cert.ssl_id, "home")
    body = _body(cert)
    assert RsCertificate.decode(_text(body + encode_section(0x42, b"future"))) == cert
    assert RsCertificate.decode(_text(encode_section(0xEE, b"") + body)) == cert


@pytest.mark.parametrize("section,match", [
    (encode_section(5, b"\x01" * 15), "SSL id must be 16 bytes"),
    (encode_section(3, b"\x7f\0\0\x01\x1e"), "must be 6 bytes"),
    (encode_section(2, b"\x7f\0\0\x01\x1e\x79\x00"), "must be 6 bytes"),
    (encode_section(6, b"\xff\xfe"), "not UTF-8"),
    (encode_section(9, b"\x06\x06"), "version section must be 1 byte"),
])
def test_malformed_sections(profile_key: ProfileKey, section: bytes, match: str) -> None:
    """Each known section with a bad size or content is refused by name."""
    body = encode_section(9, b"\x06") + encode_section(1, profile_key.public.to_bytes())
    with pytest.raises(CertificateDecodeError, match=match):
        RsCertificate.decode(_text(body + section))


def test_version_and_key_required(profile_key: ProfileKey) -> None:
    """A certificate needs version 6 and a PGP key; a broken key is a PGP decode error."""
    key = encode_section(1, profile_key.public.to_bytes())
    with pytest.raises(CertificateDecodeError, match="version 5"):
        RsCertificate.decode(_text(encode_section(9, b"\x05") + key))
    with pytest.raises(CertificateDecodeError, match="version None"):
        RsCertificate.decode(_text(key))
    with pytest.raises(CertificateDecodeError, match="no PGP key"):
        RsCertificate.decode(_text(encode_section(9, b"\x06")))
    with pytest.raises(PgpPacketError) as info:
        RsCertificate.decode(_text(encode_section(9, b"\x06") + encode_section(1, b"\xc6\xe0")))
    assert info.value.offset == 3 + 2 + 1  # inside the certificate, after the section header


def test_text_errors() -> None:
    """Non-base64 text and oversized text fail before any section is read."""
    with pytest.raises(CertificateDecodeError, match="not base64"):
        RsCertificate.decode("CQEG*AcOW")
    with pytest.raises(CertificateDecodeError, match="not base64"):
        RsCertificate.decode("CQEGé")
    with pytest.raises(LimitExceededError) as info:
        RsCertificate.decode("A" * (MAX_CERTIFICATE_TEXT + 1))
    assert info.value.limit == "MAX_CERTIFICATE_TEXT"


def test_truncated_section() -> None:
    """A section announcing more than what is left is a TruncatedError at its header."""
    with pytest.raises(TruncatedError) as info:
        RsCertificate.decode(base64.b64encode(b"\x09\x01\x06\x01\xc1\x00abc").decode())
    assert info.value.offset == 3


def test_every_truncation_is_a_decode_error(vectors) -> None:
    """Every prefix of a real certificate's bytes fails as a DecodeError."""
    raw = base64.b64decode((vectors / "alice.cert.txt").read_text())
    for n in range(0, len(raw)):
        with pytest.raises(DecodeError):
            RsCertificate.decode(base64.b64encode(raw[:n]).decode())


def test_extra_locator_limit(profile_key: ProfileKey) -> None:
    """At most MAX_EXTRA_LOCATORS locator sections are read."""
    body = (encode_section(9, b"\x06") + encode_section(1, profile_key.public.to_bytes())
            + encode_section(5, bytes(16)))
    ok = body + encode_section(10, b"ipv4://1.2.3.4:5") * MAX_EXTRA_LOCATORS
    assert len(RsCertificate.decode(_text(ok)).extra_locators) == MAX_EXTRA_LOCATORS
    with pytest.raises(LimitExceededError):
        RsCertificate.decode(_text(ok + encode_section(10, b"ipv4://1.2.3.4:5")))


def test_profile_only_and_hidden(profile_key: ProfileKey, location_cert: LocationCertificate
                                 ) -> None:
    """A profile-only certificate has no location part; a hidden node carries no IPs."""
    only = RsCertificate(profile_key.public)
    raw = only.to_bytes()
    assert raw[:3] == b"\x09\x01\x06" and raw[-5:-3] == b"\x07\x03"
    assert RsCertificate.decode(only.encode()) == only
    hidden = RsCertificate(profile_key.public, location_cert.ssl_id, "tor",
                           hidden_address="abc.onion:7812")
    assert b"\x08\x0eabc.onion:7812" in hidden.to_bytes()
    assert RsCertificate.decode(hidden.encode()) == hidden


def test_section_order(profile_key: ProfileKey, location_cert: LocationCertificate) -> None:
    """Sections come in RetroShare's order: version, key, ext, loc, dns, name, id, locators."""
    cert = RsCertificate(profile_key.public, location_cert.ssl_id, "n",
                         NetAddress(ipaddress.IPv4Address("192.0.2.1"), 1),
                         NetAddress(ipaddress.IPv4Address("1.2.3.4"), 0x1e79), "h.example",
                         extra_locators=("ipv4://1.2.3.4:1",))
    key = profile_key.public.to_bytes()
    expected = (b"\x09\x01\x06" + encode_section(1, key)
                + b"\x02\x06\x01\x02\x03\x04\x1e\x79" + b"\x03\x06\xc0\x00\x02\x01\x00\x01"
                + b"\x04\x09h.example" + b"\x06\x01n" + b"\x05\x10" + bytes(location_cert.ssl_id)
                + b"\x0a\x10ipv4://1.2.3.4:1")
    assert cert.to_bytes()[:-5] == expected


@pytest.mark.slow
@given(ssl_ids(), text_values(), st.none() | ipv4_addresses(), st.none() | ipv4_addresses(),
       text_values(), st.lists(text_values(), max_size=3))
def test_round_trip(profile_key: ProfileKey, ssl_id: SslId, location: str,
                    local: NetAddress | None, ext: NetAddress | None, dns: str,
                    locators: list[str]) -> None:
    """Any certificate we can express encodes and decodes back to itself."""
    cert = RsCertificate(profile_key.public, ssl_id, location, local, ext, dns,
                         extra_locators=tuple(locators))
    assert RsCertificate.decode(cert.encode()) == cert
    assert RsCertificate.decode(cert.encode(wrap=True)) == cert


def test_sections_ignored_like_retroshare(profile_key: ProfileKey,
                                          location_cert: LocationCertificate) -> None:
    """Location sections without an SSL id, and IPs beside a hidden address, are dropped."""
    head = encode_section(9, b"\x06") + encode_section(1, profile_key.public.to_bytes())
    assert RsCertificate.decode(_text(head + encode_section(6, b"orphan"))) == RsCertificate(
        profile_key.public)
    hidden = (head + encode_section(8, b"x.onion:1") + encode_section(3, b"\x7f\0\0\x01\0\x01")
              + encode_section(5, bytes(location_cert.ssl_id)))
    cert = RsCertificate.decode(_text(hidden))
    assert cert.hidden_address == "x.onion:1" and cert.local_addr is None
    assert RsCertificate.decode(cert.encode()) == cert
