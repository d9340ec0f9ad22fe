# -*- test-case-name: tests.test_items_small -*-
"""Generic building blocks the service items need beyond `pqi.wire.fields` and `pqi.wire.tlv`.

They are shapes that several services share: a plain struct decoded to a frozen dataclass, a
flags word decoded to an `enum.IntFlag`, a count-prefixed list kept as a tuple, a
count-prefixed set of ids (``std::set``: written sorted), and a length-prefixed byte block with
its own named cap checked in both directions.  Every one that reads a count or a length checks
it against a named limit and against the bytes left before it loops or allocates.
"""

from __future__ import annotations

import enum
import io
import struct
from typing import Any

import construct as c

from pqi.wire.errors import EncodeError, LimitExceededError, TruncatedError
from pqi.wire.fields import BoundedArray, FixedId, read_exact, remaining
from pqi.wire.limits import MAX_CONTAINER_COUNT

__all__ = ["DataclassStruct", "FlagsField", "TupleArray", "IdList", "IdSet", "CappedBytes"]

_U32 = struct.Struct(">I")


class _DataclassStruct(c.Adapter):
    """A `construct` Struct whose value is an instance of a (frozen) dataclass."""

    def __init__(self, factory: type, struct_: c.Struct) -> None:
        super().__init__(struct_)
        self.factory = factory
        self.names = [sc.name for sc in struct_.subcons if sc.name]

    def _decode(self, obj: Any, context: Any, path: str) -> Any:
        return self.factory(**{n: obj[n] for n in self.names})

    def _encode(self, obj: Any, context: Any, path: str) -> dict[str, Any]:
        return {n: getattr(obj, n) for n in self.names}


def DataclassStruct(factory: type, *subcons: c.Construct) -> c.Construct:
    """Plain fields back to back (no TLV header), read into ``factory(**fields)``."""
    return _DataclassStruct(factory, c.Struct(*subcons))


class _FlagsField(c.Adapter):
    def __init__(self, flags: type[enum.IntFlag], subcon: c.Construct) -> None:
        super().__init__(subcon)
        self.flags = flags

    def _decode(self, obj: int, context: Any, path: str) -> enum.IntFlag:
        return self.flags(obj)  # IntFlag keeps bits it does not name

    def _encode(self, obj: Any, context: Any, path: str) -> int:
        return int(obj)


def FlagsField(flags: type[enum.IntFlag], subcon: c.Construct = c.Int32ub) -> c.Construct:
    """A flags word (u32 by default) decoded to ``flags``; unknown bits survive a round trip."""
    return _FlagsField(flags, subcon)


class _Tuple(c.Adapter):
    def _decode(self, obj: list[Any], context: Any, path: str) -> tuple[Any, ...]:
        return tuple(obj)

    def _encode(self, obj: Any, context: Any, path: str) -> list[Any]:
        return list(obj)


def TupleArray(subcon: c.Construct, min_size: int | None = None) -> c.Construct:
    """`pqi.wire.fields.BoundedArray` (u32 count + elements) decoded to a tuple."""
    return _Tuple(BoundedArray(subcon, min_size))


class _IdCollection(c.Construct):
    """u32 count + raw fixed-size ids (RetroShare's ``std::list``/``std::set`` of ids)."""

    def __init__(self, idtype: type[FixedId], as_set: bool) -> None:
        super().__init__()
        self.idtype = idtype
        self.as_set = as_set

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> Any:
        offset = stream.tell()
        (n,) = _U32.unpack(read_exact(stream, 4, path))
        if n > MAX_CONTAINER_COUNT:
            raise LimitExceededError("MAX_CONTAINER_COUNT", n, MAX_CONTAINER_COUNT,
                                     field=path, offset=offset)
        size = self.idtype.LENGTH
        left = remaining(stream)
        if n * size > left:
            raise TruncatedError(f"announces {n} ids of {size} bytes, {left} left",
                                 field=path, offset=offset)
        data = stream.read(n * size)
        t = self.idtype
        ids = (bytes.__new__(t, data[i:i + size]) for i in range(0, n * size, size))
        return frozenset(ids) if self.as_set else tuple(ids)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        ids = sorted(bytes(x) for x in obj) if self.as_set else [bytes(x) for x in obj]
        if len(ids) > MAX_CONTAINER_COUNT:
            raise EncodeError(f"{len(ids)} ids exceed MAX_CONTAINER_COUNT at {path}")
        if any(len(x) != self.idtype.LENGTH for x in ids):
            raise EncodeError(f"{path}: every id must be {self.idtype.LENGTH} bytes")
        stream.write(_U32.pack(len(ids)))
        stream.write(b"".join(ids))
        return obj


def IdList(idtype: type[FixedId]) -> c.Construct:
    """A ``std::list``/``std::vector`` of ids: u32 count + ids, decoded to a tuple in order."""
    return _IdCollection(idtype, as_set=False)


def IdSet(idtype: type[FixedId]) -> c.Construct:
    """A ``std::set`` of ids: u32 count + ids written in sorted order, decoded to a frozenset."""
    return _IdCollection(idtype, as_set=True)


class _CappedBytes(c.Construct):
    def __init__(self, maximum: int, limit_name: str) -> None:
        super().__init__()
        self.maximum = maximum
        self.limit_name = limit_name

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> bytes:
        offset = stream.tell()
        (n,) = _U32.unpack(read_exact(stream, 4, path))
        if n > self.maximum:
            raise LimitExceededError(self.limit_name, n, self.maximum, field=path, offset=offset)
        return read_exact(stream, n, path)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> bytes:
        data = bytes(obj)
        if len(data) > self.maximum:
            raise EncodeError(f"{path}: {len(data)} bytes exceed {self.limit_name} "
                              f"({self.maximum})")
        stream.write(_U32.pack(len(data)))
        stream.write(data)
        return data


def CappedBytes(maximum: int, limit_name: str) -> c.Construct:
    """u32 length + bytes, refused above ``maximum`` when reading *and* when writing."""
    return _CappedBytes(maximum, limit_name)
