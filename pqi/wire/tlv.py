# -*- test-case-name: tests.test_tlv -*-
"""TLV encodings: a 6-byte header (type u16, length u32 including the header) and a payload.

The constructs here are the generic shapes (string, integer, binary, id set, list, compound with
optional parts, map); `pqi.wire.tlvtypes` holds the type numbers and the concrete compound values
(files, addresses, signatures).  Readers follow RetroShare where it is lenient in a harmless way
(compound TLVs skip sub-TLVs they do not know and trailing bytes inside their length) and are
stricter where leniency would hide corruption (a simple TLV whose length does not fit its type).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import construct as c

from pqi.wire import tlvtypes as T  # noqa: N812  (RetroShare's TLV_TYPE_ prefix, shortened)
from pqi.wire.errors import DecodeError, EncodeError, InvalidValueError, TruncatedError
from pqi.wire.fields import FixedId, read_exact, remaining
from pqi.wire.limits import TLV_HEADER_SIZE

__all__ = [
    "TLV",
    "StringTLV",
    "UInt32TLV",
    "UInt64TLV",
    "BinaryTLV",
    "IdSetTLV",
    "TLVList",
    "CompoundTLV",
    "MapTLV",
    "sanitise_string",
    "tlv_header",
    "peek_tlv_type",
    "nested_errors",
]

_HDR = struct.Struct(">HI")


def tlv_header(tlv_type: int, payload_len: int) -> bytes:
    """The 6-byte header for a payload of ``payload_len`` bytes."""
    total = payload_len + TLV_HEADER_SIZE
    if total > 0xFFFFFFFF:
        raise EncodeError(f"TLV 0x{tlv_type:04x} too large ({total} bytes)")
    return _HDR.pack(tlv_type, total)


def peek_tlv_type(stream: io.BytesIO) -> int | None:
    """The type of the next TLV, or None when fewer than a header's bytes are left."""
    here = stream.tell()
    head = stream.read(2)
    stream.seek(here)
    return struct.unpack(">H", head)[0] if len(head) == 2 else None


def _read_tlv(stream: io.BytesIO, path: str, expect: int | None) -> tuple[int, int, bytes]:
    """Read one whole TLV; return (type, offset of payload, payload bytes)."""
    offset = stream.tell()
    tlv_type, length = _HDR.unpack(read_exact(stream, TLV_HEADER_SIZE, path))
    if expect is not None and tlv_type != expect:
        raise InvalidValueError(f"expected TLV type 0x{expect:04x}, found 0x{tlv_type:04x}",
                                field=path, offset=offset)
    if length < TLV_HEADER_SIZE:
        raise InvalidValueError(f"TLV length {length} is shorter than its header",
                                field=path, offset=offset + 2)
    left = remaining(stream)
    if length - TLV_HEADER_SIZE > left:
        raise TruncatedError(f"TLV announces {length} bytes, {left + TLV_HEADER_SIZE} left",
                             field=path, offset=offset + 2)
    return tlv_type, offset + TLV_HEADER_SIZE, stream.read(length - TLV_HEADER_SIZE)


@contextlib.contextmanager
def nested_errors(sub: io.BytesIO, base: int) -> Iterator[None]:
    """Report errors from parsing ``sub`` (a TLV payload at ``base``) in outer offsets.

    A `DecodeError` has ``base`` added to its offset; an error of a core construct (a plain
    ``c.Int32ub`` inside a TLV, say) becomes the matching `DecodeError`, so nothing but the
    family escapes a TLV.
    """
    try:
        yield
    except DecodeError as e:
        if e.offset is not None:
            e.offset += base
        raise
    except c.ConstructError as e:
        message = str(e).split("\n", 1)[-1]
        kind = TruncatedError if isinstance(e, c.StreamError) else InvalidValueError
        raise kind(message, field=e.path, offset=base + sub.tell()) from e


def _parse_in(sub: c.Construct, payload: bytes, base: int, context: Any, path: str,
              whole: bool) -> tuple[Any, int]:
    """Parse ``sub`` over ``payload``; shift error offsets by ``base``; return (value, used)."""
    stream = io.BytesIO(payload)
    with nested_errors(stream, base):
        value = sub._parsereport(stream, context, path)
    used = stream.tell()
    if whole and used != len(payload):
        raise InvalidValueError(f"{len(payload) - used} unexpected bytes at the end of the TLV",
                                field=path, offset=base + used)
    return value, used


class TLV(c.Construct):
    """A TLV of fixed type around ``payload``.

    ``whole=True`` (simple TLVs) requires the payload to fill the TLV exactly; ``whole=False``
    (compound TLVs) ignores trailing bytes, as RetroShare's readers do.
    """

    def __init__(self, tlv_type: int, payload: c.Construct, whole: bool = True) -> None:
        super().__init__()
        self.tlv_type = tlv_type
        self.payload = payload
        self.whole = whole

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> Any:
        _, base, data = _read_tlv(stream, path, self.tlv_type)
        return _parse_in(self.payload, data, base, context, path, self.whole)[0]

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        # Build the payload in place after a placeholder header, then patch the length: a
        # 240 KiB file-data payload is then never copied into a buffer of its own.
        start = stream.tell()
        stream.write(bytes(TLV_HEADER_SIZE))
        self.payload._build(obj, stream, context, path)
        end = stream.tell()
        stream.seek(start)
        stream.write(tlv_header(self.tlv_type, end - start - TLV_HEADER_SIZE))
        stream.seek(end)
        return obj


# --- strings --------------------------------------------------------------------------------

_BOMB_TEXT = b"**** String removed (SVG bomb?) ****"
_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")
#: String TLV types whose control characters (0x01-0x1F) become spaces, as RetroShare does.
CONTROL_CHARS_FORBIDDEN = frozenset({
    0, T.STR_PEERID, T.STR_NAME, T.STR_PATH, T.STR_TITLE, T.STR_SUBJECT, T.STR_LOCATION,
    T.STR_VERSION})
_CONTROL = bytes.maketrans(bytes(range(1, 32)), b" " * 31)


def sanitise_string(tlv_type: int, raw: bytes) -> bytes:
    """Neutralise what RetroShare neutralises in received string TLVs, keeping the length.

    A string containing an XML-entity or base64 XML/SVG marker, plain or %-encoded, is replaced
    by a fixed notice padded with spaces to the same length; control characters in name-like
    types become spaces.  (RetroShare's matcher restarts badly after a partial match and so
    misses e.g. ``<<!e``; we search properly, which is stricter, never looser.)
    """
    # ``find`` rather than ``in``: on bytes, ``in`` first tries the needle as an int and pays
    # for the TypeError, which made this function the dearest step of decoding a chat item.
    if raw.find(b"%") >= 0:
        decoded = _PERCENT.sub(lambda m: bytes([int(m.group(1), 16)]), raw)
    else:
        decoded = raw
    find = decoded.find
    if ((find(b"<!") >= 0 and (find(b"<!e") >= 0 or find(b"<!E") >= 0))
            or find(b"PD94bW") >= 0 or find(b"PHN2Zy") >= 0):  # XML entity, base64 XML/SVG
        raw = (_BOMB_TEXT + b" " * len(raw))[: len(raw)]
    if tlv_type in CONTROL_CHARS_FORBIDDEN:
        raw = raw.translate(_CONTROL)
    return raw


class _StringTLV(c.Construct):
    def __init__(self, tlv_type: int) -> None:
        super().__init__()
        self.tlv_type = tlv_type

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> str:
        _, _, data = _read_tlv(stream, path, self.tlv_type)
        return sanitise_string(self.tlv_type, data).decode("utf-8", "surrogateescape")

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> str:
        data = obj.encode("utf-8", "surrogateescape")
        stream.write(tlv_header(self.tlv_type, len(data)))
        stream.write(data)
        return obj


def StringTLV(tlv_type: int) -> c.Construct:
    """A string TLV of ``tlv_type``: UTF-8 text, sanitised on reading."""
    return _StringTLV(tlv_type)


class _FixedTLV(c.Construct):
    def __init__(self, tlv_type: int, fmt: str) -> None:
        super().__init__()
        self.tlv_type = tlv_type
        self.fmt = struct.Struct(fmt)

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> int:
        offset = stream.tell()
        _, _, data = _read_tlv(stream, path, self.tlv_type)
        if len(data) != self.fmt.size:
            raise InvalidValueError(f"integer TLV carries {len(data)} bytes, not "
                                    f"{self.fmt.size}", field=path, offset=offset)
        return int(self.fmt.unpack(data)[0])

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> int:
        try:
            data = self.fmt.pack(obj)
        except struct.error as e:
            raise EncodeError(f"{path}: {e}") from e
        stream.write(tlv_header(self.tlv_type, len(data)))
        stream.write(data)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        return TLV_HEADER_SIZE + self.fmt.size


def UInt32TLV(tlv_type: int) -> c.Construct:
    """A 10-byte TLV holding a u32."""
    return _FixedTLV(tlv_type, ">I")


def UInt64TLV(tlv_type: int) -> c.Construct:
    """A 14-byte TLV holding a u64."""
    return _FixedTLV(tlv_type, ">Q")


class _BinaryTLV(c.Construct):
    def __init__(self, tlv_type: int, view: bool = False) -> None:
        super().__init__()
        self.tlv_type = tlv_type
        self.view = view

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> bytes:
        return _read_tlv(stream, path, self.tlv_type)[2]

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> bytes:
        data = bytes(obj)
        stream.write(tlv_header(self.tlv_type, len(data)))
        stream.write(data)
        return data


def BinaryTLV(tlv_type: int, *, view: bool = False) -> c.Construct:
    """A TLV whose payload is raw bytes (file data, signatures).

    With ``view``, the generated decoder gives a read-only `memoryview` of the item's bytes
    instead of a copy when it decodes a `bytes` object (file data: 240 KiB per item, which is
    only written to disk); ``bytes(value)`` makes a copy where one is wanted.
    """
    return _BinaryTLV(tlv_type, view)


class _IdSetTLV(c.Construct):
    def __init__(self, tlv_type: int, idtype: type[FixedId]) -> None:
        super().__init__()
        self.tlv_type = tlv_type
        self.idtype = idtype

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> frozenset[FixedId]:
        offset = stream.tell()
        _, _, data = _read_tlv(stream, path, self.tlv_type)
        n = self.idtype.LENGTH
        if len(data) % n:
            raise InvalidValueError(f"id set of {len(data)} bytes is not a multiple of {n}",
                                    field=path, offset=offset)
        t = self.idtype
        return frozenset(bytes.__new__(t, data[i:i + n]) for i in range(0, len(data), n))

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        n = self.idtype.LENGTH
        ids = sorted(bytes(x) for x in obj)
        if any(len(x) != n for x in ids):
            raise EncodeError(f"{path}: every id must be {n} bytes")
        data = b"".join(ids)
        stream.write(tlv_header(self.tlv_type, len(data)))
        stream.write(data)
        return obj


def IdSetTLV(tlv_type: int, idtype: type[FixedId]) -> c.Construct:
    """A set of fixed-size ids: concatenated raw ids, no count, written in sorted order."""
    return _IdSetTLV(tlv_type, idtype)


class _TLVList(c.Construct):
    """A TLV whose payload is a sequence of ``element`` TLVs (no count; bounded by length)."""

    def __init__(self, tlv_type: int, element: c.Construct) -> None:
        super().__init__()
        self.tlv_type = tlv_type
        self.element = element

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> list[Any]:
        _, base, data = _read_tlv(stream, path, self.tlv_type)
        return _parse_elements(self.element, data, base, context, path)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        inner = io.BytesIO()
        for x in obj:
            self.element._build(x, inner, context, path)
        data = inner.getvalue()
        stream.write(tlv_header(self.tlv_type, len(data)))
        stream.write(data)
        return obj


def _parse_elements(element: c.Construct, data: bytes, base: int, context: Any,
                    path: str) -> list[Any]:
    """Parse TLV elements until the payload is used up (each consumes >= 6 bytes)."""
    sub = io.BytesIO(data)
    out = []
    with nested_errors(sub, base):
        while sub.tell() < len(data):
            out.append(element._parsereport(sub, context, path))
    return out


def TLVList(tlv_type: int, element: c.Construct) -> c.Construct:
    """A list TLV (``RsTlvList``): header then element TLVs back to back."""
    return _TLVList(tlv_type, element)


@dataclasses.dataclass(frozen=True)
class Optional_:  # noqa: N801  (trailing _ avoids typing.Optional)
    """One optional sub-TLV of a `CompoundTLV`: written only when its value is not ``default``."""

    name: str
    tlv_type: int
    construct: c.Construct
    default: Any


class _CompoundTLV(c.Construct):
    """A TLV holding mandatory plain fields, then optional sub-TLVs in any order.

    Decodes to ``factory(**fields)``; unknown sub-TLVs and trailing bytes are skipped, as
    RetroShare's compound readers do.  Optional parts are written in declaration order, each
    only if it differs from its default, which reproduces RetroShare's bytes.
    """

    def __init__(self, tlv_type: int, mandatory: c.Struct, optional: Iterable[Optional_],
                 factory: Callable[..., Any]) -> None:
        super().__init__()
        self.tlv_type = tlv_type
        self.mandatory = mandatory
        self.optional = tuple(optional)
        self.by_type = {o.tlv_type: o for o in self.optional}
        self.factory = factory
        self.names = [sc.name for sc in mandatory.subcons if sc.name]

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> Any:
        _, base, data = _read_tlv(stream, path, self.tlv_type)
        sub = io.BytesIO(data)
        with nested_errors(sub, base):
            fixed = self.mandatory._parsereport(sub, context, path)
            values = {n: fixed[n] for n in self.names}
            for o in self.optional:
                values[o.name] = o.default
            while len(data) - sub.tell() >= TLV_HEADER_SIZE:
                t = peek_tlv_type(sub)
                opt = self.by_type.get(t)  # type: ignore[arg-type]
                if opt is None:
                    _read_tlv(sub, path, None)  # unknown: skip it whole
                else:
                    values[opt.name] = opt.construct._parsereport(sub, context, path)
        return self.factory(**values)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        inner = io.BytesIO()
        self.mandatory._build({n: getattr(obj, n) for n in self.names}, inner, context, path)
        for o in self.optional:
            value = getattr(obj, o.name)
            if value != o.default:
                o.construct._build(value, inner, context, path)
        data = inner.getvalue()
        stream.write(tlv_header(self.tlv_type, len(data)))
        stream.write(data)
        return obj


def CompoundTLV(tlv_type: int, mandatory: c.Struct, optional: Iterable[Optional_],
                factory: Callable[..., Any]) -> c.Construct:
    return _CompoundTLV(tlv_type, mandatory, optional, factory)


class _MapTLV(c.Construct):
    """RetroShare's generic map: map TLV > pair TLVs > (key TLV, value TLV); keys sorted.

    Unlike the compound readers, ``RsTlvGenericMapRef`` fails on a sub-TLV that is not a pair,
    and so do we; a later pair with an equal key replaces an earlier one (``std::map``'s
    ``operator[]``).
    """

    def __init__(self, map_type: int, pair_type: int, key: c.Construct,
                 value: c.Construct) -> None:
        super().__init__()
        self.map_type = map_type
        self.pair = TLV(pair_type, c.Sequence(key, value), whole=False)

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> dict[Any, Any]:
        _, base, data = _read_tlv(stream, path, self.map_type)
        return {k: v for k, v in _parse_elements(self.pair, data, base, context, path)}

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        inner = io.BytesIO()
        for k in sorted(obj):
            self.pair._build([k, obj[k]], inner, context, path)
        data = inner.getvalue()
        stream.write(tlv_header(self.map_type, len(data)))
        stream.write(data)
        return obj


def MapTLV(map_type: int, pair_type: int, key: c.Construct, value: c.Construct) -> c.Construct:
    """A map TLV; decodes to a dict, written in key order (``std::map``)."""
    return _MapTLV(map_type, pair_type, key, value)


