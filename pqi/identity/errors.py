# -*- test-case-name: tests.test_pgp -*-
"""The error family of identities: profile keys, location certificates, invites and accounts.

Two branches, because callers handle them differently.  Bytes or text that came from outside
(a friend's certificate, a pasted invite, a peer's TLS certificate) and cannot be read raise a
`pqi.wire.errors.DecodeError` subclass, like every other decoder in rsproto, so the fuzz
harnesses and
the TLS verifier need one ``except``.  Things that parsed but must not be trusted (a signature
that does not verify, a certificate RetroShare would refuse) or local failures (wrong password,
broken account folder) raise an `IdentityError`.
"""

from __future__ import annotations

from pqi.wire.errors import InvalidValueError

__all__ = [
    "IdentityError",
    "CertificateError",
    "ObsoleteCertificateError",
    "SignatureError",
    "WrongPasswordError",
    "AccountError",
    "PgpPacketError",
    "X509DecodeError",
    "CertificateDecodeError",
    "ChecksumError",
]


class IdentityError(Exception):
    """Base of the non-decoding identity errors."""


class CertificateError(IdentityError):
    """A location certificate is well-formed but RetroShare's rules refuse it.

    For example: its issuer is not the profile it claims to belong to, or its serial number is
    not the one current RetroShare writes.
    """


class ObsoleteCertificateError(CertificateError):
    """The certificate was made by RetroShare before 0.6.4 (serial 0x60000 family).

    Those certificates sign a SHA-1 hash and derive the location id differently; current
    RetroShare no longer talks to them, and neither do we.  The owner must create a new location.
    """


class SignatureError(IdentityError):
    """An OpenPGP signature does not verify with the key it should have been made with."""


class WrongPasswordError(IdentityError):
    """The account password does not decrypt the account's private keys."""


class AccountError(IdentityError):
    """An account folder is missing, incomplete, or cannot be created where asked."""


class PgpPacketError(InvalidValueError):
    """OpenPGP bytes are malformed or use a feature RetroShare keys never use.

    (A non-RSA or non-v4 key, a partial-length packet, a missing self-certification...)
    """


class X509DecodeError(InvalidValueError):
    """DER/PEM bytes are not an X.509 certificate shaped like RetroShare's."""


class CertificateDecodeError(InvalidValueError):
    """A text certificate or short invite is malformed (bad base64, bad section, missing id)."""


class ChecksumError(CertificateDecodeError):
    """The CRC-24 at the end of a text certificate or invite does not match its content.

    Usually a copy-paste accident: ask the friend to send the certificate again.
    """
