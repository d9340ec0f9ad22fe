# -*- test-case-name: tests.test_fuzz_corpus -*-
"""Fuzz the TLV and field constructs on their own, outside any item.

The first input byte picks a construct from `TARGETS` (modulo its length); the rest is parsed by
it.  Only `DecodeError` may come out of a parse; a value that parses must build again and parse
back to itself (sanitised strings included: sanitising is idempotent).
"""

from __future__ import annotations

from tools.fuzz.harness import fuzz, instrumented

with instrumented():
    import construct as c

    from pqi.wire import tlvtypes as T  # noqa: N812
    from pqi.wire.address import AddressInfoTLV, AddressSetTLV, AddressTLV
    from pqi.wire.errors import DecodeError
    from pqi.wire.fields import (
        BoundedArray,
        GxsId,
        IdField,
        PgpId,
        RawMemory,
        RsString,
        Sha1Hash,
        SslId,
        u16,
        u32,
    )
    from pqi.wire.tlv import (
        TLV,
        BinaryTLV,
        IdSetTLV,
        MapTLV,
        StringTLV,
        TLVList,
        UInt32TLV,
        UInt64TLV,
    )
    from pqi.wire.tlvvalues import FileDataTLV, FileItemTLV, FileSetTLV, KeySignatureTLV

__all__ = ["TARGETS", "one_input"]

#: The constructs, in a fixed order: a corpus file's first byte indexes this tuple, so append
#: new ones at the end to keep existing seeds meaningful.
TARGETS: tuple[c.Construct, ...] = (
    StringTLV(T.STR_NAME),
    StringTLV(T.STR_MSG),
    UInt32TLV(T.UINT32_POP),
    UInt64TLV(T.UINT64_OFFSET),
    BinaryTLV(T.BIN_FILEDATA),
    IdSetTLV(T.PEERSET, SslId),
    IdSetTLV(T.PGPIDSET, PgpId),
    IdSetTLV(T.HASHSET, Sha1Hash),
    IdSetTLV(T.GXSIDSET, GxsId),
    TLVList(0x1100, StringTLV(T.STR_VALUE)),
    FileItemTLV,
    FileSetTLV,
    FileDataTLV,
    AddressTLV,
    AddressInfoTLV,
    AddressSetTLV,
    KeySignatureTLV,
    # ServiceInfo's map: every TLV type 0x0001, value = name, id, four u16 versions.
    MapTLV(0x0001, 0x0001, UInt32TLV(0x0001),
           TLV(0x0001, c.Struct("name" / RsString, "service" / u32, "major" / u16,
                                "minor" / u16, "min_major" / u16, "min_minor" / u16))),
    RsString,
    RawMemory(),
    BoundedArray(u32),
    BoundedArray(RsString, min_size=4),
    BoundedArray(IdField(SslId)),
)


def one_input(data: bytes) -> None:
    """Parse ``data[1:]`` with the construct ``data[0]`` picks; only DecodeError may escape."""
    if not data:
        return
    con = TARGETS[data[0] % len(TARGETS)]
    try:
        value = con.parse(data[1:])
    except DecodeError:
        return
    again = con.parse(con.build(value))
    if again != value:
        raise AssertionError(f"{con!r}: {value!r} rebuilt as {again!r}")


if __name__ == "__main__":
    fuzz(one_input)
