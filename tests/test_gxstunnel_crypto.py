"""The GXS tunnel's DH, key derivation and framing (``services.gxstunnel.crypto``).

The captures hold both DH public values of a real exchange but not the secrets (the nodes
never reveal them), so the shared key of that exchange cannot be recomputed; the derivation
is checked instead against OpenSSL's own ``EVP_BytesToKey`` (through ctypes on the
system libcrypto) and by both ends agreeing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pqi.wire.fields import GxsId, Sha1Hash
from services.gxstunnel.crypto import (
    DH_GENERATOR,
    DH_PRIME,
    DhKey,
    TunnelAuthError,
    decrypt,
    destination_of,
    encrypt,
    evp_bytes_to_key,
    random_hash,
    session_key,
    tunnel_id,
)


def _openssl_bytes_to_key(key: bytes, salt: bytes) -> tuple[bytes, bytes]:
    name = ctypes.util.find_library("crypto")
    assert name, "libcrypto not found"
    lib = ctypes.CDLL(name)
    lib.EVP_aes_256_cbc.restype = ctypes.c_void_p
    lib.EVP_sha1.restype = ctypes.c_void_p
    out_key, out_iv = ctypes.create_string_buffer(32), ctypes.create_string_buffer(16)
    n = lib.EVP_BytesToKey(ctypes.c_void_p(lib.EVP_aes_256_cbc()),
                           ctypes.c_void_p(lib.EVP_sha1()), salt, key, len(key), 5,
                           out_key, out_iv)
    assert n == 32
    return out_key.raw, out_iv.raw


@given(key=st.binary(min_size=16, max_size=16), salt=st.binary(min_size=8, max_size=8))
def test_bytes_to_key_is_openssls(key: bytes, salt: bytes) -> None:
    """Our EVP_BytesToKey (SHA-1, 5 rounds) gives OpenSSL's key and IV."""
    assert evp_bytes_to_key(key, salt) == _openssl_bytes_to_key(key, salt)


def test_dh_both_ends_agree_and_secrets_reproduce() -> None:
    """Both ends derive one key; given the secrets, the exchange reproduces exactly."""
    a, b = DhKey(12345678901234567890), DhKey(98765432109876543210)
    assert a.public == pow(DH_GENERATOR, a.secret, DH_PRIME)
    shared = a.shared(b.public_bytes)
    assert shared == b.shared(a.public_bytes)
    assert len(shared) == 256
    assert session_key(shared) == hashlib.sha1(shared).digest()[:16]
    assert DhKey(a.secret).public_bytes == a.public_bytes


@pytest.mark.parametrize("bad", [0, 1, DH_PRIME - 1, DH_PRIME, DH_PRIME + 5])
def test_dh_refuses_degenerate_public_values(bad: int) -> None:
    """0, 1, p-1 and values >= p would force a known key: refused."""
    with pytest.raises(ValueError):
        DhKey().shared(bad.to_bytes(257, "big"))


@given(clear=st.binary(max_size=300), key=st.binary(min_size=16, max_size=16))
def test_encrypt_round_trip(clear: bytes, key: bytes) -> None:
    """Encrypted frames decrypt back; the IV is never the clear-item marker."""
    frame = encrypt(key, clear)
    assert frame[:8] != bytes(8)
    assert len(frame) == 8 + 20 + (len(clear) // 16 + 1) * 16
    assert decrypt(key, frame) == clear


@given(clear=st.binary(min_size=1, max_size=100), flip=st.integers(0, 10_000))
def test_tampering_fails_authentication(clear: bytes, flip: int) -> None:
    """Any flipped bit, a wrong key or a cut frame is a TunnelAuthError."""
    key = b"k" * 16
    frame = bytearray(encrypt(key, clear))
    frame[8 + flip % (len(frame) - 8)] ^= 1
    with pytest.raises(TunnelAuthError):
        decrypt(key, bytes(frame))
    with pytest.raises(TunnelAuthError):
        decrypt(b"x" * 16, encrypt(key, clear))
    with pytest.raises(TunnelAuthError):
        decrypt(key, encrypt(key, clear)[:-1])


def test_ids_and_hashes() -> None:
    """The tunnel id is symmetric; a tunnel hash names its destination in its last 16 bytes
    and differs per call in its first 4."""
    a, b = GxsId(b"\x01" * 16), GxsId(b"\x02" * 16)
    assert tunnel_id(a, b) == tunnel_id(b, a) == GxsId(hashlib.sha1(a + b).digest()[:16])
    hashes = {random_hash(b) for _ in range(8)}
    assert len(hashes) > 1
    assert all(isinstance(h, Sha1Hash) and destination_of(h) == b for h in hashes)
