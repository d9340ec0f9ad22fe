# -*- test-case-name: tests.test_tlv -*-
"""TLV encodings (`pqi.wire.tlv`) and the shared compound values (`pqi.wire.tlvvalues`), byte for
byte.

Hex literals marked "real" are copied from the captures of real RetroShare 0.6.7 nodes
(``tests/vectors/retroshare``: ``captures/``); the others follow ``libretroshare``'s ``rstlv*.cc``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import pathlib
import struct
from typing import Any

import construct as c
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pqi.wire import tlvtypes as T  # noqa: N812  (as the core modules spell it)
from pqi.wire.address import AddressInfo, AddressInfoTLV, AddressSetTLV, AddressTLV, NetAddress
from pqi.wire.errors import DecodeError, EncodeError, InvalidValueError, TruncatedError
from pqi.wire.fields import FixedId, GxsId, PgpId, RsString, Sha1Hash, SslId, u16, u32, u64
from pqi.wire.tlv import (
    CONTROL_CHARS_FORBIDDEN,
    TLV,
    BinaryTLV,
    CompoundTLV,
    IdSetTLV,
    MapTLV,
    Optional_,
    StringTLV,
    TLVList,
    UInt32TLV,
    UInt64TLV,
    peek_tlv_type,
    sanitise_string,
    tlv_header,
)
from pqi.wire.tlvvalues import (
    FileData,
    FileDataTLV,
    FileItem,
    FileItemTLV,
    FileSet,
    FileSetTLV,
    KeySignature,
    KeySignatureTLV,
)
from tests.strategies import (
    ID_TYPES,
    address_infos,
    clean_text,
    file_datas,
    file_items,
    file_sets,
    id_sets,
    ids,
    key_signatures,
    optional_addresses,
    u32s,
    u64s,
    wire_text,
)

H = bytes.fromhex
NOTICE = b"**** String removed (SVG bomb?) ****"
HASH = Sha1Hash(bytes(range(20)))


def addr(text: str, port: int) -> NetAddress:
    return NetAddress(ipaddress.ip_address(text), port)


# --- simple TLVs ------------------------------------------------------------------------------


class TestHeader:
    def test_header_counts_itself(self) -> None:
        """The u32 length includes the 6-byte header."""
        assert tlv_header(0x0051, 5) == H("0051 0000000b")

    def test_peek(self) -> None:
        """peek_tlv_type reads the type without consuming; None when under 2 bytes are left."""
        import io
        s = io.BytesIO(H("1072 00000006"))
        assert peek_tlv_type(s) == 0x1072 and s.tell() == 0
        assert peek_tlv_type(io.BytesIO(b"\x10")) is None

    def test_wrong_type(self) -> None:
        """A TLV of another type where one is expected is InvalidValueError at its start."""
        with pytest.raises(InvalidValueError) as e:
            StringTLV(T.STR_NAME).parse(H("0052 00000006"))
        assert e.value.offset == 0


class TestString:
    def test_bytes(self) -> None:
        """A string TLV is the header and the UTF-8 bytes, no terminator, no count."""
        assert StringTLV(T.STR_NAME).build("hello") == H("0051 0000000b") + b"hello"
        assert StringTLV(T.STR_DYNDNS).build("") == H("0083 00000006")  # real (disc contact)

    def test_real_turtle_result_name(self) -> None:
        """real: the file name TLV of bob's turtle search result."""
        raw = H("0051 00000015") + b"needle-5MiB.bin"
        assert StringTLV(T.STR_NAME).parse(raw) == "needle-5MiB.bin"

    def test_non_utf8_round_trip(self) -> None:
        """Bytes that are not UTF-8 survive decode and encode (a relay must not alter them)."""
        raw = H("0057 00000009") + b"\xc3\x28\xff"
        text = StringTLV(T.STR_MSG).parse(raw)
        assert StringTLV(T.STR_MSG).build(text) == raw

    @pytest.mark.slow
    @pytest.mark.parametrize("tlv_type", sorted({T.STR_NAME, T.STR_MSG, T.STR_VALUE, 0}))
    @given(text=clean_text)
    def test_round_trip(self, tlv_type: int, text: str) -> None:
        """Text without bomb markers or control characters survives every string type."""
        con = StringTLV(tlv_type)
        assert con.parse(con.build(text)) == text

    @given(text=wire_text)
    def test_parse_never_changes_length(self, text: str) -> None:
        """Whatever sanitising does, the decoded string keeps its byte length."""
        con = StringTLV(T.STR_NAME)
        raw = con.build(text)
        assert len(con.parse(raw).encode("utf-8", "surrogateescape")) == len(raw) - 6


class TestSanitise:
    MARKERS = [b"<!e", b"<!E", b"PD94bW", b"PHN2Zy"]

    @pytest.mark.parametrize("marker", MARKERS)
    def test_plain_marker(self, marker: bytes) -> None:
        """A string holding a marker becomes the notice padded with spaces, same length."""
        raw = b"some text before " + marker + b" and a long tail after it, padding...."
        out = sanitise_string(T.STR_MSG, raw)
        assert len(out) == len(raw)
        assert out.startswith(NOTICE) and out[len(NOTICE):] == b" " * (len(raw) - len(NOTICE))

    @pytest.mark.parametrize("marker", MARKERS)
    def test_percent_encoded_marker(self, marker: bytes) -> None:
        """Each marker is found %-encoded too (one character encoded, or all of them)."""
        first = b"%%%02X" % marker[0] + marker[1:]
        every = b"".join(b"%%%02x" % ch for ch in marker)
        for enc in (first, every):
            raw = b"<p>" + enc + b"</p> and more text to pad past the notice!"
            out = sanitise_string(T.STR_MSG, raw)
            assert len(out) == len(raw) and out.startswith(NOTICE), enc

    def test_example_from_brief(self) -> None:
        """``%3C!e`` is ``<!e`` encoded."""
        raw = b"%3C!ENTITY lol 'lol'> ........................................."
        assert sanitise_string(T.STR_MSG, raw).startswith(NOTICE)

    def test_short_string_gets_cut_notice(self) -> None:
        """A string shorter than the notice keeps its length: the notice is cut."""
        assert sanitise_string(T.STR_MSG, b"x<!e") == NOTICE[:4]

    def test_overlapping_start_is_found(self) -> None:
        """``<<!e`` is caught (RetroShare's matcher misses it; we are stricter, never looser)."""
        assert sanitise_string(T.STR_MSG, b"<<!e" + b"." * 40).startswith(NOTICE)

    def test_clean_text_untouched(self) -> None:
        """Ordinary HTML and %-escapes that form no marker pass unchanged."""
        raw = b"<html><body>50% off <b>now</b> %41%42</body></html>"
        assert sanitise_string(T.STR_MSG, raw) == raw

    def test_control_chars_listed_types(self) -> None:
        """In name-like types 0x01-0x1F become spaces; 0x00, 0x20 and up are kept."""
        raw = b"a\x01b\tc\nd\x1fe\x00f\x7f\xc3\xa9"
        want = b"a b c d e\x00f\x7f\xc3\xa9"
        assert CONTROL_CHARS_FORBIDDEN == {0, T.STR_PEERID, T.STR_NAME, T.STR_PATH, T.STR_TITLE,
                                           T.STR_SUBJECT, T.STR_LOCATION, T.STR_VERSION}
        for t in CONTROL_CHARS_FORBIDDEN:
            assert sanitise_string(t, raw) == want

    @pytest.mark.parametrize("tlv_type", [T.STR_MSG, T.STR_VALUE, T.STR_COMMENT, T.STR_KEY,
                                          T.STR_PGPCERT, T.STR_DYNDNS])
    def test_control_chars_kept_elsewhere(self, tlv_type: int) -> None:
        """Message bodies and other free text keep their control characters."""
        raw = b"line1\nline2\ttab\x01"
        assert sanitise_string(tlv_type, raw) == raw

    def test_string_tlv_applies_it(self) -> None:
        """Decoding a string TLV sanitises; a name's newline arrives as a space."""
        assert StringTLV(T.STR_NAME).parse(StringTLV(T.STR_NAME).build("a\nb")) == "a b"
        out = StringTLV(T.STR_MSG).parse(StringTLV(T.STR_MSG).build("x" * 40 + "PHN2Zy"))
        assert out.encode() == NOTICE + b" " * 10

    @given(st.binary(max_size=80), st.sampled_from([T.STR_MSG, T.STR_NAME]))
    def test_length_kept(self, raw: bytes, tlv_type: int) -> None:
        """Sanitising never changes the byte length (items after the string still parse)."""
        assert len(sanitise_string(tlv_type, raw)) == len(raw)


class TestIntegers:
    def test_bytes(self) -> None:
        """UInt32 TLVs are 10 bytes, UInt64 TLVs 14, big-endian values."""
        assert UInt32TLV(T.UINT32_POP).build(5) == H("0031 0000000a 00000005")
        assert UInt64TLV(T.UINT64_OFFSET).build(0x0102030405060708) == H(
            "0041 0000000e 0102030405060708")
        assert UInt32TLV(T.UINT32_BW).build(0x72710F) == H("0035 0000000a 0072710f")  # real

    def test_wrong_payload_size(self) -> None:
        """A UInt32 TLV whose length is not 10 is refused at the TLV start."""
        with pytest.raises(InvalidValueError) as e:
            UInt32TLV(T.UINT32_POP).parse(H("0031 0000000b 0000000500"))
        assert e.value.offset == 0

    def test_out_of_range_encode(self) -> None:
        """Building a value that does not fit is EncodeError."""
        with pytest.raises(EncodeError):
            UInt32TLV(T.UINT32_POP).build(2**32)

    @given(u32s, u64s)
    def test_round_trip(self, a: int, b: int) -> None:
        """Every u32/u64 survives its TLV."""
        assert UInt32TLV(T.UINT32_AGE).parse(UInt32TLV(T.UINT32_AGE).build(a)) == a
        assert UInt64TLV(T.UINT64_SIZE).parse(UInt64TLV(T.UINT64_SIZE).build(b)) == b


class TestBinary:
    def test_bytes(self) -> None:
        """A binary TLV is the header and the raw bytes."""
        assert BinaryTLV(T.BIN_FILEDATA).build(b"\x00\xff") == H("0140 00000008 00ff")

    @given(st.binary(max_size=300))
    def test_round_trip(self, data: bytes) -> None:
        """Any bytes survive a binary TLV."""
        assert BinaryTLV(T.SIGN_RSA_SHA1).parse(BinaryTLV(T.SIGN_RSA_SHA1).build(data)) == data


class TestIdSets:
    SETS = [(T.PEERSET, SslId), (T.PGPIDSET, PgpId), (T.HASHSET, Sha1Hash), (T.GXSIDSET, GxsId)]

    @pytest.mark.parametrize("tlv_type,idtype", SETS, ids=lambda x: getattr(x, "__name__", x))
    def test_bytes_sorted(self, tlv_type: int, idtype: type[FixedId]) -> None:
        """Ids are concatenated with no count, in sorted order whatever the insertion order."""
        n = idtype.LENGTH
        hi, lo = idtype(b"\xee" * n), idtype(b"\x11" * n)
        out = IdSetTLV(tlv_type, idtype).build([hi, lo])
        assert out == struct.pack(">HI", tlv_type, 6 + 2 * n) + bytes(lo) + bytes(hi)
        assert IdSetTLV(tlv_type, idtype).parse(out) == {lo, hi}

    def test_real_pgp_list(self) -> None:
        """real: bob's one-id PgpIdSet in a discovery PGP list, and an empty PeerSet (mail)."""
        raw = H("1023 0000000e 1ff918c2ead0ccc1")
        got = IdSetTLV(T.PGPIDSET, PgpId).parse(raw)
        assert got == {PgpId.from_hex("1FF918C2EAD0CCC1")}
        assert IdSetTLV(T.PGPIDSET, PgpId).build(got) == raw
        assert IdSetTLV(T.PEERSET, SslId).parse(H("1021 00000006")) == frozenset()

    def test_partial_id(self) -> None:
        """A payload that is not a whole number of ids is refused."""
        with pytest.raises(InvalidValueError):
            IdSetTLV(T.PGPIDSET, PgpId).parse(H("1023 0000000f") + bytes(9))

    def test_wrong_length_encode(self) -> None:
        """Building a set with an id of the wrong size is EncodeError."""
        with pytest.raises(EncodeError):
            IdSetTLV(T.PGPIDSET, PgpId).build([b"\x00" * 7])

    @pytest.mark.slow
    @pytest.mark.parametrize("idtype", ID_TYPES, ids=lambda t: t.__name__)
    @given(data=st.data())
    def test_round_trip(self, idtype: type[FixedId], data: st.DataObject) -> None:
        """Any set of any id size survives, and encoding is canonical (sorted)."""
        value = data.draw(id_sets(idtype))
        con = IdSetTLV(0x1100, idtype)
        raw = con.build(value)
        assert con.parse(raw) == value
        assert con.build(sorted(value, reverse=True)) == raw


class TestList:
    CON = TLVList(0x1100, UInt32TLV(T.UINT32_POP))

    def test_bytes(self) -> None:
        """A list TLV holds its element TLVs back to back, no count."""
        assert self.CON.build([1, 2]) == H("1100 0000001a 0031 0000000a 00000001"
                                           "0031 0000000a 00000002")
        assert self.CON.build([]) == H("1100 00000006")

    def test_element_past_list_end(self) -> None:
        """An element that runs past the list's own length is truncated at the element."""
        with pytest.raises(TruncatedError) as e:
            self.CON.parse(H("1100 0000000c 0031 0000000a 0000") + bytes(10))
        assert e.value.offset == 8

    @pytest.mark.slow
    @given(st.lists(u32s, max_size=10))
    def test_round_trip(self, values: list[int]) -> None:
        """Any list of elements survives."""
        assert self.CON.parse(self.CON.build(values)) == values


@dataclasses.dataclass(frozen=True)
class _Sample:
    a: int
    name: str = ""
    pop: int = 0


_SAMPLE = CompoundTLV(0x1200, c.Struct("a" / u32), [
    Optional_("name", T.STR_NAME, StringTLV(T.STR_NAME), ""),
    Optional_("pop", T.UINT32_POP, UInt32TLV(T.UINT32_POP), 0),
], _Sample)


class TestCompound:
    def test_without_optional(self) -> None:
        """Only the mandatory fields when every optional part has its default."""
        assert _SAMPLE.build(_Sample(7)) == H("1200 0000000a 00000007")

    def test_with_optional_in_declaration_order(self) -> None:
        """Optional parts follow in declaration order."""
        assert _SAMPLE.build(_Sample(7, "ab", 3)) == H(
            "1200 0000001c 00000007 0051 00000008 6162 0031 0000000a 00000003")

    def test_optional_any_order_unknown_and_trailing_skipped(self) -> None:
        """Readers take optional parts in any order, skip unknown sub-TLVs and short tails."""
        raw = H("1200 00000025 00000007 0031 0000000a 00000003 0999 00000007 ff"
                "0051 00000008 6162 000000")
        assert _SAMPLE.parse(raw) == _Sample(7, "ab", 3)

    def test_mandatory_truncated(self) -> None:
        """A compound too short for its mandatory part fails at that field."""
        with pytest.raises(TruncatedError) as e:
            _SAMPLE.parse(H("1200 00000008 0000"))
        assert e.value.offset == 6

    @pytest.mark.slow
    @given(u32s, clean_text, u32s)
    def test_round_trip(self, a: int, name: str, pop: int) -> None:
        """Any value survives."""
        v = _Sample(a, name, pop)
        assert _SAMPLE.parse(_SAMPLE.build(v)) == v


# ServiceInfo's generic map: map, pair, key and value TLVs all of type 0x0001 (facts 1.5).
_INFO = c.Struct("name" / RsString, "service" / u32, "major" / u16, "minor" / u16,
                 "min_major" / u16, "min_minor" / u16)
_SERVICE_MAP = MapTLV(0x0001, 0x0001, UInt32TLV(0x0001), TLV(0x0001, _INFO))


def _info(name: str, sid: int) -> dict[str, Any]:
    return dict(name=name, service=sid, major=1, minor=0, min_major=1, min_minor=0)


class TestMap:
    ONE = H("0001 00000030 0001 0000002a 0001 0000000a 02001100 0001 0000001a 00000004")
    ONE += b"disc" + H("02001100 0001 0000 0001 0000")

    def test_bytes_real_serviceinfo_entry(self) -> None:
        """real: the first entry of alice's ServiceInfo list (disc, 1.0, min 1.0)."""
        assert _SERVICE_MAP.build({0x02001100: _info("disc", 0x02001100)}) == self.ONE
        got = _SERVICE_MAP.parse(self.ONE)
        assert dict(got[0x02001100]) == {"_io": got[0x02001100]._io, **_info("disc", 0x02001100)}

    def test_keys_sorted(self) -> None:
        """Pairs are written in key order (a std::map), whatever the dict order."""
        m = {0x02001200: _info("chat", 0x02001200), 0x02001100: _info("disc", 0x02001100)}
        raw = _SERVICE_MAP.build(m)
        assert raw.index(b"disc") < raw.index(b"chat")

    def test_non_pair_refused(self) -> None:
        """A sub-TLV that is not a pair fails the map, as RsTlvGenericMapRef does."""
        con = MapTLV(0x1300, 0x1301, UInt32TLV(0x0030), UInt32TLV(0x0031))
        raw = H("1300 0000000c 1399 00000006")
        with pytest.raises(InvalidValueError) as e:
            con.parse(raw)
        assert e.value.offset == 6

    @pytest.mark.slow
    @given(st.dictionaries(u32s, clean_text, max_size=8))
    def test_round_trip(self, m: dict[int, str]) -> None:
        """Any map survives; duplicate-free keys stay."""
        con = MapTLV(0x1300, 0x1301, UInt32TLV(0x0030), StringTLV(T.STR_VALUE))
        assert con.parse(con.build(m)) == m


def test_real_serviceinfo_item(captures: pathlib.Path) -> None:
    """real: a whole ServiceInfo list item decodes with the map construct and re-encodes same."""
    for line in (captures / "alice.items.jsonl").open():
        rec = json.loads(line)
        if rec["service"] == "0x0020" and rec["subtype"] == "0x01":
            raw = bytes.fromhex(rec["hex"])
            break
    got = _SERVICE_MAP.parse(raw[8:])
    assert got[0x02001100].name == "disc" and got[0x02001200].name == "chat"
    m = {k: {n: v[n] for n in ("name", "service", "major", "minor", "min_major", "min_minor")}
         for k, v in got.items()}
    assert _SERVICE_MAP.build(m) == raw[8:]


# --- addresses ------------------------------------------------------------------------------

class TestAddress:
    def test_ipv4_quirk(self) -> None:
        """1.2.3.4:7812 travels as 04 03 02 01 84 1E inside IPV4 inside ADDRESS."""
        assert AddressTLV.build(addr("1.2.3.4", 7812)) == H(
            "1072 00000012 0085 0000000c 04030201 841e")

    def test_real_loopback(self) -> None:
        """real: bob's local address 127.0.0.1:7802 in his discovery contact."""
        raw = H("1072 00000012 0085 0000000c 0100007f 7a1e")
        assert AddressTLV.parse(raw) == addr("127.0.0.1", 7802)
        assert AddressTLV.build(addr("127.0.0.1", 7802)) == raw

    def test_real_zero_address(self) -> None:
        """real: an invalid external address is still sent as IPv4 0.0.0.0:0, not unset."""
        raw = H("1072 00000012 0085 0000000c 00000000 0000")
        assert AddressTLV.parse(raw) == addr("0.0.0.0", 0)
        assert AddressTLV.build(addr("0.0.0.0", 0)) == raw

    def test_unset(self) -> None:
        """real: an unset address is an empty ADDRESS TLV, 6 bytes."""
        assert AddressTLV.build(None) == H("1072 00000006")
        assert AddressTLV.parse(H("1072 00000006")) is None

    def test_ipv6_word_swap(self) -> None:
        """IPv6 has each 32-bit word reversed and the port little-endian."""
        raw = AddressTLV.build(addr("2001:db8::1", 7812))
        assert raw == H("1072 0000001e 0086 00000018 b80d0120 00000000 00000000 01000000 841e")
        assert AddressTLV.parse(raw) == addr("2001:db8::1", 7812)

    def test_unknown_kind_skipped(self) -> None:
        """An address of an unknown kind (say a future one) reads as unset."""
        assert AddressTLV.parse(H("1072 0000000e 0099 00000008 0000")) is None

    def test_bad_ipv4_length(self) -> None:
        """An IPV4 sub-TLV whose length is not 12 is refused at the sub-TLV."""
        with pytest.raises(InvalidValueError) as e:
            AddressTLV.parse(H("1072 00000013 0085 0000000d 04030201 841e 00"))
        assert e.value.offset == 6

    def test_port_range(self) -> None:
        """A port over 65535 is our bug: EncodeError."""
        with pytest.raises(EncodeError):
            AddressTLV.build(addr("1.2.3.4", 70000))

    def test_str(self) -> None:
        """IPv6 addresses print bracketed."""
        assert str(addr("::1", 7812)) == "[::1]:7812" and str(addr("1.2.3.4", 1)) == "1.2.3.4:1"

    @pytest.mark.slow
    @given(optional_addresses)
    def test_round_trip(self, value: NetAddress | None) -> None:
        """Any IPv4 or IPv6 address and port, or none, survives."""
        assert AddressTLV.parse(AddressTLV.build(value)) == value


class TestAddressInfo:
    INFO = AddressInfo(addr("1.2.3.4", 7812), 0x0102030405060708, 9)
    RAW = H("1070 00000024 1072 00000012 0085 0000000c 04030201 841e"
            "0102030405060708 00000009")

    def test_bytes(self) -> None:
        """ADDRESS_INFO = ADDRESS + seen time u64 + source u32."""
        assert AddressInfoTLV.build(self.INFO) == self.RAW
        assert AddressInfoTLV.parse(self.RAW) == self.INFO

    def test_set_bytes(self) -> None:
        """ADDRESS_SET is a list of ADDRESS_INFO; real: an empty one is 6 bytes."""
        assert AddressSetTLV.build([self.INFO]) == H("1071 0000002a") + self.RAW
        assert AddressSetTLV.build([]) == H("1071 00000006")
        assert AddressSetTLV.parse(H("1071 0000002a") + self.RAW) == (self.INFO,)

    @pytest.mark.slow
    @given(address_infos)
    def test_round_trip(self, value: AddressInfo) -> None:
        """Any address info survives."""
        assert AddressInfoTLV.parse(AddressInfoTLV.build(value)) == value

    @pytest.mark.slow
    @given(st.lists(address_infos, max_size=4))
    def test_set_round_trip(self, values: list[AddressInfo]) -> None:
        """Any address set survives, order kept."""
        assert AddressSetTLV.parse(AddressSetTLV.build(values)) == tuple(values)


# --- files ----------------------------------------------------------------------------------

class TestFileItem:
    BARE = H("1000 00000022 0000000000300000") + bytes(HASH)

    def test_without_optional(self) -> None:
        """Size u64 and the raw 20-byte hash, nothing else, when the rest is empty."""
        assert FileItemTLV.build(FileItem(0x300000, HASH)) == self.BARE
        assert FileItemTLV.parse(self.BARE) == FileItem(0x300000, HASH)

    def test_with_all_optional(self) -> None:
        """Optional parts in RetroShare's order: name, path, pop, age, piece size, hash set."""
        other = Sha1Hash(b"\x01" * 20)
        item = FileItem(5, HASH, "a", "p/q", 2, 3, 4, frozenset({other, HASH}))
        want = (H("1000 0000007e 0000000000000005") + bytes(HASH)
                + H("0051 00000007") + b"a" + H("0052 00000009") + b"p/q"
                + H("0031 0000000a 00000002 0032 0000000a 00000003 0030 0000000a 00000004")
                + H("1022 0000002e") + bytes(HASH) + bytes(other))
        assert FileItemTLV.build(item) == want
        assert FileItemTLV.parse(want) == item

    def test_real_mail_attachment(self) -> None:
        """real: the FileSet attached to bob's mail (one file with a name, no title)."""
        raw = H("1001 00000040 1000 0000003a 0000000000000073"
                "4c229910f03cc27e474fd07a113237a6c90f6da0 0051 00000018") + b"hello-from-bob.txt"
        fs = FileSetTLV.parse(raw)
        assert fs == FileSet((FileItem(115, Sha1Hash.from_hex(
            "4c229910f03cc27e474fd07a113237a6c90f6da0"), name="hello-from-bob.txt"),))
        assert FileSetTLV.build(fs) == raw

    @pytest.mark.slow
    @given(file_items)
    def test_round_trip(self, value: FileItem) -> None:
        """Any file item survives."""
        assert FileItemTLV.parse(FileItemTLV.build(value)) == value


class TestFileSet:
    def test_title_comment(self) -> None:
        """Files first, then title and comment, each only when non-empty."""
        fs = FileSet((FileItem(1, HASH),), "T", "C")
        raw = FileSetTLV.build(fs)
        assert raw == (H("1001 00000036") + H("1000 00000022 0000000000000001") + bytes(HASH)
                       + H("0056 00000007") + b"T" + H("0055 00000007") + b"C")
        assert FileSetTLV.parse(raw) == fs
        assert FileSetTLV.build(FileSet()) == H("1001 00000006")

    def test_unknown_skipped(self) -> None:
        """An unknown sub-TLV in a file set is skipped."""
        assert FileSetTLV.parse(H("1001 0000000e 0999 00000008 ffff")) == FileSet()

    @pytest.mark.slow
    @given(file_sets)
    def test_round_trip(self, value: FileSet) -> None:
        """Any file set survives."""
        assert FileSetTLV.parse(FileSetTLV.build(value)) == value


class TestFileData:
    def test_bytes(self) -> None:
        """FILEDATA = FileItem + UINT64_OFFSET TLV + BIN_FILEDATA TLV (as real ft data items)."""
        fd = FileData(FileItem(0x300000, HASH), 0x10000, b"\xde\xad")
        raw = FileDataTLV.build(fd)
        assert raw == (H("1002 0000003e") + H("1000 00000022 0000000000300000") + bytes(HASH)
                       + H("0041 0000000e 0000000000010000") + H("0140 00000008 dead"))
        assert FileDataTLV.parse(raw) == fd

    def test_real_first_block(self, captures: pathlib.Path) -> None:
        """real: the first 30720-byte data item of the 3 MiB transfer decodes and re-encodes."""
        for line in (captures / "alice.items.jsonl").open():
            if '"service":"0x0017","subtype":"0x02"' in line:
                raw = bytes.fromhex(json.loads(line)["hex"])[8:]
                break
        fd = FileDataTLV.parse(raw)
        assert fd.file == FileItem(3145728, Sha1Hash.from_hex(
            "296d87a4a8e805015977af16ffa749af8ba1bd0e"))
        assert fd.offset == 0 and len(fd.data) == len(raw) - 6 - 0x22 - 14 - 6
        assert FileDataTLV.build(fd) == raw

    @pytest.mark.slow
    @given(file_datas)
    def test_round_trip(self, value: FileData) -> None:
        """Any file data survives."""
        assert FileDataTLV.parse(FileDataTLV.build(value)) == value


class TestKeySignature:
    KEY = GxsId(bytes(range(16)))

    def test_bytes(self) -> None:
        """STR_KEYID 0x00a4 with the id's lower-case hex, then binary 0x0120 signature."""
        raw = KeySignatureTLV.build(KeySignature(self.KEY, b"sig"))
        assert raw == (H("1050 00000035 00a4 00000026") + b"000102030405060708090a0b0c0d0e0f"
                       + H("0120 00000009") + b"sig")
        assert KeySignatureTLV.parse(raw) == KeySignature(self.KEY, b"sig")

    @pytest.mark.parametrize("text", [b"zz" * 16, b"00" * 15, b"00 " * 15 + b"0",
                                      b"0A" + b"00" * 15])
    def test_bad_key_id(self, text: bytes) -> None:
        """A key id that is not 32 lower-case hex digits is InvalidValueError at the
        STR_KEYID TLV (upper case would not re-encode to the bytes received)."""
        raw = (struct.pack(">HI", 0x1050, 6 + 6 + len(text) + 6) + struct.pack(
            ">HI", 0x00A4, 6 + len(text)) + text + H("0120 00000006"))
        with pytest.raises(InvalidValueError) as e:
            KeySignatureTLV.parse(raw)
        assert e.value.offset == 6

    @given(key_signatures)
    def test_round_trip(self, value: KeySignature) -> None:
        """Any signature survives."""
        assert KeySignatureTLV.parse(KeySignatureTLV.build(value)) == value


# --- error positions in nested TLVs -----------------------------------------------------------

class TestNestedOffsets:
    def test_hash_set_in_file_item_in_file_set(self) -> None:
        """An error three TLVs deep reports the offset in the outermost buffer."""
        # FileSet(6) > FileItem(6 + 8 + 20 = 34) > HASHSET header whose length says 32 bytes
        # but only 20 follow: the length field is at 6 + 34 + 2 = 42.
        inner = H("1022 00000020") + bytes(20)
        item = H("1000") + struct.pack(">I", 34 + len(inner)) + bytes(8) + bytes(HASH) + inner
        raw = H("1001") + struct.pack(">I", 6 + len(item)) + item
        with pytest.raises(TruncatedError) as e:
            FileSetTLV.parse(raw)
        assert e.value.offset == 42

    def test_bad_address_in_address_set(self) -> None:
        """A bad IPV4 sub-TLV inside ADDRESS_INFO inside ADDRESS_SET: offset of that sub-TLV."""
        bad = H("1072 00000013 0085 0000000d 04030201 841e 00")
        info = H("1070") + struct.pack(">I", 6 + len(bad) + 12) + bad + bytes(12)
        raw = H("1071") + struct.pack(">I", 6 + len(info)) + info
        with pytest.raises(InvalidValueError) as e:
            AddressSetTLV.parse(raw)
        assert e.value.offset == 6 + 6 + 6

    def test_offset_inside_outer_struct(self) -> None:
        """Fields before a TLV shift its error offset too."""
        con = c.Struct("a" / u64, "f" / FileItemTLV)
        raw = bytes(8) + H("1000 00000021") + bytes(27)  # 1 byte short of the hash
        with pytest.raises(TruncatedError) as e:
            con.parse(raw)
        assert e.value.offset == 8 + 6 + 8
        assert "f" in (e.value.field or "")


# --- robustness -----------------------------------------------------------------------------

ALL_CONSTRUCTS = [
    StringTLV(T.STR_NAME), UInt32TLV(T.UINT32_POP), UInt64TLV(T.UINT64_OFFSET),
    BinaryTLV(T.BIN_FILEDATA), IdSetTLV(T.HASHSET, Sha1Hash), TestList.CON, _SAMPLE, _SERVICE_MAP,
    AddressTLV, AddressInfoTLV, AddressSetTLV, FileItemTLV, FileSetTLV, FileDataTLV,
    KeySignatureTLV,
]


@pytest.mark.slow
@pytest.mark.parametrize("con", ALL_CONSTRUCTS, ids=lambda x: type(x).__name__)
@given(data=st.binary(max_size=120))
def test_random_bytes_only_decode_error(con: c.Construct, data: bytes) -> None:
    """Any input either parses or raises a DecodeError: no struct.error, no IndexError."""
    try:
        con.parse(data)
    except DecodeError:
        pass


@pytest.mark.parametrize("con,value", [
    (FileItemTLV, FileItem(9, HASH, "n", hash_set=frozenset({HASH}))),
    (AddressInfoTLV, AddressInfo(None, 1, 2)),
    (KeySignatureTLV, KeySignature(GxsId(bytes(16)), b"s")),
], ids=["file_item", "address_info", "key_signature"])
def test_every_truncation_is_a_decode_error(con: c.Construct, value: object) -> None:
    """Every proper prefix of a valid encoding fails with a DecodeError."""
    raw = con.build(value)
    for n in range(len(raw)):
        with pytest.raises(DecodeError):
            con.parse(raw[:n])


@given(st.sampled_from(ID_TYPES).flatmap(ids))
def test_ids_strategy_lengths(value: FixedId) -> None:
    """The shared id strategy yields ids of their class's length (guards the strategies)."""
    assert len(value) == type(value).LENGTH
