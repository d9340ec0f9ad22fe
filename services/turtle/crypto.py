# -*- test-case-name: tests.test_turtle_crypto -*-
"""End-to-end encryption of file items in a tunnel (``ftServer::encryptItem``).

Relays of a tunnel know only H(H), the SHA-1 of the file's SHA-1; the two ends know the
real hash and derive the key from it: SHA-256 of its 20 bytes.  Each file item travels
serialised inside a ``GENERIC_DATA`` item, framed as::

    ae ad FF 01 | nonce (12) | clear size (u32, little endian) | ciphertext | tag (16)

where ``FF`` is 02 (ChaCha20, block counter 1, authenticated by HMAC-SHA256 truncated to 16
bytes over nonce, size and ciphertext: what RetroShare 0.6.7 sends) or 01 (RFC 7539
ChaCha20-Poly1305 with nonce and size as associated data: accepted on receive).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from pqi.wire.errors import DecodeError
from pqi.wire.fields import Sha1Hash

__all__ = ["FORMAT_POLY1305", "FORMAT_SHA256", "NONCE_SIZE", "TAG_SIZE", "OVERHEAD",
           "TunnelCryptoError", "hash_of_hash", "file_key", "encrypt", "decrypt"]

FORMAT_POLY1305: Final = 0x01
FORMAT_SHA256: Final = 0x02
_VERSION: Final = 0x01
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16
_HEADER: Final = 4
_SIZE_FIELD: Final = 4
#: Bytes an encrypted item adds to the clear one.
OVERHEAD: Final = _HEADER + NONCE_SIZE + _SIZE_FIELD + TAG_SIZE


class TunnelCryptoError(DecodeError):
    """Encrypted tunnel data that is malformed or fails authentication."""


def hash_of_hash(file_hash: Sha1Hash) -> Sha1Hash:
    """H(H): the hash tunnels are dug for, so that relays never see the real one."""
    return Sha1Hash(hashlib.sha1(bytes(file_hash)).digest())


def file_key(file_hash: Sha1Hash) -> bytes:
    """The 32-byte key of a file's tunnel items: SHA-256 of the real hash."""
    return hashlib.sha256(bytes(file_hash)).digest()


def _chacha20(key: bytes, nonce: bytes, data: bytes) -> bytes:
    # RetroShare starts the ChaCha20 block counter at 1 (block 0 is Poly1305's key block).
    full_nonce = (1).to_bytes(4, "little") + nonce
    return Cipher(algorithms.ChaCha20(key, full_nonce), None).encryptor().update(data)


def encrypt(key: bytes, clear: bytes, *, nonce: bytes | None = None,
            fmt: int = FORMAT_SHA256) -> bytes:
    """Frame and encrypt ``clear`` (a serialised item); a fresh random nonce unless given."""
    if nonce is None:
        nonce = os.urandom(NONCE_SIZE)
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"nonce must be {NONCE_SIZE} bytes")
    aad = nonce + len(clear).to_bytes(_SIZE_FIELD, "little")
    head = bytes((0xAE, 0xAD, fmt, _VERSION))
    if fmt == FORMAT_SHA256:
        cipher = _chacha20(key, nonce, clear)
        tag = hmac.new(key, aad + cipher, hashlib.sha256).digest()[:TAG_SIZE]
        return head + aad + cipher + tag
    if fmt == FORMAT_POLY1305:
        sealed = ChaCha20Poly1305(key).encrypt(nonce, clear, aad)
        return head + aad + sealed
    raise ValueError(f"unknown tunnel encryption format {fmt}")


def decrypt(key: bytes, data: bytes) -> bytes:
    """Check and decrypt one framed payload; `TunnelCryptoError` on anything wrong."""
    if len(data) < OVERHEAD:
        raise TunnelCryptoError(f"encrypted tunnel data of {len(data)} bytes is too short")
    if data[0] != 0xAE or data[1] != 0xAD or data[3] != _VERSION:
        raise TunnelCryptoError("not an encrypted tunnel item (bad magic or version)")
    fmt = data[2]
    aad = data[_HEADER:_HEADER + NONCE_SIZE + _SIZE_FIELD]
    nonce = aad[:NONCE_SIZE]
    size = int.from_bytes(aad[NONCE_SIZE:], "little")
    if size != len(data) - OVERHEAD:
        raise TunnelCryptoError(f"clear size {size} disagrees with {len(data) - OVERHEAD}")
    body = data[_HEADER + NONCE_SIZE + _SIZE_FIELD:]
    if fmt == FORMAT_SHA256:
        cipher, tag = body[:size], body[size:]
        want = hmac.new(key, aad + cipher, hashlib.sha256).digest()[:TAG_SIZE]
        if not hmac.compare_digest(want, tag):
            raise TunnelCryptoError("tunnel item fails authentication")
        return _chacha20(key, nonce, cipher)
    if fmt == FORMAT_POLY1305:
        try:
            return ChaCha20Poly1305(key).decrypt(nonce, body, aad)
        except InvalidTag as e:
            raise TunnelCryptoError("tunnel item fails authentication") from e
    raise TunnelCryptoError(f"unknown tunnel encryption format {fmt}")
