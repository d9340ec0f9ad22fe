# -*- test-case-name: tests.test_dirlist -*-
"""The directory content carried by file-list sync responses (service 0x0019).

A ``FileListsSyncResponseItem`` holds one directory of a friend's shared tree as a byte block
made of *sections*: a tag byte, a size in RetroShare's 1/2/5-byte form, then the data.  A
directory is, in this order::

    DIR_NAME 0x51        u32-length name (empty for the root)
    RECURS_MODIF_TS 0x31 u32, the newest modification time anywhere below
    MODIF_TS 0x30        u32, the directory's own modification time
    RAW_NUMBER 0x62      u32, number of subdirectories
    RAW_NUMBER 0x62      u32, number of files
    ENTRY_INDEX 0x40     20-byte directory hash, once per subdirectory
    REMOTE_FILE_ENTRY 0x13, once per file, wrapping the sections
        FILE_NAME 0x21 (u32-length name), FILE_SIZE 0x22 (u64), FILE_SHA1_HASH 0x20 (20 bytes),
        MODIF_TS 0x30 (u32)

The size form (``write125Size`` in libretroshare's ``filelist_io.cc``): below 192, one byte;
below 8384, two bytes ``((s - 192) >> 8) + 192, (s - 192) & 0xFF``; otherwise ``0xFF`` and a
big-endian u32.  RetroShare always writes the shortest form; this decoder rejects any other
(a stricter check on input), so every content it accepts re-encodes to the same bytes.  Every
section's data must fill its section exactly, counts are checked against the bytes left
before anything is allocated, and only `pqi.wire.errors.DecodeError` subclasses come out.
"""

from __future__ import annotations

import dataclasses
import io
import struct
from typing import Any, Final

import construct as c

from pqi.wire.errors import (
    DecodeError,
    EncodeError,
    InvalidValueError,
    LimitExceededError,
    TrailingBytesError,
)
from pqi.wire.fields import IdField, RsString, Sha1Hash, read_exact, remaining, u32, u64
from pqi.wire.limits import MAX_CONTAINER_COUNT, MAX_RAW_MEMORY
from pqi.wire.tlv import nested_errors

__all__ = [
    "TAG_FILE_SHA1_HASH", "TAG_FILE_NAME", "TAG_FILE_SIZE", "TAG_MODIF_TS",
    "TAG_RECURS_MODIF_TS", "TAG_ENTRY_INDEX", "TAG_DIR_NAME", "TAG_RAW_NUMBER",
    "TAG_REMOTE_FILE_ENTRY", "MAX_DIR_CONTENT_SIZE",
    "RemoteFile", "DirContent", "Section", "DirContentCodec",
    "encode_size", "decode_size", "encode_dir", "decode_dir",
]

TAG_REMOTE_FILE_ENTRY: Final = 0x13
TAG_FILE_SHA1_HASH: Final = 0x20
TAG_FILE_NAME: Final = 0x21
TAG_FILE_SIZE: Final = 0x22
TAG_MODIF_TS: Final = 0x30
TAG_RECURS_MODIF_TS: Final = 0x31
TAG_ENTRY_INDEX: Final = 0x40
TAG_DIR_NAME: Final = 0x51
TAG_RAW_NUMBER: Final = 0x62

#: Largest directory content we accept (one response, or partial responses reassembled).
MAX_DIR_CONTENT_SIZE: Final = MAX_RAW_MEMORY

_ONE_BYTE_MAX: Final = 192
_TWO_BYTE_MAX: Final = 8384
#: Smallest encoded subdirectory entry (tag, size, 20-byte hash) and file entry (tag, size,
#: four sections of at least 2 + 4, 2 + 8, 2 + 20, 2 + 4 bytes).
_MIN_SUBDIR: Final = 22
_MIN_FILE: Final = 2 + 6 + 10 + 22 + 6


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One file of a directory as a friend announces it."""

    name: str
    size: int
    hash: Sha1Hash
    modif_ts: int


@dataclasses.dataclass(frozen=True)
class DirContent:
    """One directory: its name, times, subdirectory hashes and files."""

    name: str
    recurs_modif_ts: int
    modif_ts: int
    subdirs: tuple[Sha1Hash, ...] = ()
    files: tuple[RemoteFile, ...] = ()


def encode_size(size: int) -> bytes:
    """The shortest 1/2/5-byte form of a section size."""
    if size < 0 or size > 0xFFFFFFFF:
        raise EncodeError(f"section size {size} out of range")
    if size < _ONE_BYTE_MAX:
        return bytes((size,))
    if size < _TWO_BYTE_MAX:
        s = size - _ONE_BYTE_MAX
        return bytes(((s >> 8) + _ONE_BYTE_MAX, s & 0xFF))
    return b"\xff" + size.to_bytes(4, "big")


def decode_size(stream: io.BytesIO, path: str) -> int:
    """Read a section size; non-shortest forms and first bytes 224..254 are invalid."""
    offset = stream.tell()
    b1 = read_exact(stream, 1, path)[0]
    if b1 < _ONE_BYTE_MAX:
        return b1
    if b1 < 224:
        return ((b1 - _ONE_BYTE_MAX) << 8) + read_exact(stream, 1, path)[0] + _ONE_BYTE_MAX
    if b1 != 0xFF:
        raise InvalidValueError(f"section size byte 0x{b1:02x} is not a size form",
                                field=path, offset=offset)
    size = int.from_bytes(read_exact(stream, 4, path), "big")
    if size < _TWO_BYTE_MAX:
        raise InvalidValueError(f"section size {size} in the 5-byte form",
                                field=path, offset=offset)
    return size


class _Section(c.Construct):
    """A tagged section whose data is ``subcon`` and must fill it exactly."""

    def __init__(self, tag: int, subcon: c.Construct) -> None:
        super().__init__()
        self.tag = tag
        self.subcon = subcon

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> Any:
        offset = stream.tell()
        tag = read_exact(stream, 1, path)[0]
        if tag != self.tag:
            raise InvalidValueError(f"expected section tag 0x{self.tag:02x}, found 0x{tag:02x}",
                                    field=path, offset=offset)
        size = decode_size(stream, path)
        left = remaining(stream)
        if size > left:
            raise LimitExceededError("section size", size, left, field=path, offset=offset + 1)
        base = stream.tell()
        sub = io.BytesIO(stream.read(size))
        with nested_errors(sub, base):
            value = self.subcon._parsereport(sub, context, path)
        if sub.tell() != size:
            raise TrailingBytesError(f"{size - sub.tell()} bytes after the section's value",
                                     field=path, offset=base + sub.tell())
        return value

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        data = self.subcon.build(obj)
        stream.write(bytes((self.tag,)) + encode_size(len(data)))
        stream.write(data)
        return obj


def Section(tag: int, subcon: c.Construct) -> c.Construct:  # noqa: N802  (construct style)
    """A ``[tag][1/2/5-byte size][data]`` section holding ``subcon``."""
    return _Section(tag, subcon)


_NAME = RsString
_File = c.Struct(
    "name" / Section(TAG_FILE_NAME, _NAME),
    "size" / Section(TAG_FILE_SIZE, u64),
    "hash" / Section(TAG_FILE_SHA1_HASH, IdField(Sha1Hash)),
    "modif_ts" / Section(TAG_MODIF_TS, u32),
)
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def _section_at(buf: bytes, offset: int, tag: int, path: str) -> tuple[int, int]:
    """(data offset, size) of the section of ``tag`` at ``offset`` in ``buf``."""
    stream = io.BytesIO(buf)
    stream.seek(offset)
    got = read_exact(stream, 1, path)[0]
    if got != tag:
        raise InvalidValueError(f"expected section tag 0x{tag:02x}, found 0x{got:02x}",
                                field=path, offset=offset)
    size = decode_size(stream, path)
    start = stream.tell()
    if size > len(buf) - start:
        raise LimitExceededError("section size", size, len(buf) - start, field=path,
                                 offset=offset + 1)
    return start, size


class _RemoteFileCodec(c.Construct):
    """The four sections of one file, read straight from the entry's bytes.

    Same format and checks as `_File` (which builds them), without a construct per field:
    lists hold many thousands of files.
    """

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> RemoteFile:
        buf = stream.read()
        start, n = _section_at(buf, 0, TAG_FILE_NAME, path + ".name")
        if n < 4 or _U32.unpack_from(buf, start)[0] != n - 4:
            raise InvalidValueError("file name length does not fill its section",
                                    field=path + ".name", offset=start)
        name = buf[start + 4:start + n].decode("utf-8", "surrogateescape")
        off = start + n
        fields = []
        for tag, width, what in ((TAG_FILE_SIZE, 8, ".size"), (TAG_FILE_SHA1_HASH, 20, ".hash"),
                                 (TAG_MODIF_TS, 4, ".modif_ts")):
            start, n = _section_at(buf, off, tag, path + what)
            if n != width:
                raise InvalidValueError(f"{n}-byte section for a {width}-byte value",
                                        field=path + what, offset=start)
            fields.append(start)
            off = start + n
        if off != len(buf):
            raise TrailingBytesError(f"{len(buf) - off} bytes after the file's sections",
                                     field=path, offset=off)
        size_at, hash_at, ts_at = fields
        return RemoteFile(name, _U64.unpack_from(buf, size_at)[0],
                          bytes.__new__(Sha1Hash, buf[hash_at:hash_at + 20]),
                          _U32.unpack_from(buf, ts_at)[0])

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        _File._build(dict(name=obj.name, size=obj.size, hash=obj.hash, modif_ts=obj.modif_ts),
                     stream, context, path)
        return obj


_FileEntry = Section(TAG_REMOTE_FILE_ENTRY, _RemoteFileCodec())
_SubdirEntry = Section(TAG_ENTRY_INDEX, IdField(Sha1Hash))
_Count = Section(TAG_RAW_NUMBER, u32)


class _DirContentCodec(c.Construct):
    """The whole directory content: header sections, counts, then the counted entries."""

    def _count(self, stream: io.BytesIO, context: Any, path: str, unit: int) -> int:
        offset = stream.tell()
        n = int(_Count._parsereport(stream, context, path))
        if n > MAX_CONTAINER_COUNT:
            raise LimitExceededError("MAX_CONTAINER_COUNT", n, MAX_CONTAINER_COUNT,
                                     field=path, offset=offset)
        return n

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> DirContent:
        name = Section(TAG_DIR_NAME, _NAME)._parsereport(stream, context, path + ".name")
        recurs = Section(TAG_RECURS_MODIF_TS, u32)._parsereport(stream, context, path)
        modif = Section(TAG_MODIF_TS, u32)._parsereport(stream, context, path)
        offset = stream.tell()
        n_dirs = self._count(stream, context, path + ".subdirs", _MIN_SUBDIR)
        n_files = self._count(stream, context, path + ".files", _MIN_FILE)
        need = n_dirs * _MIN_SUBDIR + n_files * _MIN_FILE
        if need > remaining(stream):
            raise LimitExceededError("directory entries", need, remaining(stream),
                                     field=path, offset=offset)
        dirs = tuple(_SubdirEntry._parsereport(stream, context, path + ".subdirs")
                     for _ in range(n_dirs))
        files = tuple(_FileEntry._parsereport(stream, context, path + ".files")
                      for _ in range(n_files))
        return DirContent(name, recurs, modif, dirs, files)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        if len(obj.subdirs) > MAX_CONTAINER_COUNT or len(obj.files) > MAX_CONTAINER_COUNT:
            raise EncodeError("too many entries in one directory")
        Section(TAG_DIR_NAME, _NAME)._build(obj.name, stream, context, path)
        Section(TAG_RECURS_MODIF_TS, u32)._build(obj.recurs_modif_ts, stream, context, path)
        Section(TAG_MODIF_TS, u32)._build(obj.modif_ts, stream, context, path)
        _Count._build(len(obj.subdirs), stream, context, path)
        _Count._build(len(obj.files), stream, context, path)
        for h in obj.subdirs:
            _SubdirEntry._build(h, stream, context, path)
        for f in obj.files:
            _FileEntry._build(f, stream, context, path)
        return obj


#: The construct for a whole directory content (parse/build a `DirContent`).
DirContentCodec: Final = _DirContentCodec()


def decode_dir(data: bytes) -> DirContent:
    """Decode one directory's content; raises only `DecodeError` subclasses."""
    if len(data) > MAX_DIR_CONTENT_SIZE:
        raise LimitExceededError("MAX_DIR_CONTENT_SIZE", len(data), MAX_DIR_CONTENT_SIZE,
                                 field="dir", offset=0)
    stream = io.BytesIO(data)
    with nested_errors(stream, 0):
        content: DirContent = DirContentCodec.parse_stream(stream)
    if stream.tell() != len(data):
        raise TrailingBytesError(f"{len(data) - stream.tell()} bytes after the directory",
                                 field="dir", offset=stream.tell())
    return content


def encode_dir(content: DirContent) -> bytes:
    """Encode one directory's content (`EncodeError` for values out of range)."""
    try:
        return bytes(DirContentCodec.build(content))
    except DecodeError:
        raise
    except (c.ConstructError, OverflowError, AttributeError, TypeError) as e:
        raise EncodeError(f"cannot encode directory: {e}") from e
