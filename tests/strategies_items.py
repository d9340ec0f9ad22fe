"""Hypothesis strategies for every registered item class, derived from its body schema.

`for_construct` maps each building block of `pqi.wire.fields`, `pqi.wire.compound`,
`pqi.wire.tlv` and
`pqi.wire.tlvvalues` to a strategy of the values it encodes, so that `items(cls)` needs no per-class
code and a new item class is covered the moment it is registered.  Values are those that survive
a round trip unchanged: strings avoid what RetroShare's reader rewrites (control characters,
XML/SVG bomb markers), sizes stay small.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import construct as c
from hypothesis import strategies as st

from pqi.wire import address, tlvvalues
from pqi.wire.address import AddressInfo, NetAddress
from pqi.wire.fields import FixedId
from pqi.wire.item import PQItem
from pqi.wire.tlvvalues import FileData, FileSet, KeySignature

__all__ = ["for_construct", "items", "safe_text", "ids", "net_addresses"]

_BAD_SUBSTRINGS = ("PD94bW", "PHN2Zy")


def safe_text(max_size: int = 24) -> st.SearchStrategy[str]:
    """Text that a string TLV reads back unchanged (any Unicode but controls, ``<``, ``%``)."""
    chars = st.characters(min_codepoint=0x20, blacklist_categories=("Cs",),
                          blacklist_characters="<%")
    return st.text(chars, max_size=max_size).filter(
        lambda s: not any(b in s for b in _BAD_SUBSTRINGS))


def ids(idtype: type[FixedId]) -> st.SearchStrategy[FixedId]:
    return st.binary(min_size=idtype.LENGTH, max_size=idtype.LENGTH).map(idtype)


def net_addresses() -> st.SearchStrategy[NetAddress]:
    hosts = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6))
    return st.builds(NetAddress, hosts, st.integers(0, 0xFFFF))


def _ints(nbytes: int) -> st.SearchStrategy[int]:
    return st.integers(0, 2 ** (8 * nbytes) - 1)


_u32 = _ints(4)
_file_items = st.builds(
    tlvvalues.FileItem, size=_ints(8), hash=ids(tlvvalues.Sha1Hash), name=safe_text(),
    path=safe_text(), pop=_u32, age=_u32, piece_size=_u32,
    hash_set=st.frozensets(ids(tlvvalues.Sha1Hash), max_size=3))
_address_infos = st.builds(AddressInfo, st.none() | net_addresses(), _ints(8), _u32)
_GxsId = tlvvalues.GxsId

#: Values of the shared compound constructs, by identity.
_BY_IDENTITY: dict[int, st.SearchStrategy[Any]] = {
    id(tlvvalues.FileItemTLV): _file_items,
    id(tlvvalues.FileSetTLV): st.builds(
        FileSet, st.lists(_file_items, max_size=3).map(tuple), safe_text(), safe_text()),
    id(tlvvalues.FileDataTLV): st.builds(FileData, _file_items, _ints(8),
                                         st.binary(max_size=64)),
    id(address.AddressTLV): st.none() | net_addresses(),
    id(address.AddressInfoTLV): _address_infos,
    id(address.AddressSetTLV): st.lists(_address_infos, max_size=3).map(tuple),
    id(tlvvalues.KeySignatureTLV): st.builds(KeySignature, ids(_GxsId),
                                             st.binary(max_size=64)),
}


def _dataclass_of(factory: type, subcons: Any) -> st.SearchStrategy[Any]:
    return st.builds(factory, **{sc.name: for_construct(sc) for sc in subcons if sc.name})


def for_construct(con: c.Construct) -> st.SearchStrategy[Any]:
    """A strategy for the values ``con`` builds (and parses back equal)."""
    known = _BY_IDENTITY.get(id(con))
    if known is not None:
        return known
    name = type(con).__name__
    if isinstance(con, c.Renamed):
        return for_construct(con.subcon)
    if isinstance(con, c.FormatField):
        return _ints(con.length)
    if name == "_Bool":
        return st.booleans()
    if name == "_RsString" or name == "_StringTLV":
        return safe_text()
    if name in ("_RawMemory", "_BinaryTLV"):
        return st.binary(max_size=64)
    if name == "_CappedBytes":
        return st.binary(max_size=min(con.maximum, 64))
    if name == "_IdField":
        return ids(con.idtype)
    if name == "_FixedTLV":
        return _ints(con.fmt.size)
    if name == "_IdSetTLV":
        return st.frozensets(ids(con.idtype), max_size=3)
    if name == "_IdCollection":
        if con.as_set:
            return st.frozensets(ids(con.idtype), max_size=3)
        return st.lists(ids(con.idtype), max_size=3).map(tuple)
    if name == "_BoundedArray":
        return st.lists(for_construct(con.subcon), max_size=3)
    if name == "_Tuple":
        return for_construct(con.subcon).map(tuple)
    if name == "_TLVList":
        return st.lists(for_construct(con.element), max_size=3)
    if name == "_MapTLV":
        key, value = con.pair.payload.subcons
        return st.dictionaries(for_construct(key), for_construct(value), max_size=3)
    if name == "TLV":
        return for_construct(con.payload)
    if name == "_FlagsField":
        return for_construct(con.subcon).map(con.flags)
    if name == "_DataclassStruct":
        return _dataclass_of(con.factory, con.subcon.subcons)
    if name == "_KeyId":
        return ids(_GxsId)
    if name == "_ChunkConstruct":
        from pqi.items.grouter import GRouterChunk
        return st.builds(GRouterChunk, _ints(4), _ints(4), st.binary(max_size=64))
    if name == "_ContactAddresses":
        from pqi.items import discovery
        fields = {f.name: f for f in dataclasses.fields(discovery.ContactAddresses)}
        clear = st.builds(discovery.ContactAddresses, **{
            n: (safe_text() if n == "dyndns" else
                st.lists(_address_infos, max_size=2).map(tuple) if n.endswith("_list") else
                st.none() | net_addresses()) for n in fields})
        return st.one_of(st.builds(discovery.HiddenAddress, safe_text(), _ints(2)), clear)
    if isinstance(con, c.ExprAdapter) and name == "ExprAdapter":
        from pqi.items import nxs
        if con.subcon.tlv_type == nxs.TLV_SECURITY_KEY:
            return _dataclass_of(nxs.NxsRsaKey, con.subcon.payload.subcons)
    raise NotImplementedError(f"no strategy for {name} {con!r}")


def items(cls: type[PQItem]) -> st.SearchStrategy[PQItem]:
    """Instances of ``cls`` with every field drawn from its schema."""
    return st.builds(cls, **{sc.name: for_construct(sc)
                             for sc in getattr(cls.BODY, "subcons", ()) if sc.name})
