# -*- test-case-name: tests.test_distant_mail -*-
"""Encryption to a GXS identity's key, as ``GxsSecurity::encrypt`` (one recipient) does it.

OpenSSL's "seal" envelope: a random AES-128 key encrypted to the identity's RSA key
(PKCS#1 v1.5), then the data in AES-128-CBC with PKCS#7 padding, framed as::

    encrypted key size (u32 big endian) | encrypted key | IV (16) | ciphertext

Distant mail payloads (GXS trans) and global-router data travel this way.
"""

from __future__ import annotations

import os
import struct
from typing import Final

from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from pqi.items.nxs import NxsRsaKey
from pqi.wire.errors import DecodeError
from services.gxs.security import SignatureError, load_private, load_public

__all__ = ["SealError", "seal", "open_sealed", "IV_SIZE", "MAX_ENCRYPTED_KEY"]

IV_SIZE: Final = 16
_KEY_SIZE: Final = 16
#: Largest encrypted key RetroShare reads (``eklen > 512`` is refused).
MAX_ENCRYPTED_KEY: Final = 512


class SealError(DecodeError):
    """Sealed data that is malformed or not for this key."""


def seal(data: bytes, key: NxsRsaKey) -> bytes:
    """Encrypt ``data`` to the identity whose public ``key`` is given."""
    session = os.urandom(_KEY_SIZE)
    iv = os.urandom(IV_SIZE)
    ek = load_public(key).encrypt(session, padding.PKCS1v15())
    padder = sym_padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(session), modes.CBC(iv)).encryptor()
    body = enc.update(padder.update(data) + padder.finalize()) + enc.finalize()
    return struct.pack(">I", len(ek)) + ek + iv + body


def open_sealed(data: bytes, key: NxsRsaKey) -> bytes:
    """Decrypt what `seal` made for our identity's private ``key``; `SealError` if it was
    not for that key or is damaged."""
    if len(data) < 4:
        raise SealError("sealed data shorter than its header")
    (eklen,) = struct.unpack(">I", data[:4])
    if eklen > MAX_ENCRYPTED_KEY or 4 + eklen + IV_SIZE > len(data):
        raise SealError(f"sealed data announces a {eklen}-byte key")
    ek = data[4:4 + eklen]
    iv = data[4 + eklen:4 + eklen + IV_SIZE]
    body = data[4 + eklen + IV_SIZE:]
    if not body or len(body) % 16:
        raise SealError("sealed ciphertext has a bad length")
    try:
        session = load_private(key).decrypt(ek, padding.PKCS1v15())
    except (ValueError, SignatureError) as e:
        raise SealError("sealed data is not for this key") from e
    if len(session) != _KEY_SIZE:
        raise SealError("sealed data is not for this key")
    dec = Cipher(algorithms.AES(session), modes.CBC(iv)).decryptor()
    unpadder = sym_padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(dec.update(body) + dec.finalize()) + unpadder.finalize()
    except ValueError as e:
        raise SealError("sealed data has bad padding (not for this key?)") from e
