# -*- test-case-name: tests.test_keyfile -*-
"""Private keys at rest: PKCS#8 ``EncryptedPrivateKeyInfo`` under PBES2, and nothing cheaper.

Why not PKCS#12: its integrity MAC has its own iteration count (2,048 in what `cryptography`
writes, and not settable), so an attacker with the file tests passwords against the MAC and
never pays for the key's PBKDF2.  A PKCS#8 container has no MAC: the only way to check a
password is the key derivation itself (`KDF_ROUNDS` of PBKDF2-HMAC-SHA256) followed by
AES-256-CBC and a structural check of the decrypted key.

`cryptography` reads this format (``load_der_private_key``) but only writes PKCS#8 with its
own low iteration count, so the writer below builds the few DER structures itself:

    EncryptedPrivateKeyInfo ::= SEQUENCE { AlgorithmIdentifier(PBES2, PBES2-params),
                                           OCTET STRING encryptedData }
    PBES2-params  ::= SEQUENCE { AlgorithmIdentifier(PBKDF2, PBKDF2-params),
                                 AlgorithmIdentifier(aes256-CBC, OCTET STRING iv) }
    PBKDF2-params ::= SEQUENCE { OCTET STRING salt, INTEGER iterations,
                                 AlgorithmIdentifier(hmacWithSHA256, NULL) }

(RFC 8018, appendix A.2 and A.4; the same layout ``openssl pkcs8 -topk8 -v2 aes-256-cbc
-v2prf hmacWithSHA256`` writes.)
"""

from __future__ import annotations

import os
from typing import Final

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.serialization import pkcs12

__all__ = ["KDF_ROUNDS", "encrypt_key", "decrypt_key", "decrypt_legacy_pkcs12",
           "KeyFileError"]

#: PBKDF2-HMAC-SHA256 iterations guarding a private key (OWASP's 2023 figure).
KDF_ROUNDS: Final = 600_000
#: Salt length (bytes); RFC 8018 asks for at least 8.
_SALT_BYTES: Final = 16

_OID_PBES2: Final = "1.2.840.113549.1.5.13"
_OID_PBKDF2: Final = "1.2.840.113549.1.5.12"
_OID_HMAC_SHA256: Final = "1.2.840.113549.2.9"
_OID_AES256_CBC: Final = "2.16.840.1.101.3.4.1.42"


class KeyFileError(ValueError):
    """The key file does not open: wrong password, or a damaged or foreign file."""


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + body


def _seq(*parts: bytes) -> bytes:
    return _der(0x30, b"".join(parts))


def _oid(dotted: str) -> bytes:
    first, second, *rest = (int(x) for x in dotted.split("."))
    out = bytearray([40 * first + second])
    for arc in rest:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return _der(0x06, bytes(out))


def _int(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _octets(data: bytes) -> bytes:
    return _der(0x04, data)


def _derive(password: bytes, salt: bytes, rounds: int) -> bytes:
    return PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt,
                      iterations=rounds).derive(password)


def encrypt_key(key: rsa.RSAPrivateKey, password: str, *, rounds: int = KDF_ROUNDS) -> bytes:
    """``key`` as DER ``EncryptedPrivateKeyInfo`` (PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC)."""
    plain = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    salt, iv = os.urandom(_SALT_BYTES), os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(_derive(password.encode("utf-8"), salt, rounds)),
                       modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    kdf = _seq(_oid(_OID_PBKDF2),
               _seq(_octets(salt), _int(rounds), _seq(_oid(_OID_HMAC_SHA256), b"\x05\x00")))
    scheme = _seq(_oid(_OID_AES256_CBC), _octets(iv))
    return _seq(_seq(_oid(_OID_PBES2), _seq(kdf, scheme)), _octets(encrypted))


def decrypt_key(data: bytes, password: str) -> rsa.RSAPrivateKey:
    """The RSA key of an ``EncryptedPrivateKeyInfo``; `KeyFileError` when it does not open."""
    try:
        key = serialization.load_der_private_key(data, password.encode("utf-8"))
    except (ValueError, TypeError) as e:
        raise KeyFileError(str(e)) from e
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFileError("the file does not hold an RSA key")
    return key


def decrypt_legacy_pkcs12(data: bytes, password: str) -> rsa.RSAPrivateKey:
    """The RSA key of a PKCS#12 file written before the switch to PKCS#8 (to migrate it)."""
    try:
        key, _, _ = pkcs12.load_key_and_certificates(data, password.encode("utf-8"))
    except (ValueError, TypeError) as e:
        raise KeyFileError(str(e)) from e
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFileError("the file does not hold an RSA key")
    return key
