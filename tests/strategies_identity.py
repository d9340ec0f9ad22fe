# -*- test-case-name: tests.test_pgp -*-
"""Hypothesis strategies for identity values: signatures, text certificates, short invites."""

from __future__ import annotations

import ipaddress
import struct

from hypothesis import strategies as st

from pqi.identity.pgp import Signature, encode_length
from pqi.wire.address import NetAddress
from pqi.wire.fields import PgpFingerprint, SslId

__all__ = ["subpacket_areas", "signatures", "ipv4_addresses", "ssl_ids", "fingerprints",
           "text_values"]


@st.composite
def subpacket_areas(draw: st.DrawFn) -> bytes:
    """A well-formed subpacket area: creation time, issuer, fingerprint or arbitrary kinds."""
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from([2, 16, 33, 25, 30, 0x80 | 27]))
        size = {2: 4, 16: 8, 33: 21}.get(kind)
        data = draw(st.binary(min_size=size or 0, max_size=size or 40))
        if kind == 33:
            data = b"\x04" + data[1:]
        parts.append(encode_length(len(data) + 1) + bytes([kind]) + data)
    return b"".join(parts)


@st.composite
def signatures(draw: st.DrawFn) -> Signature:
    """A v4 RSA signature packet as a parsed value (any type, hash and subpackets)."""
    hashed = draw(subpacket_areas())
    unhashed = draw(subpacket_areas())
    value = draw(st.integers(0, 2**4096 - 1))
    body = (bytes([4, draw(st.sampled_from([0x00, 0x01, 0x13])), draw(st.sampled_from([1, 3])),
                   draw(st.sampled_from([2, 8, 10]))])
            + struct.pack(">H", len(hashed)) + hashed + struct.pack(">H", len(unhashed))
            + unhashed + draw(st.binary(min_size=2, max_size=2))
            + struct.pack(">H", value.bit_length())
            + value.to_bytes((value.bit_length() + 7) // 8, "big"))
    return Signature.from_body(body)


def ipv4_addresses() -> st.SearchStrategy[NetAddress]:
    """An IPv4 address and port, as text certificates carry them."""
    return st.builds(NetAddress, st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address),
                     st.integers(0, 65535))


def ssl_ids() -> st.SearchStrategy[SslId]:
    return st.binary(min_size=16, max_size=16).map(SslId)


def fingerprints() -> st.SearchStrategy[PgpFingerprint]:
    return st.binary(min_size=20, max_size=20).map(PgpFingerprint)


def text_values(max_size: int = 80) -> st.SearchStrategy[str]:
    """Names, host names and URLs: any text without NUL (RetroShare keeps them as C strings)."""
    return st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
                   max_size=max_size)
