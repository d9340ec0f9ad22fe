# -*- test-case-name: tests.test_tlv -*-
"""Shared hypothesis strategies for wire values.

One module so that every codec test draws ids, strings and TLV values the same way.  Other areas
add theirs in their own clearly marked section below, or in ``tests/strategies_<area>.py``.
"""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st

from pqi.wire.address import AddressInfo, NetAddress
from pqi.wire.fields import (
    FixedId,
    GxsId,
    GxsMessageId,
    PgpFingerprint,
    PgpId,
    Sha1Hash,
    Sha256Hash,
    SslId,
)
from pqi.wire.tlvvalues import FileData, FileItem, FileSet, KeySignature

__all__ = [
    "ID_TYPES", "ids", "id_sets", "u8s", "u16s", "u32s", "u64s",
    "wire_text", "clean_text", "raw_bytes",
    "net_addresses", "optional_addresses", "address_infos", "file_items", "file_sets",
    "file_datas", "key_signatures",
]

# --- wire core (pqi.wire.fields / pqi.wire.tlv / pqi.wire.tlvvalues) --------------------------

#: Every fixed-size id class, so a test can be parametrised over all id sizes.
ID_TYPES: tuple[type[FixedId], ...] = (SslId, PgpId, PgpFingerprint, Sha1Hash, Sha256Hash, GxsId,
                                       GxsMessageId)

u8s = st.integers(0, 0xFF)
u16s = st.integers(0, 0xFFFF)
u32s = st.integers(0, 0xFFFF_FFFF)
u64s = st.integers(0, 0xFFFF_FFFF_FFFF_FFFF)


def ids(idtype: type[FixedId]) -> st.SearchStrategy[FixedId]:
    """Random ids of ``idtype`` (null id included now and then)."""
    return st.binary(min_size=idtype.LENGTH, max_size=idtype.LENGTH).map(idtype)


def id_sets(idtype: type[FixedId], max_size: int = 8) -> st.SearchStrategy[frozenset[FixedId]]:
    """Sets of ids, as `pqi.wire.tlv.IdSetTLV` decodes them."""
    return st.frozensets(ids(idtype), max_size=max_size)


def _without_markers(text: str) -> bool:
    from pqi.wire.tlv import sanitise_string
    raw = text.encode("utf-8", "surrogateescape")
    return sanitise_string(0x0057, raw) == raw


#: Any text a peer could send, including lone surrogates standing for bytes that are not UTF-8
#: (``surrogateescape``); may contain bomb markers, so only fit for non-sanitised codecs.
raw_bytes = st.binary(max_size=64)
wire_text = raw_bytes.map(lambda b: b.decode("utf-8", "surrogateescape"))

#: Text that survives a string TLV unchanged: no bomb marker (plain or %-encoded) and, because
#: name-like types blank them, no control characters 0x01-0x1F.
clean_text = st.one_of(
    st.text(st.characters(min_codepoint=0x20, exclude_categories=("Cs",)), max_size=24),
    raw_bytes.filter(lambda b: not any(1 <= x < 0x20 for x in b)).map(
        lambda b: b.decode("utf-8", "surrogateescape")),
).filter(_without_markers)

ipv4 = st.builds(ipaddress.IPv4Address, u32s)
ipv6 = st.builds(ipaddress.IPv6Address, st.integers(0, 2**128 - 1))
net_addresses = st.builds(NetAddress, st.one_of(ipv4, ipv6), u16s)
optional_addresses = st.one_of(st.none(), net_addresses)
address_infos = st.builds(AddressInfo, optional_addresses, u64s, u32s)

file_items = st.builds(
    FileItem,
    size=u64s,
    hash=ids(Sha1Hash),
    name=clean_text,
    path=clean_text,
    pop=u32s,
    age=u32s,
    piece_size=u32s,
    hash_set=id_sets(Sha1Hash, 4),
)
file_sets = st.builds(FileSet, st.lists(file_items, max_size=3).map(tuple), clean_text,
                      clean_text)
file_datas = st.builds(FileData, file_items, u64s, st.binary(max_size=512))
key_signatures = st.builds(KeySignature, ids(GxsId), st.binary(max_size=64))
