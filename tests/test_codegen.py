# -*- test-case-name: tests.test_codegen -*-
"""The generated codecs (`pqi.wire.codegen`) against the construct schemas they come from.

The generated decoder of a class must return exactly what the core construct parser returns
(equal values of the same types, all the way down) and must give up exactly where the core
parser raises, so that the public `pqi.decode` raises the core's precise error.  The generated
encoders must write the construct builder's bytes, and where they give up the construct path
must decide, with the same result or the same error as before they existed.  Checked on every
captured real-node item, on hypothesis-built items of every class, on random bodies and on
corrupted encodings.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import pathlib
import re
import struct
import types
from collections.abc import Callable
from typing import Any

import construct as c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pqi
from pqi.items import ids, nxs
from pqi.items.chat import MAX_AVATAR_SIZE, ChatAvatarItem, ChatFlags, ChatMsgItem
from pqi.items.discovery import DiscContactItem, DiscIdentityListItem
from pqi.items.grouter import GRouterTransactionChunkItem
from pqi.items.gxstunnel import GxsTunnelDhPublicKeyItem
from pqi.items.serviceinfo import ServiceInfo, ServiceInfoListItem
from pqi.items.turtle import (
    TurtleFileMapItem,
    TurtleGenericDataItem,
    TurtleRegexpSearchRequestItem,
)
from pqi.wire import codegen, tlv
from pqi.wire import item as item_module
from pqi.wire.errors import DecodeError, LimitExceededError, TrailingBytesError, TruncatedError
from pqi.wire.limits import MAX_CONTAINER_COUNT, MAX_RAW_MEMORY, MAX_SERIAL_SIZE
from tests.strategies_items import items

_ALL = sorted(pqi.registered().items())
#: As in test_items_properties: NXS layouts differ between GXS services only in binary TLV
#: types, so two services get the full properties and the rest a short run.
_FULL_NXS = {ids.SERVICE_GXS_TRANS, ids.SERVICE_FORUMS}
_MAIN = [cls for (service, _), cls in _ALL
         if service not in nxs.GXS_SERVICES or service in _FULL_NXS]
_OTHER_NXS = [cls for (service, _), cls in _ALL
              if service in nxs.GXS_SERVICES and service not in _FULL_NXS]
#: The classes with generated codecs (all but the known exceptions, see below).
_FAST_MAIN = [cls for cls in _MAIN if item_module._decoder(cls) is not None]
_HDR = struct.Struct(">BHBI")
_GAVE_UP = object()


def _shape(value: Any) -> Any:
    """A comparable form of ``value`` that records the type of every part, not only its value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value), tuple(_shape(getattr(value, f.name))
                                   for f in dataclasses.fields(value)))
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(_shape(x) for x in value))
    if isinstance(value, (set, frozenset)):
        return (type(value), frozenset(_shape(x) for x in value))
    if isinstance(value, dict):
        return (type(value), tuple((_shape(k), _shape(v)) for k, v in value.items()))
    if isinstance(value, memoryview):
        # A BinaryTLV(view=True) field: the generated decoder's read-only view of the item
        # where the core decoder copies; the same bytes either way.
        assert value.readonly
        return (bytes, bytes(value))
    return (type(value), value)


def _fast_decode(cls: type[pqi.PQItem], body: bytes) -> Any:
    fast = item_module._decoder(cls)
    assert fast is not None, cls.__name__
    try:
        return fast(body, 0, len(body))
    except Exception:  # noqa: BLE001  (giving up is the generated decoder's only failure)
        return _GAVE_UP


def _agree(cls: type[pqi.PQItem], body: bytes) -> None:
    """Generated and core decoders agree on ``body``; the public path raises core's error."""
    try:
        core: Any = cls._decode_body_core(body)
    except DecodeError as e:
        core = e
    fast = _fast_decode(cls, body)
    raw = _HDR.pack(cls.VERSION, cls.SERVICE, cls.SUBTYPE, 8 + len(body)) + body
    public: Callable[[], Any] = lambda: pqi.decode(raw)  # noqa: E731
    if len(raw) > MAX_SERIAL_SIZE:  # only limit tests go there: the body path alone
        public = lambda: cls.decode_body(body)  # noqa: E731
    if isinstance(core, DecodeError):
        assert fast is _GAVE_UP, (cls.__name__, body[:64].hex(), core)
        with pytest.raises(DecodeError) as e:
            public()
        assert (type(e.value), str(e.value), e.value.field, e.value.offset) == (
            type(core), str(core), core.field, core.offset)  # core already counts the header
        return
    assert fast is not _GAVE_UP, (cls.__name__, body.hex())
    assert _shape(fast) == _shape(core)
    assert _shape(public()) == _shape(core)


def _encodings_agree(item: pqi.PQItem) -> None:
    """The generated encoders write the core builder's bytes, body and whole item."""
    cls = type(item)
    fast = item_module._encoder(cls)
    assert fast is not None, cls.__name__
    want = cls.BODY.build(item.body_fields())
    assert item_module._compiled(cls).build(item.body_fields()) == want
    out = bytearray()
    fast.body(item, out)
    assert bytes(out) == want
    assert fast.item(item) == _HDR.pack(cls.VERSION, cls.SERVICE, cls.SUBTYPE,
                                        8 + len(want)) + want
    assert item.encode_body() == want


def test_generated_for_every_class_but_known_exceptions() -> None:
    """Every registered class gets generated codecs except those with custom constructs.

    DiscContactItem's address branch (a construct of the discovery module), the
    ``ExprAdapter`` of an RSA key (NXS publish-key item, GXS tunnel DH item) and the global
    router's chunk construct keep the compiled-construct path; a new class that silently fell
    back would show up here.
    """
    without = set()
    for _, cls in _ALL:
        if item_module._decoder(cls) is None or item_module._encoder(cls) is None:
            without.add(cls)
    expected = {DiscContactItem, GxsTunnelDhPublicKeyItem, GRouterTransactionChunkItem} | {
        nxs.nxs_item_class(service, nxs.NxsGroupPublishKeyItem) for service in nxs.GXS_SERVICES}
    assert without == expected


def test_unknown_construct_is_unsupported() -> None:
    """A construct the generator does not know raises Unsupported instead of being guessed."""
    class _Odd(c.Adapter):
        def _decode(self, obj: int, context: Any, path: str) -> int:
            return obj + 1

        def _encode(self, obj: int, context: Any, path: str) -> int:
            return obj - 1

    class _OddItem(pqi.PQItem):
        BODY = c.Struct("x" / _Odd(c.Int32ub))
        x: int

    with pytest.raises(codegen.UnsupportedSchemaError):
        codegen.make_decoder(_OddItem)
    with pytest.raises(codegen.UnsupportedSchemaError):
        codegen.make_encoder(_OddItem)
    assert item_module._decoder(_OddItem) is None
    assert _OddItem.decode_body(bytes.fromhex("00000005")) == _OddItem(6)
    assert _OddItem(6).encode_body() == bytes.fromhex("00000005")


@pytest.mark.slow
def test_captured_items(captures: pathlib.Path) -> None:
    """Every captured real-node item: generated decode equals core, generated encode is exact."""
    count = 0
    for path in sorted(captures.glob("*.items.jsonl")):
        with path.open() as f:
            for line in f:
                raw = bytes.fromhex(json.loads(line)["hex"])
                cls = pqi.item_class(*struct.unpack_from(">xHB", raw))
                if cls is None or item_module._decoder(cls) is None:
                    continue
                _agree(cls, raw[8:])
                _encodings_agree(cls._decode_body_core(raw[8:]))
                assert pqi.encode(pqi.decode(raw)) == raw
                count += 1
    assert count > 2000


@pytest.mark.slow
@pytest.mark.parametrize("cls", _FAST_MAIN, ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_hypothesis_items(cls: type[pqi.PQItem], data: st.DataObject) -> None:
    """Items drawn from each schema: same bytes as the builder, same value as the parser."""
    item = data.draw(items(cls))
    _encodings_agree(item)
    body = item.encode_body()
    _agree(cls, body)


@pytest.mark.slow
@pytest.mark.parametrize("cls", [cls for cls in _OTHER_NXS if item_module._decoder(cls)],
                         ids=lambda cls: cls.__name__)
@settings(max_examples=10)
@given(data=st.data())
def test_hypothesis_items_other_gxs_services(cls: type[pqi.PQItem],
                                             data: st.DataObject) -> None:
    """The NXS classes of the remaining GXS services agree too (short run)."""
    item = data.draw(items(cls))
    _encodings_agree(item)
    _agree(cls, item.encode_body())


@pytest.mark.slow
@settings(max_examples=1500)
@given(cls=st.sampled_from(_FAST_MAIN), body=st.binary(max_size=120))
def test_random_bodies(cls: type[pqi.PQItem], body: bytes) -> None:
    """Random bodies: both accept with the same value, or both refuse (core's error wins)."""
    _agree(cls, body)


#: u32 values that sit on the edges of the checks: lengths around a TLV header, limits.
_EDGES = [0, 1, 4, 5, 6, 7, 10, 14, 0xFF, MAX_CONTAINER_COUNT - 1, MAX_CONTAINER_COUNT,
          MAX_CONTAINER_COUNT + 1, 10 * 1024 * 1024 + 1, 0x7FFFFFFF, 0xFFFFFFFF]


@pytest.mark.slow
@settings(max_examples=1500)
@given(data=st.data(), cls=st.sampled_from(_FAST_MAIN))
def test_corrupted_encodings(data: st.DataObject, cls: type[pqi.PQItem]) -> None:
    """Valid bodies flipped, cut, extended, or with a length/count set to an edge value."""
    body = bytearray(data.draw(items(cls)).encode_body())
    action = data.draw(st.sampled_from(["flip", "cut", "append", "edge", "edge16"]))
    if action == "flip" and body:
        body[data.draw(st.integers(0, len(body) - 1))] ^= data.draw(st.integers(1, 255))
    elif action == "cut" and body:
        body = body[:data.draw(st.integers(0, len(body) - 1))]
    elif action == "edge" and len(body) >= 4:
        at = data.draw(st.integers(0, len(body) - 4))
        body[at:at + 4] = struct.pack(">I", data.draw(st.sampled_from(_EDGES)))
    elif action == "edge16" and len(body) >= 2:
        at = data.draw(st.integers(0, len(body) - 2))
        body[at:at + 2] = struct.pack(">H", data.draw(st.sampled_from(_EDGES)) & 0xFFFF)
    else:
        body += data.draw(st.binary(min_size=1, max_size=8))
    _agree(cls, bytes(body))


def _mutations(body: bytes) -> list[bytes]:
    """Every cut, and every 2- or 4-byte window nudged by one or set to an edge value."""
    out = [body[:n] for n in range(len(body))]
    for at in range(len(body) - 1):
        (h,) = struct.unpack_from(">H", body, at)
        for v in ((h + 1) & 0xFFFF, (h - 1) & 0xFFFF):
            out.append(body[:at] + struct.pack(">H", v) + body[at + 2:])
    for at in range(len(body) - 3):
        (w,) = struct.unpack_from(">I", body, at)
        for v in ((w + 1) & 0xFFFFFFFF, (w - 1) & 0xFFFFFFFF, 0, 5,
                  MAX_CONTAINER_COUNT + 1, 0xFFFFFFFF):
            out.append(body[:at] + struct.pack(">I", v) + body[at + 4:])
    return out


@pytest.mark.slow
@pytest.mark.parametrize("cls", _FAST_MAIN, ids=lambda cls: cls.__name__)
@settings(max_examples=3)
@given(data=st.data())
def test_every_nudge_of_a_valid_body(cls: type[pqi.PQItem], data: st.DataObject) -> None:
    """Systematic corruption of valid bodies: each length, count and type field in turn.

    Random flips rarely land on the one length field whose check matters; this walks them all,
    with the values that sit just either side of each check.
    """
    for body in _mutations(data.draw(items(cls)).encode_body()):
        _agree(cls, body)


@pytest.mark.slow
@pytest.mark.parametrize("cls,prefix,limit,unit", [
    (ChatAvatarItem, b"", MAX_AVATAR_SIZE, 1),
    (TurtleRegexpSearchRequestItem, bytes(6), MAX_CONTAINER_COUNT, 1),
    (TurtleFileMapItem, bytes(8), MAX_CONTAINER_COUNT, 4),
    (DiscIdentityListItem, b"", MAX_CONTAINER_COUNT, 16),
    (TurtleGenericDataItem, bytes(4), MAX_RAW_MEMORY, 1),
], ids=["capped_bytes", "u8_array", "u32_array", "id_list", "raw_memory"])
@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_named_limits_with_the_bytes_present(cls: type[pqi.PQItem], prefix: bytes, limit: int,
                                             unit: int, delta: int) -> None:
    """A count at limit - 1, limit and limit + 1 with every byte it announces present.

    Only the named limit can refuse these (the bytes-left check passes), so a generated
    decoder that skipped it would accept what the core refuses.
    """
    n = limit + delta
    body = prefix + struct.pack(">I", n) + bytes(n * unit)
    if cls is TurtleRegexpSearchRequestItem:
        body += bytes(8)  # the empty ints and strings arrays after the tokens
    _agree(cls, body)


def test_limit_errors_are_the_core_ones() -> None:
    """A count over MAX_CONTAINER_COUNT: the public decode raises the core's named limit."""
    body = struct.pack(">II", 7, 1) + struct.pack(">I", MAX_CONTAINER_COUNT + 1)
    _agree(TurtleFileMapItem, body)
    with pytest.raises(LimitExceededError) as e:
        pqi.decode(_HDR.pack(2, TurtleFileMapItem.SERVICE, TurtleFileMapItem.SUBTYPE,
                             8 + len(body)) + body)
    assert (e.value.limit, e.value.offset) == ("MAX_CONTAINER_COUNT", 16)


# --- encoders that give up --------------------------------------------------------------------

def _outcome(make: Callable[[], pqi.PQItem]) -> Any:
    try:
        return pqi.encode(make())
    except Exception as e:  # noqa: BLE001  (the exception itself is the outcome compared)
        return (type(e), re.sub(r"0x[0-9a-f]+", "0x?", str(e)))  # fresh objects, new addresses


_BAD_VALUES: list[Callable[[], Any]] = [
    lambda: None, lambda: -1, lambda: 2**64, lambda: "text", lambda: b"abc", lambda: 1.5,
    lambda: [1, 2], lambda: (x for x in [1, 2]), lambda: iter([b"a" * 16]),
    lambda: {1: None}, lambda: frozenset({b"z" * 20}), lambda: True, lambda: bytearray(16),
]


@pytest.mark.slow
@settings(max_examples=300)
@given(data=st.data(), cls=st.sampled_from(_FAST_MAIN))
def test_bad_values_encode_as_before(data: st.DataObject, cls: type[pqi.PQItem]) -> None:
    """A field holding a wrong value: same bytes or same error as the construct path alone.

    Values are made twice (fresh generators each time), once per path.
    """
    good = data.draw(items(cls))
    if not cls._FIELDS:
        return
    name = data.draw(st.sampled_from(cls._FIELDS))
    bad = data.draw(st.sampled_from(_BAD_VALUES))

    def make() -> pqi.PQItem:
        item = dataclasses.replace(good)
        setattr(item, name, bad())
        return item

    fast = _outcome(make)
    saved = item_module._ENCODERS[cls]
    item_module._ENCODERS[cls] = None
    try:
        construct_only = _outcome(make)
    finally:
        item_module._ENCODERS[cls] = saved
    assert fast == construct_only


def test_iterators_are_left_whole_for_the_construct_path() -> None:
    """A generator field is not consumed by the generated encoder before it gives up."""
    item = TurtleFileMapItem(1, 2, (x for x in (5, 6, 7)))  # type: ignore[arg-type]
    assert pqi.encode(item) == pqi.encode(TurtleFileMapItem(1, 2, (5, 6, 7)))
    services = {0x02001100: ServiceInfo("disc", 0x02001100)}
    proxy = ServiceInfoListItem(types.MappingProxyType(services))  # type: ignore[arg-type]
    assert pqi.encode(proxy) == pqi.encode(ServiceInfoListItem(services))


# --- the pieces the generated code shares -------------------------------------------------------

def test_flag_cache_is_bounded_and_exact() -> None:
    """Flag members come back identical to ChatFlags(value); the cache stops growing at its cap."""
    body = bytearray(ChatMsgItem(ChatFlags(0), 1, "hi").encode_body())
    seen = []
    for value in range(codegen._FLAG_CACHE + 50):
        body[0:4] = struct.pack(">I", value << 15 | 1)
        got = pqi.decode(_HDR.pack(2, 0x12, 0x01, 8 + len(body)) + bytes(body))
        assert got.flags is ChatFlags(value << 15 | 1)  # type: ignore[union-attr]
        seen.append(got)
    fast_ns = item_module._decoder(ChatMsgItem).__globals__  # type: ignore[union-attr]
    caches = [v for k, v in fast_ns.items() if k.startswith("_FC")]
    assert len(caches) == 1
    assert len(caches[0]) == codegen._FLAG_CACHE


class _Colour(enum.IntEnum):
    RED = 1


def test_positional_only_where_it_binds_the_same() -> None:
    """Factories are called positionally only when their signature makes that identical."""
    @dataclasses.dataclass
    class Plain:
        b: int
        a: int

    @dataclasses.dataclass(kw_only=True)
    class KwOnly:
        a: int

    assert codegen._positional(Plain, {"a": "x", "b": "y"}) == ["b", "a"]
    assert codegen._positional(KwOnly, {"a": "x"}) is None
    assert codegen._positional(Plain, {"a": "x"}) is None
    assert codegen._positional(_Colour, {"value": "x"}) is None  # not a plain class
    assert codegen._positional(lambda a: a, {"a": "x"}) is None


_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")


def _sanitise_reference(tlv_type: int, raw: bytes) -> bytes:
    """The specification of sanitise_string, written the plain way."""
    decoded = _PERCENT.sub(lambda m: bytes([int(m.group(1), 16)]), raw) if b"%" in raw else raw
    if any(m in decoded for m in (b"<!e", b"<!E", b"PD94bW", b"PHN2Zy")):
        raw = (b"**** String removed (SVG bomb?) ****" + b" " * len(raw))[: len(raw)]
    if tlv_type in tlv.CONTROL_CHARS_FORBIDDEN:
        raw = raw.translate(bytes.maketrans(bytes(range(1, 32)), b" " * 31))
    return raw


_MARKERY = st.lists(st.sampled_from([b"<", b"!", b"e", b"E", b"%", b"3C", b"21", b"65", b"PD94bW",
                                     b"PHN2Zy", b"P", b"x", b"\x01", b"<!"]), max_size=12).map(
    b"".join)


@pytest.mark.slow
@given(tlv_type=st.sampled_from([0x57, 0x51, 0x0]), raw=_MARKERY | st.binary(max_size=40))
def test_sanitise_string_matches_its_specification(tlv_type: int, raw: bytes) -> None:
    """The find-based sanitiser gives the same bytes as the plain specification."""
    assert tlv.sanitise_string(tlv_type, raw) == _sanitise_reference(tlv_type, raw)


def _header_reference(raw: bytes) -> DecodeError | None:
    """The header checks as `pqi.decode` made them before the fast path: the error, if any."""
    try:
        header = pqi.parse_header(raw)
    except DecodeError as e:
        return e
    if header.size != len(raw):
        kind = TruncatedError if header.size > len(raw) else TrailingBytesError
        return kind(f"header says {header.size} bytes, buffer holds {len(raw)}",
                    field="header.size", offset=4)
    return None


@pytest.mark.slow
@given(head=st.binary(min_size=0, max_size=4),
       size=st.sampled_from([0, 7, 8, 9, 12, 13, MAX_SERIAL_SIZE, MAX_SERIAL_SIZE + 1,
                             0xFFFFFFFF]),
       tail=st.binary(max_size=8))
def test_header_errors_unchanged(head: bytes, size: int, tail: bytes) -> None:
    """Short buffers and bad or mismatched sizes raise exactly what the header checks raise."""
    raw = (head + bytes(4))[:4] + struct.pack(">I", size) + tail if len(head) == 4 else head
    want = _header_reference(raw)
    if want is None:
        return  # a consistent header: decoding the body is the other tests' business
    with pytest.raises(DecodeError) as e:
        pqi.decode(raw)
    assert (type(e.value), str(e.value), e.value.field, e.value.offset) == (
        type(want), str(want), want.field, want.offset)


@pytest.mark.parametrize("size", [MAX_SERIAL_SIZE, MAX_SERIAL_SIZE + 1])
def test_header_size_limit_with_the_bytes_present(size: int) -> None:
    """An item whose header size matches its length: refused above MAX_SERIAL_SIZE only."""
    raw = _HDR.pack(2, 0x0017, 0x02, size) + bytes(size - 8)
    want = _header_reference(raw)
    with pytest.raises(DecodeError) as e:
        pqi.decode(raw)
    if want is None:  # the size is fine: the body (all zeros) is what fails
        assert not isinstance(e.value, LimitExceededError)
    else:
        assert isinstance(want, LimitExceededError)
        assert (type(e.value), str(e.value), e.value.offset) == (type(want), str(want), 4)
