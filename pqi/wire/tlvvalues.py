# -*- test-case-name: tests.test_tlv -*-
"""Compound TLV values shared by many services: files and signatures (addresses: `address`).

Each is a frozen dataclass (compared by value, hashable where its parts are) plus the construct
that reads and writes it.
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any, Final

import construct as c

from pqi.wire import tlvtypes as T  # noqa: N812  (RetroShare's TLV_TYPE_ prefix, shortened)
from pqi.wire.compound import DataclassStruct
from pqi.wire.errors import EncodeError, InvalidValueError
from pqi.wire.fields import GxsId, IdField, Sha1Hash, u64
from pqi.wire.limits import TLV_HEADER_SIZE
from pqi.wire.tlv import (
    TLV,
    BinaryTLV,
    CompoundTLV,
    IdSetTLV,
    Optional_,
    StringTLV,
    UInt32TLV,
    UInt64TLV,
    _read_tlv,
    nested_errors,
    peek_tlv_type,
    tlv_header,
)

__all__ = [
    "FileItem", "FileSet", "FileData", "KeySignature",
    "FileItemTLV", "FileSetTLV", "FileDataTLV", "KeySignatureTLV",
]


@dataclasses.dataclass(frozen=True)
class FileItem:
    """A file reference (``RsTlvFileItem``): size and SHA-1, the rest optional."""

    size: int
    hash: Sha1Hash
    name: str = ""
    path: str = ""
    pop: int = 0
    age: int = 0
    piece_size: int = 0
    hash_set: frozenset[Sha1Hash] = frozenset()


FileItemTLV = CompoundTLV(
    T.FILEITEM,
    c.Struct("size" / u64, "hash" / IdField(Sha1Hash)),
    [
        Optional_("name", T.STR_NAME, StringTLV(T.STR_NAME), ""),
        Optional_("path", T.STR_PATH, StringTLV(T.STR_PATH), ""),
        Optional_("pop", T.UINT32_POP, UInt32TLV(T.UINT32_POP), 0),
        Optional_("age", T.UINT32_AGE, UInt32TLV(T.UINT32_AGE), 0),
        Optional_("piece_size", T.UINT32_SIZE, UInt32TLV(T.UINT32_SIZE), 0),
        Optional_("hash_set", T.HASHSET, IdSetTLV(T.HASHSET, Sha1Hash), frozenset()),
    ],
    FileItem,
)


@dataclasses.dataclass(frozen=True)
class FileSet:
    """A list of files with an optional title and comment (``RsTlvFileSet``)."""

    items: tuple[FileItem, ...] = ()
    title: str = ""
    comment: str = ""


class _FileSetTLV(c.Construct):
    """FileItems first, then optional title and comment; unknown sub-TLVs skipped."""

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> FileSet:
        _, base, data = _read_tlv(stream, path, T.FILESET)
        sub = io.BytesIO(data)
        items: list[FileItem] = []
        title = comment = ""
        title_c, comment_c = StringTLV(T.STR_TITLE), StringTLV(T.STR_COMMENT)
        with nested_errors(sub, base):
            while len(data) - sub.tell() >= TLV_HEADER_SIZE:
                t = peek_tlv_type(sub)
                if t == T.FILEITEM:
                    items.append(FileItemTLV._parsereport(sub, context, path))
                elif t == T.STR_TITLE:
                    title = title_c._parsereport(sub, context, path)
                elif t == T.STR_COMMENT:
                    comment = comment_c._parsereport(sub, context, path)
                else:
                    _read_tlv(sub, path, None)
        return FileSet(tuple(items), title, comment)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        inner = io.BytesIO()
        for f in obj.items:
            FileItemTLV._build(f, inner, context, path)
        if obj.title:
            StringTLV(T.STR_TITLE)._build(obj.title, inner, context, path)
        if obj.comment:
            StringTLV(T.STR_COMMENT)._build(obj.comment, inner, context, path)
        data = inner.getvalue()
        stream.write(tlv_header(T.FILESET, len(data)))
        stream.write(data)
        return obj


FileSetTLV = _FileSetTLV()


@dataclasses.dataclass(frozen=True)
class FileData:
    """A piece of a file (``RsTlvFileData``): which file, at which offset, the bytes.

    Decoded, ``data`` is a read-only view of the received item (no copy of the 240 KiB a
    data item carries on its way to the disk); it compares, hashes and encodes as bytes.
    """

    file: FileItem
    offset: int
    data: bytes | memoryview


FileDataTLV = TLV(T.FILEDATA, DataclassStruct(
    FileData, "file" / FileItemTLV, "offset" / UInt64TLV(T.UINT64_OFFSET),
    "data" / BinaryTLV(T.BIN_FILEDATA, view=True)), whole=False)


# --- addresses ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class KeySignature:
    """A GXS signature (``RsTlvKeySignature``): the signing key id and the signature bytes."""

    key_id: GxsId
    sign_data: bytes


class _KeyIdString(c.Construct):
    """The key id travels as the hex text of a 16-byte GXS id in a STR_KEYID TLV."""

    def __init__(self) -> None:
        super().__init__()
        self.text = StringTLV(T.STR_KEYID)

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> GxsId:
        offset = stream.tell()
        return _key_id_from_text(self.text._parsereport(stream, context, path), path, offset)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> GxsId:
        if len(obj) != GxsId.LENGTH:
            raise EncodeError(f"{path}: key id needs {GxsId.LENGTH} bytes, got {len(obj)}")
        self.text._build(bytes(obj).hex(), stream, context, path)
        return obj


#: The digits RetroShare writes a key id with: lower-case hex only.
_KEY_ID_DIGITS: Final = frozenset("0123456789abcdef")


def _key_id_from_text(text: str, path: str, offset: int) -> GxsId:
    """The GXS id whose hex text ``text`` is (exactly 32 lower-case hex digits, as RetroShare
    writes it), else `InvalidValueError`.  Any other spelling of the same id (upper case)
    would re-encode to other bytes than the signed item carried, so it is refused."""
    try:
        if len(text) != 2 * GxsId.LENGTH:  # bytes.fromhex would also take "00 01 ..."
            raise ValueError(f"{len(text)} characters")
        if not _KEY_ID_DIGITS.issuperset(text):
            raise ValueError("not lower-case hex")
        return GxsId.from_hex(text)
    except ValueError as e:
        raise InvalidValueError(f"key id {text!r} is not a GXS id", field=path,
                                offset=offset) from e


KeySignatureTLV = TLV(T.KEYSIGNATURE, DataclassStruct(
    KeySignature, "key_id" / _KeyIdString(), "sign_data" / BinaryTLV(T.SIGN_RSA_SHA1)),
    whole=False)

