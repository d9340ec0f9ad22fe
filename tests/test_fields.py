# -*- test-case-name: tests.test_fields -*-
"""Plain (non-TLV) field encodings of `pqi.wire.fields`: integers, strings, raw blocks, arrays,
ids."""

from __future__ import annotations

import construct as c
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pqi.wire.errors import EncodeError, TruncatedError
from pqi.wire.fields import (
    Bool,
    BoundedArray,
    FixedId,
    GxsId,
    IdField,
    PgpFingerprint,
    PgpId,
    RawMemory,
    RsString,
    Sha1Hash,
    SslId,
    u8,
    u16,
    u32,
    u64,
)
from tests.strategies import ID_TYPES, ids, u8s, u16s, u32s, u64s, wire_text


class TestIntegers:
    def test_big_endian_bytes(self) -> None:
        """Every integer is fixed-width big-endian, as RetroShare's rs_endian_fix writes it."""
        assert u8.build(0xAB) == b"\xab"
        assert u16.build(0x1E84) == b"\x1e\x84"
        assert u32.build(0x01020304) == b"\x01\x02\x03\x04"
        assert u64.build(0x0102030405060708) == bytes(range(1, 9))

    @pytest.mark.slow
    @given(u8s, u16s, u32s, u64s)
    def test_round_trip(self, a: int, b: int, x: int, y: int) -> None:
        """Integers survive build/parse for their whole range."""
        s = c.Struct("a" / u8, "b" / u16, "x" / u32, "y" / u64)
        out = s.parse(s.build(dict(a=a, b=b, x=x, y=y)))
        assert (out.a, out.b, out.x, out.y) == (a, b, x, y)


class TestBool:
    def test_bytes(self) -> None:
        """True is written 01 and false 00."""
        assert Bool.build(True) == b"\x01"
        assert Bool.build(False) == b"\x00"

    @pytest.mark.slow
    @given(st.integers(1, 255))
    def test_any_non_zero_is_true(self, byte: int) -> None:
        """Any non-zero byte reads as true, as a C++ bool does."""
        assert Bool.parse(bytes([byte])) is True

    def test_zero_is_false(self) -> None:
        """00 reads as false."""
        assert Bool.parse(b"\x00") is False

    def test_empty_is_truncated(self) -> None:
        """No byte left is a TruncatedError at offset 0, not construct's own error."""
        with pytest.raises(TruncatedError) as e:
            Bool.parse(b"")
        assert e.value.offset == 0


class TestRsString:
    def test_bytes(self) -> None:
        """A plain string is a u32 byte length and the UTF-8 bytes, no terminator."""
        assert RsString.build("disc") == b"\x00\x00\x00\x04disc"
        assert RsString.build("é") == b"\x00\x00\x00\x02\xc3\xa9"
        assert RsString.build("") == b"\x00\x00\x00\x00"

    def test_non_utf8_round_trips(self) -> None:
        """Bytes that are not UTF-8 decode (surrogateescape) and encode back unchanged."""
        raw = b"\x00\x00\x00\x03\xff\xfeA"
        text = RsString.parse(raw)
        assert text == "\udcff\udcfeA"
        assert RsString.build(text) == raw

    def test_length_past_end(self) -> None:
        """A length longer than the input is a TruncatedError at the length field."""
        with pytest.raises(TruncatedError) as e:
            RsString.parse(b"\x00\x00\x00\x05abc")
        assert e.value.offset == 0

    def test_short_length_field(self) -> None:
        """Fewer than 4 bytes for the length is a TruncatedError."""
        with pytest.raises(TruncatedError):
            RsString.parse(b"\x00\x00")

    @pytest.mark.slow
    @given(wire_text)
    def test_round_trip(self, text: str) -> None:
        """Any string (including escaped non-UTF-8 bytes) survives build/parse."""
        assert RsString.parse(RsString.build(text)) == text


class TestRawMemory:
    def test_bytes(self) -> None:
        """A raw block is a u32 length then the bytes (not a TLV despite RetroShare's names)."""
        assert RawMemory().build(b"\x01\x02") == b"\x00\x00\x00\x02\x01\x02"

    def test_custom_limit_name(self) -> None:
        """A block with its own cap names that cap when it is exceeded."""
        from pqi.wire.errors import LimitExceededError
        con = RawMemory(4, "AVATAR")
        assert con.parse(b"\x00\x00\x00\x04abcd") == b"abcd"
        with pytest.raises(LimitExceededError) as e:
            con.parse(b"\x00\x00\x00\x05abcde")
        assert (e.value.limit, e.value.value, e.value.maximum) == ("AVATAR", 5, 4)

    @pytest.mark.slow
    @given(st.binary(max_size=300))
    def test_round_trip(self, data: bytes) -> None:
        """Any byte block survives build/parse."""
        assert RawMemory().parse(RawMemory().build(data)) == data


class TestBoundedArray:
    def test_bytes(self) -> None:
        """A container is a u32 count then the elements back to back."""
        assert BoundedArray(u16).build([1, 2]) == b"\x00\x00\x00\x02\x00\x01\x00\x02"

    def test_zero_width_element_refused(self) -> None:
        """An element that can consume no byte would let a count spin without input: refused."""
        with pytest.raises(ValueError):
            BoundedArray(c.Struct())
        with pytest.raises(ValueError):
            BoundedArray(RsString, min_size=0)

    def test_count_times_min_size_must_fit(self) -> None:
        """A count whose elements cannot fit in the bytes left fails before looping."""
        with pytest.raises(TruncatedError) as e:
            BoundedArray(u32).parse(b"\x00\x00\x00\x03" + bytes(11))
        assert e.value.offset == 0

    def test_variable_size_elements_use_min_size(self) -> None:
        """Variable-size elements declare their smallest encoding; strings are at least 4."""
        arr = BoundedArray(RsString, min_size=4)
        assert arr.parse(arr.build(["a", "", "bc"])) == ["a", "", "bc"]
        with pytest.raises(TruncatedError):
            arr.parse(b"\x00\x00\x00\x02\x00\x00\x00\x00")

    @pytest.mark.slow
    @given(st.lists(u32s, max_size=20))
    def test_round_trip(self, values: list[int]) -> None:
        """Any list of u32 survives build/parse."""
        arr = BoundedArray(u32)
        assert arr.parse(arr.build(values)) == values

    @pytest.mark.slow
    @given(st.lists(ids(SslId), max_size=5))
    def test_round_trip_ids(self, values: list[SslId]) -> None:
        """A vector of ids (fixed size, no prefix each) survives build/parse."""
        arr = BoundedArray(IdField(SslId))
        assert arr.parse(arr.build(values)) == values


class TestFixedIds:
    def test_lengths(self) -> None:
        """The id sizes are RetroShare's: SSL 16, PGP 8, fingerprint 20, SHA-1 20, GXS 16."""
        assert [t.LENGTH for t in ID_TYPES] == [16, 8, 20, 20, 32, 16, 20]

    def test_hex_case(self) -> None:
        """PGP ids and fingerprints print upper-case, everything else lower-case."""
        assert PgpId(bytes.fromhex("ed101593758f53c0")).to_hex() == "ED101593758F53C0"
        assert str(PgpFingerprint(bytes(19) + b"\xab")).endswith("AB")
        assert SslId.from_hex("E3D224134F8957AF7FA9E65647CB7308").to_hex() == (
            "e3d224134f8957af7fa9e65647cb7308")

    def test_wrong_length_and_bad_hex(self) -> None:
        """Ids of the wrong size or non-hex text are refused with ValueError."""
        with pytest.raises(ValueError):
            SslId(bytes(15))
        with pytest.raises(ValueError):
            GxsId.from_hex("zz" * 16)

    def test_null_and_repr(self) -> None:
        """The null id is all zeros; repr names the class and hex."""
        assert Sha1Hash.null() == bytes(20)
        assert repr(PgpId.null()) == "PgpId('0000000000000000')"

    def test_idfield_bytes_and_truncation(self) -> None:
        """An id field is its raw bytes, no length; a short buffer is a TruncatedError."""
        h = Sha1Hash(bytes(range(20)))
        assert IdField(Sha1Hash).build(h) == bytes(range(20))
        parsed = IdField(Sha1Hash).parse(bytes(range(20)))
        assert type(parsed) is Sha1Hash and parsed == h
        with pytest.raises(TruncatedError):
            IdField(Sha1Hash).parse(bytes(19))

    def test_idfield_build_wrong_length(self) -> None:
        """Building an id of the wrong size is our bug: EncodeError."""
        with pytest.raises(EncodeError):
            IdField(SslId).build(bytes(8))

    @pytest.mark.slow
    @pytest.mark.parametrize("idtype", ID_TYPES, ids=lambda t: t.__name__)
    @given(data=st.data())
    def test_round_trip(self, idtype: type[FixedId], data: st.DataObject) -> None:
        """Every id type survives build/parse and hex round trips."""
        value = data.draw(ids(idtype))
        assert IdField(idtype).parse(IdField(idtype).build(value)) == value
        assert idtype.from_hex(value.to_hex()) == value

