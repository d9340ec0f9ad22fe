# -*- test-case-name: tests.test_errors -*-
"""The DecodeError family: one ``except`` for every bad input, and errors that say where."""

from __future__ import annotations

import struct

import construct as c
import pytest

import pqi
from pqi.wire import tlvtypes as T  # noqa: N812  (as the core modules spell it)
from pqi.wire.errors import (
    DecodeError,
    EncodeError,
    FramingError,
    InvalidValueError,
    LimitExceededError,
    QueueFullError,
    TrailingBytesError,
    TruncatedError,
)
from pqi.wire.fields import BoundedArray, RsString, Sha1Hash, u8, u32
from pqi.wire.item import PQItem
from pqi.wire.tlv import StringTLV
from pqi.wire.tlvvalues import FileItem, FileItemTLV


class _ErrProbe(PQItem):
    """u32, plain string, file item TLV, byte array: one field of each family."""

    SERVICE = 0xFF01
    SUBTYPE = 0x01
    BODY = c.Struct("n" / u32, "s" / RsString, "f" / FileItemTLV, "a" / BoundedArray(u8))
    n: int
    s: str
    f: FileItem
    a: list[int]


def _item() -> bytes:
    return pqi.encode(_ErrProbe(1, "ab", FileItem(3, Sha1Hash(bytes(20)), name="xy"), [7]))


def test_family() -> None:
    """Every decoder error is a DecodeError; encode and queue errors are not."""
    for cls in (TruncatedError, LimitExceededError, InvalidValueError, TrailingBytesError,
                FramingError):
        assert issubclass(cls, DecodeError)
    assert issubclass(EncodeError, ValueError) and not issubclass(EncodeError, DecodeError)
    assert not issubclass(QueueFullError, DecodeError)


def test_str_follows_offset() -> None:
    """The message is computed on demand, so an outer layer shifting the offset shows in it."""
    e = TruncatedError("needed 4 bytes", field="x", offset=3)
    assert str(e) == "needed 4 bytes (field x, offset 3)"
    e.offset = 11
    assert str(e) == "needed 4 bytes (field x, offset 11)"
    assert repr(e) == "TruncatedError('needed 4 bytes (field x, offset 11)')"
    assert str(DecodeError("bare")) == "bare"


def test_limit_error_fields() -> None:
    """LimitExceededError names the limit, the claimed value and the maximum."""
    e = LimitExceededError("MAX_CONTAINER_COUNT", 5, 4, field="a", offset=0)
    assert (e.limit, e.value, e.maximum) == ("MAX_CONTAINER_COUNT", 5, 4)
    assert "MAX_CONTAINER_COUNT exceeded: 5 > 4" in str(e)


class TestOffsetsInItems:
    """Offsets count from the first byte of the item, header included."""

    def test_layout(self) -> None:
        """The probe item's layout that the offsets below rely on."""
        raw = _item()
        # header 8 | n 4 | s 4+2 | FileItem 6+8+20 + name 6+2 | array 4+1
        assert len(raw) == 8 + 4 + 6 + 42 + 5
        assert raw[18:20] == struct.pack(">H", T.FILEITEM)

    def test_truncated_string(self) -> None:
        """A string length past the end points at the length field (offset 12)."""
        raw = bytearray(_item())
        raw[12:16] = struct.pack(">I", 1000)
        with pytest.raises(TruncatedError) as e:
            pqi.decode(bytes(raw))
        assert e.value.offset == 12 and e.value.field.endswith("s")

    def test_name_tlv_in_file_item(self) -> None:
        """A bad TLV length nested in the FileItem points into the item (offset 18+34+2)."""
        raw = bytearray(_item())
        name_at = 18 + 6 + 8 + 20
        raw[name_at + 2:name_at + 6] = struct.pack(">I", 3)
        with pytest.raises(InvalidValueError) as e:
            pqi.decode(bytes(raw))
        assert e.value.offset == name_at + 2
        assert e.value.field.endswith("f")

    def test_wrong_tlv_type(self) -> None:
        """A FileItem slot holding another TLV type is refused at that TLV (offset 18)."""
        raw = bytearray(_item())
        raw[18:20] = b"\x10\x01"
        with pytest.raises(InvalidValueError) as e:
            pqi.decode(bytes(raw))
        assert e.value.offset == 18

    def test_array_count(self) -> None:
        """An array count over MAX_CONTAINER_COUNT points at the count (offset 60)."""
        raw = bytearray(_item())
        raw[60:64] = b"\xff\xff\xff\xff"
        with pytest.raises(LimitExceededError) as e:
            pqi.decode(bytes(raw))
        assert (e.value.offset, e.value.limit) == (60, "MAX_CONTAINER_COUNT")

    def test_trailing(self) -> None:
        """A body longer than its fields: TrailingBytesError where the extra bytes start."""
        raw = bytearray(_item() + b"\x00\x00")
        raw[4:8] = struct.pack(">I", len(raw))
        with pytest.raises(TrailingBytesError) as e:
            pqi.decode(bytes(raw))
        assert e.value.offset == len(raw) - 2

    def test_truncated_fixed_field(self) -> None:
        """An item cut inside its first u32 reports offset 8, the u32's start."""
        raw = pqi.encode(pqi.UnknownItem(0xFF01, 0x01, b"\x00\x00"))
        with pytest.raises(TruncatedError) as e:
            pqi.decode(raw)
        assert e.value.offset == 8

    def test_header_size_mismatch(self) -> None:
        """A buffer shorter or longer than the header's size fails at the size field."""
        raw = _item()
        with pytest.raises(TruncatedError) as e:
            pqi.decode(raw[:-1])
        assert e.value.offset == 4
        with pytest.raises(TrailingBytesError):
            pqi.decode(raw + b"\x00")


def test_string_tlv_errors_are_decode_errors() -> None:
    """A string TLV cut in its header is a TruncatedError at offset 0."""
    with pytest.raises(TruncatedError) as e:
        StringTLV(T.STR_NAME).parse(b"\x00\x51\x00")
    assert e.value.offset == 0


def test_core_construct_inside_tlv_is_converted() -> None:
    """A core construct (c.Int32ub) inside a TLV still fails as a DecodeError, offset shifted."""
    from pqi.wire.tlv import TLV
    con = c.Struct("pad" / u8, "t" / TLV(0x1234, c.Struct("x" / c.Int32ub)))
    with pytest.raises(TruncatedError) as e:
        con.parse(b"\x00\x12\x34\x00\x00\x00\x08\x00\x00")
    assert e.value.offset is not None and e.value.offset >= 7
