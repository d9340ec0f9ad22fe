"""Location certificates: RetroShare's X.509 layout, SSL ids, and PGP-signed TBS checks."""

from __future__ import annotations

import datetime
import hashlib
import struct

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from pqi.identity import sslcert
from pqi.identity.errors import (
    CertificateError,
    ObsoleteCertificateError,
    SignatureError,
    X509DecodeError,
)
from pqi.identity.pgp import ProfileKey, PublicKey
from pqi.identity.sslcert import (
    MAX_CERTIFICATE_SIZE,
    SERIAL_07_0001,
    LocationCertificate,
    build_tbs,
    make_location_certificate,
)
from pqi.wire.errors import DecodeError, LimitExceededError
from pqi.wire.fields import PgpId, SslId
from tests.identity_fixtures import *  # noqa: F403

REAL = {
    "alice": ("e3d224134f8957af7fa9e65647cb7308", "ED101593758F53C0"),
    "bob": ("65c312566c89e99e04516702cc795383", "459BFF4289C58EEB"),
}


def _real(vectors, name: str) -> tuple[LocationCertificate, PublicKey]:
    cert = LocationCertificate.from_der((vectors / f"{name}.ssl_cert.der").read_bytes())
    key = PublicKey.from_bytes((vectors / f"{name}.pgp_pubkey.gpg").read_bytes())
    return cert, key


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_certificate_ids_and_signature(vectors, name: str) -> None:
    """Real certificates give the README's SSL and PGP ids and verify with their profile."""
    cert, key = _real(vectors, name)
    ssl_id, pgp_id = REAL[name]
    assert cert.ssl_id == SslId.from_hex(ssl_id)
    assert cert.issuer_pgp_id == PgpId.from_hex(pgp_id) == key.pgp_id
    assert cert.serial == SERIAL_07_0001
    assert cert.x509.version == x509.Version.v1
    assert len(cert.signature) == 543
    cert.verify(key)


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_pem_equals_der(vectors, name: str) -> None:
    """The PEM and DER files are the same certificate, and we write both back identically."""
    der = (vectors / f"{name}.ssl_cert.der").read_bytes()
    pem = (vectors / f"{name}.ssl_cert.pem").read_bytes()
    cert = LocationCertificate.from_pem(pem)
    assert cert == LocationCertificate.from_der(der)
    assert cert.to_der() == der
    assert LocationCertificate.from_pem(cert.to_pem()).to_der() == der


@pytest.mark.parametrize("name", sorted(REAL))
def test_tbs_builder_matches_real_bytes(vectors, name: str) -> None:
    """Our TBSCertificate builder reproduces RetroShare's bytes exactly from the fields."""
    cert, key = _real(vectors, name)
    assert build_tbs(key.pgp_id, cert.public_key) == cert.x509.tbs_certificate_bytes
    assert sslcert._assemble(cert.x509.tbs_certificate_bytes, cert.signature) == cert.to_der()


def test_real_certificate_with_other_profile(vectors) -> None:
    """Alice's certificate does not belong to Bob's profile."""
    cert, _ = _real(vectors, "alice")
    _, bob = _real(vectors, "bob")
    with pytest.raises(CertificateError, match="issuer"):
        cert.verify(bob)


def test_made_certificate_shape(location_cert: LocationCertificate, profile_key: ProfileKey,
                                location_key: rsa.RSAPrivateKey) -> None:
    """Our certificates carry RetroShare's fields, read back by cryptography."""
    c = location_cert.x509
    assert c.version == x509.Version.v1
    assert c.serial_number == 0x70001
    assert c.issuer.rfc4514_string() == f"CN={profile_key.pgp_id.to_hex()}"
    assert c.subject.rfc4514_string() == "CN=-"
    assert c.not_valid_before_utc == datetime.datetime(2010, 1, 1, tzinfo=datetime.UTC)
    assert c.not_valid_after_utc == datetime.datetime(2110, 1, 1, tzinfo=datetime.UTC)
    assert c.signature_algorithm_oid == x509.oid.SignatureAlgorithmOID.RSA_WITH_SHA256
    assert c.public_key().public_numbers() == location_key.public_key().public_numbers()
    assert location_cert.issuer_pgp_id == profile_key.pgp_id
    der = location_cert.to_der()
    assert der.endswith(b"\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b\x05\x00"
                        + der[-len(c.signature) - 5:-len(c.signature)]  # BIT STRING header
                        + c.signature)


def test_made_certificate_verifies(location_cert: LocationCertificate, profile_key: ProfileKey
                                   ) -> None:
    """Our parser accepts our certificate; the SSL id is SHA-256 of the signature, cut to 16."""
    location_cert.verify(profile_key.public)
    assert location_cert.ssl_id == SslId(hashlib.sha256(location_cert.signature).digest()[:16])


def test_made_certificate_independent_check(location_cert: LocationCertificate,
                                            profile_key: ProfileKey) -> None:
    """The signature field checks with plain RSA over the RFC 4880 v4 hash of the DER TBS."""
    c = x509.load_der_x509_certificate(location_cert.to_der())
    sig = c.signature
    assert sig[0] == 0xC2  # new-format signature packet
    first = sig[1]
    body = sig[3:] if 192 <= first < 224 else sig[2:]
    assert body[:4] == b"\x04\x00\x01\x08"  # v4, binary document, RSA, SHA-256
    hlen = struct.unpack_from(">H", body, 4)[0]
    prefix = body[:6 + hlen]
    ulen = struct.unpack_from(">H", body, 6 + hlen)[0]
    pos = 8 + hlen + ulen
    digest = hashlib.sha256(c.tbs_certificate_bytes + prefix + b"\x04\xff"
                            + struct.pack(">I", len(prefix))).digest()
    assert body[pos:pos + 2] == digest[:2]
    bits = struct.unpack_from(">H", body, pos + 2)[0]
    value = body[pos + 4:pos + 4 + (bits + 7) // 8].rjust(256, b"\0")
    profile_key.private_key.public_key().verify(value, digest, padding.PKCS1v15(),
                                                utils.Prehashed(hashes.SHA256()))


def test_certificate_refusals(location_cert: LocationCertificate, profile_key: ProfileKey,
                              profile_key2: ProfileKey, location_key: rsa.RSAPrivateKey) -> None:
    """Tampered signature, foreign profile, forged issuer: each refused with its reason."""
    der = bytearray(location_cert.to_der())
    der[-1] ^= 0x01
    with pytest.raises(SignatureError):
        LocationCertificate.from_der(bytes(der)).verify(profile_key.public)
    with pytest.raises(CertificateError, match="issuer"):
        location_cert.verify(profile_key2.public)
    # Bob's key signs a TBS naming Alice as issuer: the issuer matches, the signature does not.
    tbs = build_tbs(profile_key.pgp_id, location_key.public_key())
    forged = LocationCertificate.from_der(sslcert._assemble(tbs, profile_key2.sign(tbs)))
    with pytest.raises(SignatureError, match="issuer"):
        forged.verify(profile_key.public)


@pytest.mark.parametrize("serial,error,match", [
    (0x60000, ObsoleteCertificateError, "before 0.6.4"),
    (0x60001, ObsoleteCertificateError, "before 0.6.4"),
    (0x70002, CertificateError, "unknown certificate serial"),
])
def test_serial_policy(profile_key: ProfileKey, location_key: rsa.RSAPrivateKey, serial: int,
                       error: type[Exception], match: str) -> None:
    """Only serial 0x70001 is accepted; the pre-0.6.4 family gets a clear error of its own."""
    tbs = build_tbs(profile_key.pgp_id, location_key.public_key(), serial=serial)
    cert = LocationCertificate.from_der(sslcert._assemble(tbs, profile_key.sign(tbs)))
    with pytest.raises(error, match=match):
        cert.verify(profile_key.public)


def _self_signed(common_name: str) -> bytes:
    key = make_rsa_key()  # noqa: F405
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(SERIAL_07_0001)
            .not_valid_before(datetime.datetime(2020, 1, 1))
            .not_valid_after(datetime.datetime(2030, 1, 1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def test_decode_errors() -> None:
    """Garbage, ordinary certificates and oversized input are DecodeErrors with a reason."""
    with pytest.raises(X509DecodeError, match="not a DER"):
        LocationCertificate.from_der(b"\x30\x03\x02\x01\x00")
    with pytest.raises(X509DecodeError, match="not a PEM"):
        LocationCertificate.from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n")
    with pytest.raises(X509DecodeError, match="not a PGP id"):
        LocationCertificate.from_der(_self_signed("example.org"))
    with pytest.raises(LimitExceededError):
        LocationCertificate.from_der(bytes(MAX_CERTIFICATE_SIZE + 1))


def test_ordinary_certificate_with_pgp_like_issuer_fails_signature(profile_key: ProfileKey
                                                                   ) -> None:
    """A normal RSA-signed certificate naming our PGP id is not signed by our profile."""
    cert = LocationCertificate.from_der(_self_signed(profile_key.pgp_id.to_hex()))
    with pytest.raises(SignatureError):
        cert.verify(profile_key.public)


def test_truncations_are_decode_errors(location_cert: LocationCertificate) -> None:
    """Every prefix of a certificate fails as a DecodeError."""
    der = location_cert.to_der()
    for n in range(0, len(der), 7):
        with pytest.raises(DecodeError):
            LocationCertificate.from_der(der[:n])


@settings(max_examples=10)
@given(st.integers(0, 2**32 - 1))
def test_make_round_trip(profile_key: ProfileKey, location_key: rsa.RSAPrivateKey, when: int
                         ) -> None:
    """Certificates made at any signing time parse back, verify and keep their id."""
    cert = make_location_certificate(profile_key, location_key, signed_at=when)
    again = LocationCertificate.from_der(cert.to_der())
    assert again == cert and again.ssl_id == cert.ssl_id
    again.verify(profile_key.public)
