# -*- test-case-name: tests.test_gxstunnel_crypto -*-
"""The cryptography of a GXS tunnel, as ``p3GxsTunnelService`` does it.

- Diffie-Hellman in RetroShare's fixed 2048-bit group, generator 5; each end signs its public
  value (the big-endian bytes) with its identity key, so the exchange is authenticated by the
  two identities;
- the session key is the first 16 bytes of SHA-1 of the shared secret (``DH_compute_key``'s
  bytes: exactly the prime's 256 bytes; a secret that would be shorter is refused, as there);
- an encrypted item travels as ``IV (8, never 0) | HMAC-SHA1(key, ciphertext) (20) |
  ciphertext``, the ciphertext being AES-256-CBC with PKCS#7 padding whose key and IV come from
  ``EVP_BytesToKey(SHA-1, salt=IV, 5 rounds)`` of the 16-byte session key
  (``RsAES::aes_crypt_8_16``);
- a clear item (only the DH public key) travels behind 8 zero bytes;
- the tunnel id is the first 16 bytes of SHA-1 of the two identity ids, smaller first, and
  the turtle hash of a tunnel to an identity is 4 random bytes followed by its 16 bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from typing import Final

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from pqi.wire.errors import DecodeError
from pqi.wire.fields import GxsId, Sha1Hash

__all__ = [
    "DH_PRIME", "DH_GENERATOR", "IV_SIZE", "HMAC_SIZE", "KEY_SIZE", "CLEAR_PREFIX",
    "TunnelAuthError", "ShortSecretError", "DhKey", "session_key", "evp_bytes_to_key",
    "encrypt", "decrypt", "tunnel_id", "random_hash", "destination_of",
]

#: RetroShare's DH group (``dh_prime_2048_hex``) and generator.
DH_PRIME: Final = int(
    "B3B86A844550486C7EA459FA468D3A8EFD71139593FE1C658BBEFA9B2FC0AD2628242C2CDC2F91F5B220ED29"
    "AAC271192A7374DFA28CDDCA70252F342D0821273940344A7A6A3CB70C7897A39864309F6CAC5C7EA18020EF"
    "882693CA2C12BB211B7BA8367D5A7C7252A5B5E840C9E8F081469EBA0B98BCC3F593A4D9C4D5DF539362084F"
    "1B9581316C1F80FDAD452FD56DBC6B8ED0775F596F7BB22A3FE2B4753764221528D33DB4140DE58083DB660E"
    "3E105123FC963BFF108AC3A268B7380FFA72005A1515C371287C5706FFA6062C9AC73A9B1A6AC842C2764CDA"
    "CFC85556607E86611FDF486C222E4896CDF6908F239E177ACC641FCBFF72A758D1C10CBB", 16)
DH_GENERATOR: Final = 5
_PRIME_BYTES: Final = (DH_PRIME.bit_length() + 7) // 8
IV_SIZE: Final = 8
HMAC_SIZE: Final = 20
KEY_SIZE: Final = 16
#: What precedes a clear (DH) item in the turtle data.
CLEAR_PREFIX: Final = bytes(IV_SIZE)
_ROUNDS: Final = 5
_BLOCK: Final = 16


class TunnelAuthError(DecodeError):
    """Tunnel data that is malformed, fails its HMAC, or does not decrypt."""


class ShortSecretError(ValueError):
    """The shared secret has fewer bytes than the prime (1 time in 256): RetroShare cannot
    use it, so the exchange starts over with new keys."""


class DhKey:
    """One end's DH key pair; ``secret`` may be given to reproduce an exchange."""

    def __init__(self, secret: int | None = None) -> None:
        if secret is None:
            secret = 2 + secrets.randbelow(DH_PRIME - 3)
        if not 1 < secret < DH_PRIME - 1:
            raise ValueError("DH secret out of range")
        self.secret = secret
        self.public = pow(DH_GENERATOR, secret, DH_PRIME)

    @property
    def public_bytes(self) -> bytes:
        """The public value as ``BN_bn2bin`` writes it (minimal big-endian bytes)."""
        return self.public.to_bytes((self.public.bit_length() + 7) // 8, "big")

    def shared(self, peer_public: bytes) -> bytes:
        """The shared secret with the peer's public value (``DH_compute_key``).

        Raises ValueError for a public value outside (1, p-1), and for a secret shorter than
        the prime (RetroShare refuses those too; the exchange is then restarted)."""
        y = int.from_bytes(peer_public, "big")
        if not 1 < y < DH_PRIME - 1:
            raise ValueError("DH public value out of range")
        z = pow(y, self.secret, DH_PRIME)
        if (z.bit_length() + 7) // 8 != _PRIME_BYTES:
            raise ShortSecretError("short DH secret")
        return z.to_bytes(_PRIME_BYTES, "big")


def session_key(shared: bytes) -> bytes:
    """The 16-byte AES/HMAC key of a tunnel: SHA-1 of the shared secret, truncated."""
    return hashlib.sha1(shared).digest()[:KEY_SIZE]


def evp_bytes_to_key(key: bytes, salt: bytes) -> tuple[bytes, bytes]:
    """OpenSSL's ``EVP_BytesToKey`` for AES-256-CBC with SHA-1 and 5 rounds: (key, iv)."""
    out = b""
    block = b""
    while len(out) < 32 + _BLOCK:
        block = hashlib.sha1(block + key + salt).digest()
        for _ in range(_ROUNDS - 1):
            block = hashlib.sha1(block).digest()
        out += block
    return out[:32], out[32:32 + _BLOCK]


def encrypt(key: bytes, clear: bytes, *, iv: bytes | None = None) -> bytes:
    """Frame and encrypt a serialised item; a fresh random non-zero IV unless given."""
    while iv is None or iv == CLEAR_PREFIX:
        iv = os.urandom(IV_SIZE)
    if len(iv) != IV_SIZE:
        raise ValueError(f"IV must be {IV_SIZE} bytes")
    aes_key, aes_iv = evp_bytes_to_key(key, iv)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(clear) + padder.finalize()
    enc = Cipher(algorithms.AES(aes_key), modes.CBC(aes_iv)).encryptor()
    cipher = enc.update(padded) + enc.finalize()
    mac = hmac.new(key, cipher, hashlib.sha1).digest()
    return iv + mac + cipher


def decrypt(key: bytes, data: bytes) -> bytes:
    """Check and decrypt one framed item; `TunnelAuthError` on anything wrong."""
    cipher = data[IV_SIZE + HMAC_SIZE:]
    if len(cipher) == 0 or len(cipher) % _BLOCK:
        raise TunnelAuthError(f"encrypted tunnel data of {len(data)} bytes has a bad length")
    mac = hmac.new(key, cipher, hashlib.sha1).digest()
    if not hmac.compare_digest(mac, data[IV_SIZE:IV_SIZE + HMAC_SIZE]):
        raise TunnelAuthError("tunnel data fails its HMAC")
    aes_key, aes_iv = evp_bytes_to_key(key, data[:IV_SIZE])
    dec = Cipher(algorithms.AES(aes_key), modes.CBC(aes_iv)).decryptor()
    padded = dec.update(cipher) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError as e:
        raise TunnelAuthError("tunnel data has bad padding") from e


def tunnel_id(a: GxsId, b: GxsId) -> GxsId:
    """``makeGxsTunnelId``: the same id at both ends (also the distant chat id)."""
    low, high = sorted((bytes(a), bytes(b)))
    return GxsId(hashlib.sha1(low + high).digest()[:16])


def random_hash(destination: GxsId) -> Sha1Hash:
    """``randomHashFromDestinationGxsId``: the turtle hash dug for a tunnel to ``destination``."""
    return Sha1Hash(os.urandom(4) + bytes(destination))


def destination_of(file_hash: Sha1Hash) -> GxsId:
    """The identity a tunnel hash is for (its last 16 bytes)."""
    return GxsId(bytes(file_hash)[4:])
