# -*- test-case-name: tests.test_pgp_packets -*-
"""Hypothesis strategies for the OpenPGP packet schemas and the certificate section framing.

Values are the shapes the schemas parse to and build from, so a round trip is
``schema.parse(schema.build(value)) == value``.
"""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st

from pqi.identity.pgp_packets import MAX_MPI_BITS, RawPacket, Subpacket
from pqi.wire.address import NetAddress

__all__ = ["lengths", "packets", "packet_lists", "mpis", "key_bodies", "subpackets",
           "signature_bodies", "sections", "ipv4_addresses"]

#: Packet bodies stay small: the framing, not the payload, is under test (one case in the
#: tests covers the 5-octet length form explicitly).
_BODY = st.binary(max_size=300)


def lengths() -> st.SearchStrategy[int]:
    """Every length an OpenPGP new-format length can carry, boundaries favoured."""
    return st.one_of(st.sampled_from([0, 191, 192, 8383, 8384, 2**32 - 1]),
                     st.integers(0, 2**32 - 1))


@st.composite
def packets(draw: st.DrawFn) -> RawPacket:
    """A packet as `pqi.identity.pgp_packets.Packet` parses it at offset 0."""
    body = draw(_BODY)
    header = 2 if len(body) < 192 else 3
    return RawPacket(draw(st.integers(0, 63)), body, 0, header)


def packet_lists() -> st.SearchStrategy[list[tuple[int, bytes]]]:
    return st.lists(st.tuples(st.integers(0, 63), _BODY), max_size=6)


def mpis() -> st.SearchStrategy[int]:
    return st.one_of(st.integers(0, 2**64), st.integers(0, 2**MAX_MPI_BITS - 1))


def key_bodies() -> st.SearchStrategy[dict[str, int]]:
    """A v4 RSA public-key body's fields (any modulus: the schema does not judge RSA)."""
    return st.fixed_dictionaries({
        "version": st.just(4), "created": st.integers(0, 2**32 - 1),
        "algorithm": st.sampled_from([1, 3]), "n": mpis(), "e": st.integers(0, 2**32)})


def subpackets() -> st.SearchStrategy[Subpacket]:
    return st.builds(Subpacket, st.integers(0, 127), st.binary(max_size=260), st.booleans())


def signature_bodies() -> st.SearchStrategy[dict[str, object]]:
    """A v4 signature body's fields; areas are raw bytes (any bytes: the areas are opaque to
    `SignatureBody`, `Subpackets` reads them)."""
    return st.fixed_dictionaries({
        "version": st.just(4), "sig_type": st.integers(0, 255),
        "pubkey_algo": st.sampled_from([1, 3]), "hash_algo": st.integers(0, 255),
        "hashed": st.binary(max_size=80), "unhashed": st.binary(max_size=80),
        "left16": st.binary(min_size=2, max_size=2), "value": mpis()})


def sections() -> st.SearchStrategy[tuple[int, bytes]]:
    return st.tuples(st.integers(0, 255), _BODY)


def ipv4_addresses() -> st.SearchStrategy[NetAddress]:
    return st.builds(NetAddress, st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address),
                     st.integers(0, 65535))
