"""Short invites: real ones round-trip, the reversed-IPv4 quirk, URL form, hostile input."""

from __future__ import annotations

import base64
import ipaddress
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pqi.identity.certificate import RsCertificate, checksum_section, encode_section
from pqi.identity.errors import CertificateDecodeError, ChecksumError
from pqi.identity.invite import (
    MAX_INVITE_LOCATORS,
    DnsLocator,
    Ext4Locator,
    HiddenLocator,
    Loc4Locator,
    ShortInvite,
    UrlLocator,
)
from pqi.wire.address import NetAddress
from pqi.wire.errors import DecodeError, EncodeError, LimitExceededError, TruncatedError
from pqi.wire.fields import PgpFingerprint, PgpId, SslId
from tests.strategies_identity import fingerprints, ipv4_addresses, ssl_ids, text_values

README = {
    "alice": ("e3d224134f8957af7fa9e65647cb7308", "1A4ACDAE67854299813F48BAED101593758F53C0",
              "9da7cb", 7801),
    "bob": ("65c312566c89e99e04516702cc795383", "CD765DB24BBCDCD2410DAC92459BFF4289C58EEB",
            "ef4b7f", 7802),
}
SSL = SslId(bytes(range(16)))


def _text(body: bytes) -> str:
    return base64.b64encode(body + checksum_section(0x04, body)).decode()


@pytest.mark.parametrize("name", sorted(README))
def test_real_invite(vectors, name: str) -> None:
    """RetroShare's short invites decode to the README's values and re-encode identically."""
    text = (vectors / f"{name}.shortinvite.txt").read_text()
    inv = ShortInvite.decode(text)
    ssl_id, fpr, crc, port = README[name]
    assert inv.ssl_id == SslId.from_hex(ssl_id)
    assert inv.pgp_fingerprint == PgpFingerprint.from_hex(fpr)
    assert inv.pgp_id == PgpId.from_hex(fpr[-16:])
    assert inv.name == name
    assert inv.locators == (Loc4Locator(NetAddress(ipaddress.IPv4Address("127.0.0.1"), port)),)
    raw = inv.to_bytes()
    assert raw[-3:].hex() == crc
    assert raw[-13:-5] == b"\x93\x06\x01\x00\x00\x7f" + port.to_bytes(2, "big")
    assert inv.encode() == text.strip()


@pytest.mark.parametrize("name", sorted(README))
def test_real_invite_url(vectors, name: str) -> None:
    """The URL form decodes to the same invite and is rebuilt character for character."""
    url = (vectors / f"{name}.shortinvite_url.txt").read_text().strip()
    inv = ShortInvite.decode(url)
    assert inv == ShortInvite.decode((vectors / f"{name}.shortinvite.txt").read_text())
    assert inv.to_url() == url


@pytest.mark.parametrize("node", ["alice", "bob", "carol"])
def test_capture_nodes(captures, node: str) -> None:
    """The captured nodes' invites carry nodes.json's ids, matching their long certificates."""
    info = json.loads((captures / "nodes.json").read_text())[node]
    text = (captures / info["short_invite_file"]).read_text()
    inv = ShortInvite.decode(text)
    cert = RsCertificate.decode((captures / info["invite_file"]).read_text())
    assert inv.ssl_id == SslId.from_hex(info["ssl_id"]) == cert.ssl_id
    assert inv.pgp_fingerprint == PgpFingerprint.from_hex(info["pgp_fingerprint"])
    assert inv.pgp_fingerprint == cert.public_key.fingerprint
    assert inv.pgp_id == PgpId.from_hex(info["pgp_id"])
    assert inv.name == info["pgp_name"]
    (loc,) = inv.locators
    assert isinstance(loc, Loc4Locator) and str(loc.address) == info["p2p_address"]
    assert inv.encode() == text.strip()


def test_locator_bytes() -> None:
    """Each locator kind's bytes, including the reversed IPv4 octets of LOC4/EXT4."""
    inv = ShortInvite(SSL, None, "n", (
        Ext4Locator(NetAddress(ipaddress.IPv4Address("1.2.3.4"), 0x1E79)),
        Loc4Locator(NetAddress(ipaddress.IPv4Address("172.31.1.2"), 80)),
        DnsLocator("x.org", 7812),
        HiddenLocator(2, "abc.onion", 9050),
        UrlLocator("ipv6://[::1]:7812"),
    ))
    raw = inv.to_bytes()
    assert raw[:18] == b"\x00\x10" + bytes(SSL)
    assert raw[18:21] == b"\x01\x01n"
    rest = raw[21:-5]
    assert rest == (b"\x92\x06\x04\x03\x02\x01\x1e\x79" + b"\x93\x06\x02\x01\x1f\xac\x00\x50"
                    + b"\x91\x07\x1e\x84x.org" + b"\x90\x0f\x00\x00\x00\x02\x23\x5aabc.onion"
                    + b"\x02\x11ipv6://[::1]:7812")
    assert ShortInvite.decode(inv.encode()) == inv


def test_url_variants(vectors) -> None:
    """Other hosts, extra parameters and an unescaped '+' are all understood."""
    real = (vectors / "alice.shortinvite.txt").read_text().strip()
    assert "+" in real
    assert ShortInvite.decode(f"https://me.retroshare.cc?rsInvite={real}").encode() == real
    inv = ShortInvite(SSL, PgpFingerprint(bytes(20)), "zoë")
    text = inv.encode()
    assert ShortInvite.decode(f"https://example.org/join?x=1&rsInvite={text}&y=2") == inv
    assert ShortInvite.decode(inv.to_url("https://example.org")) == inv
    assert inv.to_url("https://example.org").startswith("https://example.org?rsInvite=")
    with pytest.raises(CertificateDecodeError, match="no rsInvite"):
        ShortInvite.decode("https://me.retroshare.cc?other=1")
    with pytest.raises(CertificateDecodeError, match="no rsInvite"):
        ShortInvite.decode("https://me.retrABDj0iQTT4lX[3%2Bp5lZHy3M\n")  # found by fuzzing
    assert ShortInvite.decode(inv.to_url() + "#frag") == inv


def test_invite_errors() -> None:
    """Missing id, wrong id sizes, short locators, bad checksum: each refused by name."""
    with pytest.raises(CertificateDecodeError, match="no SSL id"):
        ShortInvite.decode(_text(encode_section(1, b"bob")))
    with pytest.raises(CertificateDecodeError, match="16 bytes"):
        ShortInvite.decode(_text(encode_section(0, b"\x01" * 17)))
    with pytest.raises(CertificateDecodeError, match="20 bytes"):
        ShortInvite.decode(_text(encode_section(0, bytes(SSL)) + encode_section(3, b"\x01")))
    base = encode_section(0, bytes(SSL))
    for section, match in [(encode_section(0x93, b"\x01\x02"), "6 bytes"),
                           (encode_section(0x92, b"\x01" * 7), "6 bytes"),
                           (encode_section(0x91, b"\x01"), "at least 2"),
                           (encode_section(0x90, b"\x01" * 5), "at least 6"),
                           (encode_section(0x02, b"\xff"), "not UTF-8")]:
        with pytest.raises(CertificateDecodeError, match=match):
            ShortInvite.decode(_text(base + section))
    good = bytearray(base64.b64decode(_text(base)))
    good[3] ^= 0x40
    with pytest.raises(ChecksumError):
        ShortInvite.decode(base64.b64encode(bytes(good)).decode())
    with pytest.raises(TruncatedError):
        ShortInvite.decode(base64.b64encode(b"\x00\x10abc").decode())


def test_unknown_fields_skipped() -> None:
    """Unknown field types are ignored, as RetroShare ignores them."""
    inv = ShortInvite(SSL, None, "n")
    body = inv.to_bytes()[:-5]
    assert ShortInvite.decode(_text(body + encode_section(0x55, b"new"))) == inv


def test_locator_limit() -> None:
    """More than MAX_INVITE_LOCATORS locators is refused."""
    loc = encode_section(0x02, b"ipv4://1.2.3.4:1")
    base = encode_section(0, bytes(SSL)) + encode_section(1, b"")
    assert len(ShortInvite.decode(_text(base + loc * MAX_INVITE_LOCATORS)).locators) == 64
    with pytest.raises(LimitExceededError):
        ShortInvite.decode(_text(base + loc * (MAX_INVITE_LOCATORS + 1)))


def test_encode_refusals() -> None:
    """Values the format cannot carry are a local EncodeError, not bad output."""
    v6 = NetAddress(ipaddress.IPv6Address("::1"), 1)
    with pytest.raises(EncodeError):
        ShortInvite(SSL, locators=(Loc4Locator(v6),)).encode()
    with pytest.raises(EncodeError):
        ShortInvite(SSL, locators=(DnsLocator("x", 70000),)).encode()


def test_every_truncation_is_a_decode_error(vectors) -> None:
    """Every prefix of a real invite's bytes fails as a DecodeError."""
    raw = base64.b64decode((vectors / "alice.shortinvite.txt").read_text())
    for n in range(len(raw)):
        with pytest.raises(DecodeError):
            ShortInvite.decode(base64.b64encode(raw[:n]).decode())


def _locators() -> st.SearchStrategy:
    return st.one_of(
        ipv4_addresses().map(Loc4Locator), ipv4_addresses().map(Ext4Locator),
        st.builds(DnsLocator, text_values(), st.integers(0, 65535)),
        st.builds(HiddenLocator, st.integers(0, 2**32 - 1), text_values(),
                  st.integers(0, 65535)),
        st.builds(UrlLocator, text_values()))


@pytest.mark.slow
@given(ssl_ids(), st.none() | fingerprints(), text_values(), st.lists(_locators(), max_size=4))
def test_round_trip(ssl_id: SslId, fpr: PgpFingerprint | None, name: str, locators: list) -> None:
    """Any invite encodes, in radix and URL form, and decodes back to itself."""
    inv = ShortInvite(ssl_id, fpr, name, tuple(locators))
    assert ShortInvite.decode(inv.encode()) == inv
    assert ShortInvite.decode(inv.to_url()) == inv
