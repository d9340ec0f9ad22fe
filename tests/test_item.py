# -*- test-case-name: tests.test_item -*-
"""PQItem, the registry and whole-item encode/decode (`pqi.wire.item`)."""

from __future__ import annotations

import io
import struct
from typing import Any

import construct as c
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pqi
from pqi.items.heartbeat import HeartbeatItem
from pqi.wire import tlvtypes as T  # noqa: N812  (as the core modules spell it)
from pqi.wire.address import AddressSetTLV
from pqi.wire.errors import DecodeError, EncodeError, InvalidValueError, TrailingBytesError
from pqi.wire.fields import (
    Bool,
    BoundedArray,
    IdField,
    RawMemory,
    RsString,
    SslId,
    u8,
    u16,
    u32,
    u64,
)
from pqi.wire.item import (
    PKT_VERSION_SERVICE,
    ItemHeader,
    PQItem,
    UnknownItem,
    _check_schema,
    _compiled,
    item_class,
    parse_header,
    registered,
)
from pqi.wire.tlv import StringTLV
from pqi.wire.tlvvalues import FileDataTLV, FileSet, FileSetTLV, KeySignatureTLV
from tests.strategies import address_infos, file_datas, file_sets, ids, key_signatures, u32s

HEARTBEAT = bytes.fromhex("02 0016 01 00000008")


class _Mixed(PQItem):
    """A body with one of every bounded construct family, for compiled-vs-core checks."""

    SERVICE = 0xFF02
    SUBTYPE = 0x01
    BODY = c.Struct(
        "flag" / Bool, "small" / u8, "port" / u16, "count" / u32, "big" / u64,
        "peer" / IdField(SslId), "text" / RsString, "blob" / RawMemory(),
        "nums" / BoundedArray(u32), "name" / StringTLV(T.STR_NAME),
        "files" / FileSetTLV, "addrs" / AddressSetTLV,
    )
    flag: bool
    small: int
    port: int
    count: int
    big: int
    peer: SslId
    text: str
    blob: bytes
    nums: list[int]
    name: str
    files: FileSet
    addrs: tuple[Any, ...]


class _Data(PQItem):
    """A FileData + KeySignature body: the nested compound shapes."""

    SERVICE = 0xFF02
    SUBTYPE = 0x02
    BODY = c.Struct("data" / FileDataTLV, "sig" / KeySignatureTLV)
    data: Any
    sig: Any


class TestHeader:
    def test_heartbeat_bytes(self) -> None:
        """A heartbeat is the bare header 02 0016 01 00000008 (real: captured every 5 s)."""
        assert pqi.encode(HeartbeatItem()) == HEARTBEAT
        assert pqi.decode(HEARTBEAT) == HeartbeatItem()

    def test_parse_header(self) -> None:
        """Version, service, subtype and total size; pack is the inverse."""
        h = parse_header(HEARTBEAT)
        assert h == ItemHeader(PKT_VERSION_SERVICE, 0x0016, 0x01, 8)
        assert h.pack() == HEARTBEAT

    def test_short_header(self) -> None:
        """Fewer than 8 bytes cannot be a header."""
        with pytest.raises(DecodeError) as e:
            parse_header(HEARTBEAT[:7])
        assert e.value.offset == 0

    def test_priority_and_registry(self) -> None:
        """Registered classes are found by (service, subtype); QoS priority is per class."""
        assert item_class(0x0016, 0x01) is HeartbeatItem
        assert registered()[(0x0016, 0x01)] is HeartbeatItem
        assert HeartbeatItem.PRIORITY == 8


class TestUnknown:
    def test_unregistered_kind(self) -> None:
        """An unregistered (service, subtype) decodes to UnknownItem holding the raw body."""
        raw = bytes.fromhex("02 fe01 07 0000000b 010203")
        item = pqi.decode(raw)
        assert item == UnknownItem(0xFE01, 0x07, b"\x01\x02\x03")
        assert (item.SERVICE, item.SUBTYPE) == (0xFE01, 0x07)
        assert pqi.encode(item) == raw
        assert repr(item) == "UnknownItem(service=0xfe01, subtype=0x07, body=3 bytes)"

    def test_other_version(self) -> None:
        """A known kind with another header version is not interpreted either."""
        raw = bytes.fromhex("01 0016 01 00000008")
        assert pqi.decode(raw) == UnknownItem(0x0016, 0x01, b"", version=1)
        assert pqi.encode(pqi.decode(raw)) == raw


class TestSchemaCheck:
    @pytest.mark.parametrize("con", [
        c.Bytes(4), c.GreedyBytes, c.Array(2, u8), c.PrefixedArray(c.Int32ub, u8),
        c.GreedyRange(u8), c.VarInt, c.Compressed(c.GreedyBytes, "zlib"),
        c.Struct("x" / c.Bytes(4)), c.Sequence(u8, c.GreedyBytes),
    ], ids=["Bytes", "GreedyBytes", "Array", "PrefixedArray", "GreedyRange", "VarInt",
            "Compressed", "nested-Struct", "nested-Sequence"])
    def test_unbounded_refused(self, con: c.Construct) -> None:
        """Constructs that could loop or read short on hostile input are refused."""
        with pytest.raises(TypeError):
            _check_schema(con, "Probe")

    def test_refused_at_class_definition(self) -> None:
        """Declaring an item with such a body fails at import time, not on the first packet."""
        with pytest.raises(TypeError):
            class _Bad(PQItem):
                SERVICE = 0xFF03
                SUBTYPE = 0x01
                BODY = c.Struct("x" / c.GreedyBytes)
                x: bytes
        assert item_class(0xFF03, 0x01) is None

    def test_allowed(self) -> None:
        """Our bounded constructs and core containers/integers pass."""
        _check_schema(_Mixed.BODY, "Mixed")
        _check_schema(c.Struct("a" / c.Int32ub, "b" / c.Sequence(c.Int8ub)), "Plain")

    def test_fields_must_match(self) -> None:
        """BODY field names must be exactly the dataclass fields."""
        with pytest.raises(TypeError):
            class _Mismatch(PQItem):
                SERVICE = 0xFF03
                SUBTYPE = 0x02
                BODY = c.Struct("a" / u32)
                b: int

    def test_duplicate_kind(self) -> None:
        """Two classes cannot claim the same (service, subtype)."""
        with pytest.raises(TypeError):
            class _Twin(PQItem):
                SERVICE = 0x0016
                SUBTYPE = 0x01
        assert item_class(0x0016, 0x01) is HeartbeatItem


class TestEncodeDecode:
    def test_encode_error(self) -> None:
        """A value that does not fit its field is our bug: EncodeError, not a construct error."""
        with pytest.raises(EncodeError):
            pqi.encode(_Data(data=None, sig=None))

    def test_trailing_body(self) -> None:
        """Bytes after the last field are TrailingBytesError at their offset."""
        raw = pqi.encode(HeartbeatItem())[:4] + struct.pack(">I", 9) + b"\x00"
        with pytest.raises(TrailingBytesError) as e:
            pqi.decode(raw)
        assert e.value.offset == 8

    def test_memoryview_input(self) -> None:
        """decode takes any bytes-like buffer."""
        assert pqi.decode(memoryview(bytearray(HEARTBEAT))) == HeartbeatItem()


mixed = st.builds(
    _Mixed, st.booleans(), st.integers(0, 255), st.integers(0, 0xFFFF), u32s,
    st.integers(0, 2**64 - 1), ids(SslId), st.text(max_size=10), st.binary(max_size=20),
    st.lists(u32s, max_size=4), st.text(st.characters(min_codepoint=0x20,
                                                      exclude_categories=("Cs",)), max_size=8),
    file_sets, st.lists(address_infos, max_size=2).map(tuple))


@pytest.mark.slow
@given(mixed)
def test_round_trip_mixed(item: _Mixed) -> None:
    """An item with every field family survives encode/decode."""
    assert pqi.decode(pqi.encode(item)) == item


@pytest.mark.slow
@given(file_datas, key_signatures)
def test_round_trip_data(data: Any, sig: Any) -> None:
    """An item with FileData and KeySignature survives encode/decode."""
    item = _Data(data, sig)
    assert pqi.decode(pqi.encode(item)) == item


def _classes() -> list[type[PQItem]]:
    return sorted(registered().values(), key=lambda k: (k.SERVICE, k.SUBTYPE))


def _agree(cls: type[PQItem], body: bytes) -> None:
    """The compiled fast path never accepts what the core parser refuses, nor differs."""
    stream = io.BytesIO(body)
    try:
        fast = _compiled(cls).parse_stream(stream)
    except Exception:  # noqa: BLE001  (the fast path may fail any way; the core decides)
        fast = None
    try:
        core: Any = cls._decode_body_core(body)
    except DecodeError as e:
        core = e
    if fast is not None and stream.tell() == len(body):
        assert not isinstance(core, DecodeError), (cls.__name__, body.hex(), core)
        assert core == cls(**{n: fast[n] for n in cls._FIELDS})
    via_public: Any
    try:
        via_public = cls.decode_body(body)
    except DecodeError as e:
        via_public = e
    if isinstance(core, DecodeError):
        assert type(via_public) is type(core) and via_public.offset == core.offset
    else:
        assert via_public == core


@pytest.mark.slow
@pytest.mark.parametrize("cls", _classes(), ids=lambda k: f"{k.__name__}")
@given(body=st.binary(max_size=96))
def test_compiled_and_core_agree_random(cls: type[PQItem], body: bytes) -> None:
    """On random bodies, decode_body (compiled first) and the core parser agree exactly."""
    _agree(cls, body)


@pytest.mark.slow
@given(item=mixed, cut=st.integers(0, 400), flip=st.integers(0, 400), byte=st.integers(0, 255))
def test_compiled_and_core_agree_mutated(item: _Mixed, cut: int, flip: int, byte: int) -> None:
    """On valid bodies cut short or with one byte changed, both paths agree."""
    body = bytearray(item.encode_body())
    if body:
        body[flip % len(body)] = byte
    _agree(_Mixed, bytes(body[: len(body) - cut % (len(body) + 1)]))


@pytest.mark.slow
@given(data=st.binary(max_size=200))
def test_decode_random_bytes(data: bytes) -> None:
    """pqi.decode on any bytes returns an item or raises DecodeError, nothing else."""
    try:
        out = pqi.decode(data)
    except DecodeError:
        return
    assert isinstance(out, (PQItem, UnknownItem))


@pytest.mark.slow
@pytest.mark.parametrize("cls", _classes(), ids=lambda k: f"{k.__name__}")
@given(body=st.binary(max_size=200))
def test_decode_random_body_each_kind(cls: type[PQItem], body: bytes) -> None:
    """Random bytes after a valid header of each registered kind: an item or a DecodeError."""
    raw = struct.pack(">BHBI", cls.VERSION, cls.SERVICE, cls.SUBTYPE, 8 + len(body)) + body
    try:
        out = pqi.decode(raw)
    except DecodeError:
        return
    assert type(out) is cls
    assert pqi.encode(out) is not None


def test_wrong_first_tlv() -> None:
    """A body that starts with the wrong TLV type fails at offset 8, the body's first byte."""
    with pytest.raises(InvalidValueError) as e:
        pqi.decode(pqi.encode(pqi.UnknownItem(0xFF02, 0x02, bytes.fromhex("1001 00000006"))))
    assert e.value.offset == 8
