# -*- test-case-name: tests.test_sslcert -*-
"""Location certificates: the X.509 certificate a RetroShare location presents in TLS.

RetroShare does not use a CA.  The location's TLS key is wrapped in an X.509 v1 certificate whose
issuer is the profile's PGP id and whose signature field, although labelled
sha256WithRSAEncryption, holds an OpenPGP binary-document signature by the profile key over the
DER TBSCertificate.  The location (SSL) id is the first 16 bytes of SHA-256 over that signature.

`cryptography` cannot sign with a foreign signature, so we build the TBSCertificate and the
certificate DER ourselves (a handful of fixed DER shapes); parsing goes through `cryptography`.
The layout is byte-for-byte the one RetroShare 0.6.7 writes (a test rebuilds the real
certificates' TBS from their fields and compares).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from pqi.identity.errors import CertificateError, ObsoleteCertificateError, X509DecodeError
from pqi.identity.pgp import ProfileKey, PublicKey
from pqi.wire.errors import LimitExceededError
from pqi.wire.fields import PgpId, SslId

__all__ = [
    "LocationCertificate",
    "make_location_certificate",
    "build_tbs",
    "SERIAL_07_0001",
    "OBSOLETE_SERIALS",
    "MAX_CERTIFICATE_SIZE",
]

#: The serial number RetroShare >= 0.6.4 writes ("RS-0.7, certificate version 1").
SERIAL_07_0001: Final = 0x070001
#: Serials of the pre-0.6.4 certificates (SHA-1 signed, different SSL id rule).
OBSOLETE_SERIALS: Final = (0x060000, 0x060001)
#: Largest certificate we parse (RSA-4096 ones are ~1.2 KiB).
MAX_CERTIFICATE_SIZE: Final = 16384

_SHA256_WITH_RSA: Final = bytes.fromhex("06092a864886f70d01010b0500")  # OID + NULL params
_COMMON_NAME_OID: Final = bytes.fromhex("0603550403")
_NOT_BEFORE: Final = b"20100101000000Z"
_NOT_AFTER: Final = b"21100101000000Z"


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def _name(common_name: str) -> bytes:
    atv = _der(0x30, _COMMON_NAME_OID + _der(0x0C, common_name.encode("utf-8")))
    return _der(0x30, _der(0x31, atv))


def build_tbs(issuer: PgpId, public_key: rsa.RSAPublicKey, serial: int = SERIAL_07_0001) -> bytes:
    """The DER TBSCertificate RetroShare signs for a location key.

    X.509 v1 (no version field, no extensions), CN=<PGP id> issuer, CN=- subject,
    GeneralizedTime validity 2010-01-01 .. 2110-01-01.
    """
    serial_raw = serial.to_bytes(serial.bit_length() // 8 + 1, "big")
    spki = public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    validity = _der(0x30, _der(0x18, _NOT_BEFORE) + _der(0x18, _NOT_AFTER))
    return _der(0x30, _der(0x02, serial_raw) + _der(0x30, _SHA256_WITH_RSA)
                + _name(issuer.to_hex()) + validity + _name("-") + spki)


def _assemble(tbs: bytes, signature: bytes) -> bytes:
    return _der(0x30, tbs + _der(0x30, _SHA256_WITH_RSA) + _der(0x03, b"\x00" + signature))


@dataclasses.dataclass(frozen=True)
class LocationCertificate:
    """A parsed location certificate; construct with `from_der`, `from_pem` or `from_x509`."""

    x509: x509.Certificate = dataclasses.field(compare=False)
    der: bytes
    issuer_pgp_id: PgpId

    @classmethod
    def from_x509(cls, cert: x509.Certificate) -> LocationCertificate:
        """Wrap a certificate parsed by `cryptography` (e.g. a TLS peer's)."""
        der = cert.public_bytes(serialization.Encoding.DER)
        try:
            cns = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
        except ValueError as e:
            raise X509DecodeError(f"unreadable issuer: {e}", field="issuer") from e
        if len(cns) != 1 or not isinstance(cns[0].value, str):
            raise X509DecodeError("issuer must have exactly one common name", field="issuer")
        text = cns[0].value
        if len(text) != 16 or any(ch not in "0123456789abcdefABCDEF" for ch in text):
            raise X509DecodeError(f"issuer CN {text!r} is not a PGP id", field="issuer")
        return cls(cert, der, PgpId.from_hex(text))

    @classmethod
    def from_der(cls, data: bytes) -> LocationCertificate:
        if len(data) > MAX_CERTIFICATE_SIZE:
            raise LimitExceededError("MAX_CERTIFICATE_SIZE", len(data), MAX_CERTIFICATE_SIZE,
                                     field="x509", offset=0)
        try:
            cert = x509.load_der_x509_certificate(bytes(data))
        except ValueError as e:
            raise X509DecodeError(f"not a DER X.509 certificate: {e}", field="x509",
                                  offset=0) from e
        return cls.from_x509(cert)

    @classmethod
    def from_pem(cls, data: bytes) -> LocationCertificate:
        if len(data) > 2 * MAX_CERTIFICATE_SIZE:
            raise LimitExceededError("MAX_CERTIFICATE_SIZE", len(data), 2 * MAX_CERTIFICATE_SIZE,
                                     field="x509", offset=0)
        try:
            cert = x509.load_pem_x509_certificate(bytes(data))
        except ValueError as e:
            raise X509DecodeError(f"not a PEM X.509 certificate: {e}", field="x509",
                                  offset=0) from e
        return cls.from_x509(cert)

    def to_der(self) -> bytes:
        return self.der

    def to_pem(self) -> bytes:
        return self.x509.public_bytes(serialization.Encoding.PEM)

    @property
    def serial(self) -> int:
        return self.x509.serial_number

    @property
    def signature(self) -> bytes:
        """The signature BIT STRING contents: an OpenPGP signature packet."""
        return self.x509.signature

    @property
    def ssl_id(self) -> SslId:
        return SslId(hashlib.sha256(self.x509.signature).digest()[:16])

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        key = self.x509.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise CertificateError("location key is not RSA")
        return key

    def verify(self, profile_public: PublicKey) -> None:
        """Check the certificate belongs to ``profile_public`` as RetroShare checks it.

        Raises `CertificateError` (`ObsoleteCertificateError` for pre-0.6.4 certificates) or
        `pqi.identity.errors.SignatureError`.
        """
        if self.issuer_pgp_id != profile_public.pgp_id:
            raise CertificateError(f"certificate issuer {self.issuer_pgp_id} is not profile "
                                   f"{profile_public.pgp_id}")
        if self.serial in OBSOLETE_SERIALS:
            raise ObsoleteCertificateError(
                f"certificate serial 0x{self.serial:x} comes from RetroShare before 0.6.4; "
                "that location must be recreated")
        if self.serial != SERIAL_07_0001:
            raise CertificateError(f"unknown certificate serial 0x{self.serial:x}")
        profile_public.verify(self.x509.tbs_certificate_bytes, self.x509.signature)


def make_location_certificate(profile: ProfileKey, tls_key: rsa.RSAPrivateKey,
                              signed_at: int | None = None) -> LocationCertificate:
    """Certify a location's TLS key with our profile key, as RetroShare does."""
    tbs = build_tbs(profile.pgp_id, tls_key.public_key())
    return LocationCertificate.from_der(_assemble(tbs, profile.sign(tbs, created=signed_at)))
