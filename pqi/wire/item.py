# -*- test-case-name: tests.test_item -*-
"""PQItem, the item registry, and whole-item encode/decode.

An item is a typed value (a dataclass) plus a `construct` schema for its body.  The 8-byte
header is plain `struct`: it is fixed, hot, and checked before anything else is read.  Bodies are
parsed with core `construct` over a buffer whose length the header already bounded, and every
custom construct in `pqi.wire.fields`/`pqi.wire.tlv` checks its own counts before looping.

The schema is also compiled into plain `struct` code by `pqi.wire.codegen` (generated on a class's
first use); that code runs first, and anything it does not accept is decided by the construct
path, so values and errors are exactly the construct's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import struct
from typing import Any, ClassVar, Final, TypeVar, dataclass_transform

import construct as c

from pqi.wire import codegen
from pqi.wire.errors import (
    DecodeError,
    EncodeError,
    InvalidValueError,
    LimitExceededError,
    TrailingBytesError,
    TruncatedError,
)
from pqi.wire.limits import HEADER_SIZE, MAX_SERIAL_SIZE

__all__ = [
    "PKT_VERSION_SERVICE",
    "PQItem",
    "UnknownItem",
    "ItemHeader",
    "encode",
    "decode",
    "parse_header",
    "registered",
    "item_class",
]

#: Byte 0 of every network item (``RS_PKT_VERSION_SERVICE``).
PKT_VERSION_SERVICE: Final = 0x02

_HEADER = struct.Struct(">BHBI")
_SHORT = (0, 0, 0, -1)  # stands for a header too short to read: never equal to a length
_REGISTRY: dict[tuple[int, int], type[PQItem]] = {}

_ItemT = TypeVar("_ItemT", bound="PQItem")


@dataclasses.dataclass(frozen=True, slots=True)
class ItemHeader:
    """The 8-byte header: version, service, subtype and total size (header included)."""

    version: int
    service: int
    subtype: int
    size: int

    def pack(self) -> bytes:
        return _HEADER.pack(self.version, self.service, self.subtype, self.size)


def parse_header(data: bytes | bytearray | memoryview) -> ItemHeader:
    """Read and check an item header: the size must lie in [8, MAX_SERIAL_SIZE]."""
    return ItemHeader(*_header(data))


def _header(data: bytes | bytearray | memoryview) -> tuple[int, int, int, int]:
    if len(data) < HEADER_SIZE:
        raise TruncatedError(f"item header needs {HEADER_SIZE} bytes, got {len(data)}",
                             field="header", offset=0)
    version, service, subtype, size = _HEADER.unpack_from(data)
    if size < HEADER_SIZE:
        raise InvalidValueError(f"item size {size} is smaller than its header",
                                field="header.size", offset=4)
    if size > MAX_SERIAL_SIZE:
        raise LimitExceededError("MAX_SERIAL_SIZE", size, MAX_SERIAL_SIZE,
                                 field="header.size", offset=4)
    return version, service, subtype, size


@dataclass_transform(eq_default=True)
class PQItem:
    """Base of every item: a value with a service id, a subtype, a body schema and a priority.

    A subclass declares its fields as annotated class attributes (it becomes a dataclass
    automatically) and ``BODY``, a `construct` ``Struct`` whose named fields are exactly those
    attributes.  Subclasses that set ``SERVICE`` and ``SUBTYPE`` are registered for `decode`.
    ``PRIORITY`` is RetroShare's QoS level (0..9, higher leaves first).
    """

    SERVICE: ClassVar[int]
    SUBTYPE: ClassVar[int]
    BODY: ClassVar[c.Construct] = c.Struct()
    PRIORITY: ClassVar[int] = 3
    VERSION: ClassVar[int] = PKT_VERSION_SERVICE
    _FIELDS: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("__annotations__") or not dataclasses.is_dataclass(cls):
            dataclasses.dataclass(cls)  # in place: fields, __init__, __eq__, __repr__
        # else a subclass adding no field (the NXS item per GXS service) inherits them: the
        # dataclass machinery costs milliseconds a class, and every process start pays it
        cls._FIELDS = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        names = tuple(sc.name for sc in getattr(cls.BODY, "subcons", ()) if sc.name)
        if set(names) != set(cls._FIELDS):
            raise TypeError(f"{cls.__name__}: BODY fields {names} != dataclass fields "
                            f"{cls._FIELDS}")
        _check_schema(cls.BODY, cls.__name__)
        if "SERVICE" in cls.__dict__ or "SUBTYPE" in cls.__dict__:
            key = (cls.SERVICE, cls.SUBTYPE)
            other = _REGISTRY.get(key)
            if other is not None and other.__qualname__ != cls.__qualname__:
                raise TypeError(f"{cls.__name__} and {other.__name__} both claim "
                                f"service 0x{key[0]:04x} subtype 0x{key[1]:02x}")
            _REGISTRY[key] = cls

    def body_fields(self) -> dict[str, Any]:
        """The field values, by name, as the body schema builds them."""
        return {name: getattr(self, name) for name in self._FIELDS}

    def encode_body(self) -> bytes:
        fast = _encoder(type(self))
        if fast is not None:
            out = bytearray()
            try:
                fast.body(self, out)
            except Exception:  # noqa: BLE001  (the construct builder below decides)
                pass
            else:
                return bytes(out)
        try:
            return _compiled(type(self)).build(self.body_fields())
        except EncodeError:
            raise
        except (c.ConstructError, struct.error, TypeError, AttributeError, KeyError,
                ValueError, OverflowError) as e:
            # A field holding the wrong kind of value (None for a FileItem, text for an int):
            # our bug, reported as the one encode error callers catch.
            raise EncodeError(f"{type(self).__name__}: {e!r}") from e

    @classmethod
    def decode_body(cls: type[_ItemT], body: bytes) -> _ItemT:
        """Decode a body (the bytes after the header); the whole body must be consumed.

        The generated decoder (`pqi.wire.codegen`) runs first, or where the schema holds a construct
        it does not know, the compiled schema; the latter is safe because `_check_schema` admits
        only constructs whose compiled reads are length-checked.  Any failure is re-diagnosed by
        the core schema, whose error names the field and offset.
        """
        if type(body) is not bytes:
            body = bytes(body)
        fast = _decoder(cls)
        if fast is not None:
            try:
                return fast(body, 0, len(body))  # type: ignore[no-any-return]
            except Exception:  # noqa: BLE001  (re-diagnosed below, precisely)
                return cls._decode_body_core(body)
        stream = io.BytesIO(body)
        try:
            parsed = _compiled(cls).parse_stream(stream)
        except Exception:  # noqa: BLE001  (re-diagnosed below, precisely)
            return cls._decode_body_core(body)
        if stream.tell() != len(body):
            return cls._decode_body_core(body)
        return cls(**{name: parsed[name] for name in cls._FIELDS})

    @classmethod
    def _decode_body_core(cls: type[_ItemT], body: bytes) -> _ItemT:
        stream = io.BytesIO(body)
        try:
            parsed = cls.BODY.parse_stream(stream)
        except DecodeError as e:
            if e.offset is not None:
                e.offset += HEADER_SIZE
            raise
        except c.ConstructError as e:
            raise _from_construct(e, stream.tell() + HEADER_SIZE) from e
        end = stream.tell()
        if end != len(body):
            raise TrailingBytesError(f"{len(body) - end} bytes after the last field of "
                                     f"{cls.__name__}", offset=end + HEADER_SIZE)
        return cls(**{name: parsed[name] for name in cls._FIELDS})


@dataclasses.dataclass(eq=True)
class UnknownItem:
    """An item of a (service, subtype) we have no class for: kept whole, never interpreted.

    Upper layers drop and count these; holding the raw bytes lets a capture tool or a relay
    pass them on unchanged.
    """

    service: int
    subtype: int
    body: bytes
    version: int = PKT_VERSION_SERVICE
    PRIORITY: ClassVar[int] = 3

    @property
    def SERVICE(self) -> int:  # noqa: N802  (same spelling as PQItem's class attribute)
        return self.service

    @property
    def SUBTYPE(self) -> int:  # noqa: N802
        return self.subtype

    def __repr__(self) -> str:
        return (f"UnknownItem(service=0x{self.service:04x}, subtype=0x{self.subtype:02x}, "
                f"body={len(self.body)} bytes)")


#: Core constructs whose compiled form never reads past a short buffer silently: integers
#: (``struct.unpack`` raises) and pure containers.  ``Bytes``, ``GreedyBytes``, ``Array``,
#: ``PrefixedArray``, ``GreedyRange``, ``VarInt``, ``Compressed`` ... are not admitted:
#: use `pqi.wire.fields` / `pqi.wire.tlv` instead, which check lengths against named limits.
_SAFE_CORE = (c.Struct, c.Sequence, c.Renamed, c.FormatField, c.Adapter)
_OURS = ("pqi.", "services.", "dht.", "tcponudp.")
_COMPILED: dict[type, c.Construct] = {}
_DECODERS: dict[type, codegen.Decoder | None] = {}
_ENCODERS: dict[type, codegen.Encoders | None] = {}
_UNSEEN: Any = object()


def _check_schema(con: c.Construct, owner: str) -> None:
    """Refuse schemas that could loop or read short on hostile input."""
    if type(con).__module__.startswith(_OURS):
        return
    if not isinstance(con, _SAFE_CORE):
        raise TypeError(f"{owner}: {type(con).__name__} is not allowed in an item schema; "
                        "use the bounded constructs of pqi.wire.fields / pqi.wire.tlv")
    for sub in getattr(con, "subcons", ()):
        _check_schema(sub, owner)
    if hasattr(con, "subcon"):
        _check_schema(con.subcon, owner)


def _decoder(cls: type[PQItem]) -> codegen.Decoder | None:
    """``cls``'s generated decoder (made on first use), or None: keep the construct path."""
    try:
        return _DECODERS[cls]
    except KeyError:
        pass
    fast = None
    if cls.decode_body.__func__ is PQItem.decode_body.__func__:  # type: ignore[attr-defined]
        with contextlib.suppress(codegen.UnsupportedSchemaError):
            fast = codegen.make_decoder(cls)
    _DECODERS[cls] = fast
    return fast


def _encoder(cls: type[PQItem]) -> codegen.Encoders | None:
    """``cls``'s generated encoder (made on first use), or None: keep the construct path."""
    try:
        return _ENCODERS[cls]
    except KeyError:
        pass
    fast = None
    if issubclass(cls, PQItem) and cls.encode_body is PQItem.encode_body:
        with contextlib.suppress(codegen.UnsupportedSchemaError):
            fast = codegen.make_encoder(cls)
    _ENCODERS[cls] = fast
    return fast


def _compiled(cls: type[PQItem]) -> c.Construct:
    compiled = _COMPILED.get(cls)
    if compiled is None:
        compiled = _COMPILED[cls] = cls.BODY.compile()
    return compiled


def _from_construct(e: c.ConstructError, offset: int) -> DecodeError:
    message = str(e).split("\n", 1)[-1]
    if isinstance(e, c.StreamError):
        return TruncatedError(message, field=e.path, offset=offset)
    return InvalidValueError(message, field=e.path, offset=offset)


def encode(item: PQItem | UnknownItem) -> bytes:
    """Serialise an item: 8-byte header then body.  Raises `EncodeError` if over the limit."""
    fast = _ENCODERS.get(type(item), _UNSEEN)
    if fast is _UNSEEN:
        fast = _encoder(type(item))  # type: ignore[arg-type]
    if fast is not None:
        try:
            raw = fast.item(item)  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001  (encode_body's construct path decides)
            pass
        else:
            if len(raw) > MAX_SERIAL_SIZE:
                raise EncodeError(f"{type(item).__name__} is {len(raw)} bytes, over "
                                  f"MAX_SERIAL_SIZE ({MAX_SERIAL_SIZE})")
            return raw
    if isinstance(item, UnknownItem):
        body = item.body
        version, service, subtype = item.version, item.service, item.subtype
    else:
        body = item.encode_body()
        version, service, subtype = item.VERSION, item.SERVICE, item.SUBTYPE
    size = HEADER_SIZE + len(body)
    if size > MAX_SERIAL_SIZE:
        raise EncodeError(f"{type(item).__name__} is {size} bytes, over MAX_SERIAL_SIZE "
                          f"({MAX_SERIAL_SIZE})")
    return _HEADER.pack(version, service, subtype, size) + body


def decode(data: bytes | bytearray | memoryview) -> PQItem | UnknownItem:
    """Decode one whole item (header included).

    Returns the registered class's instance, or `UnknownItem` for an unregistered (service,
    subtype).  Raises a `DecodeError` subclass for anything malformed, and nothing else.
    """
    n = len(data)
    version, service, subtype, size = _HEADER.unpack_from(data) if n >= HEADER_SIZE else _SHORT
    if size != n or n > MAX_SERIAL_SIZE:  # else the size is n, within [8, MAX_SERIAL_SIZE]
        version, service, subtype, size = _header(data)  # raises what is wrong with it
        raise (TruncatedError if size > n else TrailingBytesError)(
            f"header says {size} bytes, buffer holds {n}", field="header.size", offset=4)
    cls = _REGISTRY.get((service, subtype))
    if cls is None or version != cls.VERSION:
        return UnknownItem(service, subtype, bytes(data[HEADER_SIZE:]), version)
    fast = _DECODERS.get(cls, _UNSEEN)
    if fast is _UNSEEN:
        fast = _decoder(cls)
    if fast is None:
        return cls.decode_body(bytes(data[HEADER_SIZE:]))
    if type(data) is not bytes:
        data = bytes(data)
    try:
        return fast(data, HEADER_SIZE, size)  # type: ignore[misc,no-any-return]
    except Exception:  # noqa: BLE001  (the core parser re-diagnoses, precisely)
        return cls._decode_body_core(data[HEADER_SIZE:])


def registered() -> dict[tuple[int, int], type[PQItem]]:
    """A copy of the registry: (service, subtype) -> item class."""
    return dict(_REGISTRY)


def item_class(service: int, subtype: int) -> type[PQItem] | None:
    """The class registered for (service, subtype), if any."""
    return _REGISTRY.get((service, subtype))
