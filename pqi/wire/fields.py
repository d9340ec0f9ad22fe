# -*- test-case-name: tests.test_fields -*-
"""`construct` building blocks for RetroShare's plain (non-TLV) field encodings.

Every construct here that reads a count or a length from the wire checks it against a named
limit from `pqi.wire.limits` *and* against the bytes actually left in the buffer before it loops or
allocates: core `construct`'s ``PrefixedArray``/``GreedyRange`` would happily spin 2**32 times
over a zero-width element, and the compiled mode returns short reads silently, so neither is used
on received data.
"""

from __future__ import annotations

import io
import struct
from typing import Any, ClassVar, TypeVar

import construct as c

from pqi.wire.errors import EncodeError, LimitExceededError, TruncatedError
from pqi.wire.limits import MAX_CONTAINER_COUNT, MAX_RAW_MEMORY

_U32 = struct.Struct(">I")

__all__ = [
    "u8", "u16", "u32", "u64", "Bool",
    "remaining", "read_exact",
    "RsString", "RawMemory", "BoundedArray",
    "FixedId", "SslId", "PgpId", "PgpFingerprint", "Sha1Hash", "Sha256Hash", "GxsId",
    "GxsMessageId", "IdField",
]

class _Int(c.FormatField):
    """A big-endian integer whose short read is a `TruncatedError` at the field's start.

    Core ``FormatField`` raises construct's ``StreamError``, which would leak out of TLVs
    parsed on their own; the compiled form (``struct.unpack``) is inherited unchanged.
    """

    def __init__(self, fmt: str) -> None:
        super().__init__(">", fmt)
        self._packer = struct.Struct(">" + fmt)

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> int:
        return int(self._packer.unpack(read_exact(stream, self.length, path))[0])


u8 = _Int("B")
u16 = _Int("H")
u32 = _Int("L")
u64 = _Int("Q")


class _Bool(c.Construct):
    """One byte; any non-zero byte reads as true (as C++ does), true is written as 1."""

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> bool:
        return read_exact(stream, 1, path) != b"\x00"

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> bool:
        stream.write(b"\x01" if obj else b"\x00")
        return bool(obj)

    def _sizeof(self, context: Any, path: str) -> int:
        return 1


Bool = _Bool()


def remaining(stream: io.BytesIO) -> int:
    """Bytes left to read in ``stream`` (a seekable in-memory stream)."""
    here = stream.tell()
    end = stream.seek(0, io.SEEK_END)
    stream.seek(here)
    return end - here


def read_exact(stream: io.BytesIO, n: int, path: str) -> bytes:
    """Read exactly ``n`` bytes or raise `TruncatedError` naming ``path`` and the offset."""
    offset = stream.tell()
    data = stream.read(n)
    if len(data) != n:
        raise TruncatedError(f"needed {n} bytes, {len(data)} left", field=path, offset=offset)
    return data


def _read_length(stream: io.BytesIO, path: str, limit_name: str, maximum: int, unit: int) -> int:
    """Read a u32 length/count, check it against a limit and against the bytes left."""
    offset = stream.tell()
    (n,) = _U32.unpack(read_exact(stream, 4, path))
    if n > maximum:
        raise LimitExceededError(limit_name, n, maximum, field=path, offset=offset)
    left = remaining(stream)
    if n * unit > left:
        raise TruncatedError(
            f"announces {n} x {unit} bytes, {left} left", field=path, offset=offset)
    return n




class _RawMemory(c.Construct):
    """u32 length + bytes (RetroShare's ``RawMemoryWrapper``; not a TLV despite some names)."""

    def __init__(self, maximum: int = MAX_RAW_MEMORY, limit_name: str = "MAX_RAW_MEMORY") -> None:
        super().__init__()
        self.maximum = maximum
        self.limit_name = limit_name

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> bytes:
        n = _read_length(stream, path, self.limit_name, self.maximum, 1)
        return stream.read(n)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> bytes:
        data = bytes(obj)
        stream.write(_U32.pack(len(data)))
        stream.write(data)
        return data


def RawMemory(maximum: int = MAX_RAW_MEMORY, limit_name: str = "MAX_RAW_MEMORY") -> c.Construct:
    """A u32-length-prefixed byte block capped at ``maximum`` (default 10 MiB)."""
    return _RawMemory(maximum, limit_name)


class _RsString(c.Construct):
    """u32 length + raw bytes, no terminator; text is UTF-8.

    Decoded with ``surrogateescape`` so that bytes which are not UTF-8 survive a decode/encode
    round trip unchanged (a relaying node must not alter what it forwards).
    """

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> str:
        n = _read_length(stream, path, "MAX_SERIAL_SIZE", MAX_RAW_MEMORY, 1)
        return stream.read(n).decode("utf-8", "surrogateescape")

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> str:
        data = obj.encode("utf-8", "surrogateescape")
        stream.write(_U32.pack(len(data)))
        stream.write(data)
        return obj


RsString = _RsString()


class _BoundedArray(c.Construct):
    """u32 count + elements, count capped at `MAX_CONTAINER_COUNT`.

    ``min_size`` is the smallest encoding of one element; the count is rejected unless
    ``count * min_size`` bytes are left, so a peer cannot make us loop without consuming input.
    """

    def __init__(self, subcon: c.Construct, min_size: int | None = None) -> None:
        super().__init__()
        if min_size is None:
            min_size = subcon.sizeof()
        if min_size < 1:
            raise ValueError("array elements must consume at least one byte")
        self.subcon = subcon
        self.min_size = min_size

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> list[Any]:
        n = _read_length(stream, path, "MAX_CONTAINER_COUNT", MAX_CONTAINER_COUNT, self.min_size)
        sub = self.subcon
        return [sub._parsereport(stream, context, path) for _ in range(n)]

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        items = list(obj)
        if len(items) > MAX_CONTAINER_COUNT:
            raise EncodeError(f"{len(items)} elements exceed MAX_CONTAINER_COUNT at {path}")
        stream.write(_U32.pack(len(items)))
        for x in items:
            self.subcon._build(x, stream, context, path)
        return items


def BoundedArray(subcon: c.Construct, min_size: int | None = None) -> c.Construct:
    """A RetroShare container (list, vector, set): u32 count then the elements."""
    return _BoundedArray(subcon, min_size)


# --- fixed-size ids -------------------------------------------------------------------------

_IdT = TypeVar("_IdT", bound="FixedId")


class FixedId(bytes):
    """A raw identifier of fixed length, written as its bytes with no length prefix.

    Subclasses fix ``LENGTH``; hex text is lower-case except where RetroShare upper-cases
    (PGP ids and fingerprints).
    """

    LENGTH: ClassVar[int] = 0
    UPPER: ClassVar[bool] = False

    def __new__(cls: type[_IdT], value: bytes | bytearray | memoryview = b"") -> _IdT:
        raw = bytes(value)
        if len(raw) != cls.LENGTH:
            raise ValueError(f"{cls.__name__} needs {cls.LENGTH} bytes, got {len(raw)}")
        return super().__new__(cls, raw)

    @classmethod
    def from_hex(cls: type[_IdT], text: str) -> _IdT:
        """Parse the hex form (either case)."""
        try:
            raw = bytes.fromhex(text)
        except ValueError as e:
            raise ValueError(f"{cls.__name__}: not hex: {text!r}") from e
        return cls(raw)

    @classmethod
    def null(cls: type[_IdT]) -> _IdT:
        """The all-zero id RetroShare uses for "none"."""
        return cls(bytes(cls.LENGTH))

    def to_hex(self) -> str:
        h = self.hex()
        return h.upper() if self.UPPER else h

    def __str__(self) -> str:
        return self.to_hex()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_hex()!r})"


class SslId(FixedId):
    """A location (device) id: 16 bytes derived from its TLS certificate."""
    LENGTH = 16


class PgpId(FixedId):
    """A profile id: the last 8 bytes of the OpenPGP v4 fingerprint."""
    LENGTH = 8
    UPPER = True


class PgpFingerprint(FixedId):
    """An OpenPGP v4 fingerprint (SHA-1 of the public-key packet)."""
    LENGTH = 20
    UPPER = True


class Sha1Hash(FixedId):
    """A file hash (SHA-1); RetroShare's ``RsFileHash``."""
    LENGTH = 20


class Sha256Hash(FixedId):
    """A SHA-256 digest."""
    LENGTH = 32


class GxsId(FixedId):
    """A GXS identity, group or circle id (16 bytes)."""
    LENGTH = 16


class GxsMessageId(FixedId):
    """A GXS message id (20 bytes)."""
    LENGTH = 20


class _IdField(c.Construct):
    def __init__(self, idtype: type[FixedId]) -> None:
        super().__init__()
        self.idtype = idtype

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> FixedId:
        t = self.idtype
        return bytes.__new__(t, read_exact(stream, t.LENGTH, path))

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> FixedId:
        t = self.idtype
        if len(obj) != t.LENGTH:
            raise EncodeError(f"{path}: {t.__name__} needs {t.LENGTH} bytes, got {len(obj)}")
        stream.write(obj)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        return self.idtype.LENGTH


def IdField(idtype: type[FixedId]) -> c.Construct:
    """Raw id bytes of ``idtype``'s fixed length, decoded to an ``idtype`` instance."""
    return _IdField(idtype)

