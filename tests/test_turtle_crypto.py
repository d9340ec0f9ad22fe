"""The end-to-end tunnel crypto codec and the tunnel id helpers: hypothesis round trips,
refusal of anything malformed or forged, and the Poly1305 variant RetroShare also accepts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pqi.wire.errors import DecodeError
from pqi.wire.fields import Sha1Hash, SslId
from services.turtle import crypto, fileprint

keys = st.binary(min_size=32, max_size=32)
nonces = st.binary(min_size=12, max_size=12)
formats = st.sampled_from([crypto.FORMAT_SHA256, crypto.FORMAT_POLY1305])


@given(key=keys, clear=st.binary(max_size=2048), nonce=nonces, fmt=formats)
def test_round_trip(key, clear, nonce, fmt):
    """encrypt then decrypt gives the clear bytes back; the frame is magic, format, version,
    nonce, little-endian size, ciphertext and a 16-byte tag."""
    sealed = crypto.encrypt(key, clear, nonce=nonce, fmt=fmt)
    assert sealed[:4] == bytes((0xAE, 0xAD, fmt, 0x01))
    assert sealed[4:16] == nonce
    assert int.from_bytes(sealed[16:20], "little") == len(clear)
    assert len(sealed) == len(clear) + crypto.OVERHEAD
    assert crypto.decrypt(key, sealed) == clear


@given(key=keys, clear=st.binary(min_size=1, max_size=256), fmt=formats,
       where=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_is_refused(key, clear, fmt, where, bit):
    """A single flipped bit anywhere in the frame is refused with a DecodeError."""
    sealed = bytearray(crypto.encrypt(key, clear, fmt=fmt))
    sealed[where % len(sealed)] ^= 1 << bit
    with pytest.raises(DecodeError):
        crypto.decrypt(key, bytes(sealed))


@given(key=keys, data=st.binary(max_size=200))
def test_arbitrary_bytes_are_refused(key, data):
    """Random bytes never decrypt: TunnelCryptoError (a DecodeError), nothing else."""
    with pytest.raises(crypto.TunnelCryptoError):
        crypto.decrypt(key, data)


def test_wrong_key_and_unknown_format_refused():
    """Another file's key fails authentication; encrypting with an unknown format is an
    error of the caller."""
    sealed = crypto.encrypt(bytes(32), b"item", nonce=bytes(12))
    with pytest.raises(crypto.TunnelCryptoError):
        crypto.decrypt(b"\x01" * 32, sealed)
    with pytest.raises(ValueError):
        crypto.encrypt(bytes(32), b"x", fmt=3)
    with pytest.raises(ValueError):
        crypto.encrypt(bytes(32), b"x", nonce=b"short")


def test_key_and_hash_of_hash():
    """The key is SHA-256 of the 20 hash bytes and H(H) their SHA-1 (not of the hex)."""
    import hashlib
    h = Sha1Hash(bytes(range(20)))
    assert crypto.file_key(h) == hashlib.sha256(bytes(range(20))).digest()
    assert bytes(crypto.hash_of_hash(h)) == hashlib.sha1(bytes(range(20))).digest()


@given(tid=st.integers(min_value=0, max_value=0xFFFFFFFF))
def test_virtual_peer_round_trip(tid):
    """A tunnel id survives the trip through its virtual peer id."""
    assert fileprint.tunnel_of_virtual_peer(fileprint.virtual_peer_id(tid)) == tid


@given(h=st.binary(min_size=20, max_size=20), own=st.binary(min_size=16, max_size=16),
       seed=st.integers(min_value=0, max_value=0xFFFFFFFF), b=st.booleans())
def test_print_is_a_u32_and_shifts_with_a_small_seed_change(h, own, seed, b):
    """Prints are u32 and wrap modulo 2^32 like RetroShare's; the first step adds the seed,
    so seeds congruent modulo 2^32 give the same print."""
    p = fileprint.personal_file_print(Sha1Hash(h), SslId(own), seed, b)
    assert 0 <= p <= 0xFFFFFFFF
    assert fileprint.personal_file_print(Sha1Hash(h), SslId(own), seed + (1 << 32), b) == p
