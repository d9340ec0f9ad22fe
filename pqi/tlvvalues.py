# -*- test-case-name: tests.test_tlv -*-
"""Compound TLV values shared by many services: files, addresses, signatures.

Each is a frozen dataclass (compared by value, hashable where its parts are) plus the construct
that reads and writes it.
"""

from __future__ import annotations

import dataclasses
import io
import ipaddress
import struct
from typing import Any, Union

import construct as c

from . import tlvtypes as T  # noqa: N812  (RetroShare's TLV_TYPE_ prefix, shortened)
from .errors import EncodeError, InvalidValueError
from .fields import GxsId, IdField, Sha1Hash, u32, u64
from .fields_extra import DataclassStruct, _Tuple
from .limits import TLV_HEADER_SIZE
from .tlv import (
    TLV,
    BinaryTLV,
    CompoundTLV,
    IdSetTLV,
    Optional_,
    StringTLV,
    TLVList,
    UInt32TLV,
    UInt64TLV,
    _read_tlv,
    nested_errors,
    peek_tlv_type,
    tlv_header,
)

__all__ = [
    "FileItem", "FileSet", "FileData", "NetAddress", "AddressInfo", "KeySignature",
    "FileItemTLV", "FileSetTLV", "FileDataTLV", "AddressTLV", "AddressInfoTLV",
    "AddressSetTLV", "KeySignatureTLV",
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
    """A piece of a file (``RsTlvFileData``): which file, at which offset, the bytes."""

    file: FileItem
    offset: int
    data: bytes


FileDataTLV = TLV(T.FILEDATA, DataclassStruct(
    FileData, "file" / FileItemTLV, "offset" / UInt64TLV(T.UINT64_OFFSET),
    "data" / BinaryTLV(T.BIN_FILEDATA)), whole=False)


# --- addresses ------------------------------------------------------------------------------

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


@dataclasses.dataclass(frozen=True)
class NetAddress:
    """An IP address and port as carried in ``RsTlvIpAddress``."""

    host: IPAddress
    port: int

    def __str__(self) -> str:
        if self.host.version == 6:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


def _swap_words(raw: bytes) -> bytes:
    """Reverse each 4-byte word: what a double htonl does on a little-endian host."""
    return b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))


class _AddressTLV(c.Construct):
    """ADDRESS 0x1072: empty (unset) or an IPV4/IPV6 sub-TLV with the LE-host quirk.

    RetroShare byte-swaps values that are already in network order, so on every deployed
    (little-endian) client the IPv4 octets appear reversed and the port little-endian:
    1.2.3.4:7812 is ``04 03 02 01 84 1E``.  IPv6 has each 32-bit word reversed.
    """

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> NetAddress | None:
        _, base, data = _read_tlv(stream, path, T.ADDRESS)
        return _address_from_payload(data, path, base)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        sub = _address_payload(obj, path)
        stream.write(tlv_header(T.ADDRESS, len(sub)))
        stream.write(sub)
        return obj


def _address_from_payload(data: bytes, path: str, base: int) -> NetAddress | None:
    """The address in an ADDRESS TLV's payload ``data`` (found at offset ``base``).

    Shared by the construct and the generated fast decoders (`pqi.codegen`), so both read the
    quirk the same way.
    """
    if len(data) < 6:
        return None  # empty address (or too short for a sub-TLV: RetroShare skips it)
    sub_type, sub_len = struct.unpack_from(">HI", data)
    if sub_type == T.IPV4:
        want = 6 + 4 + 2
    elif sub_type == T.IPV6:
        want = 6 + 16 + 2
    else:
        return None  # unknown address kind: skipped like RetroShare
    if sub_len != want or len(data) < want:
        raise InvalidValueError(f"address TLV 0x{sub_type:04x} has length {sub_len}, "
                                f"expected {want}", field=path, offset=base)
    raw = data[6:want - 2]
    (port,) = struct.unpack_from("<H", data, want - 2)
    host: IPAddress = (ipaddress.IPv4Address(raw[::-1]) if sub_type == T.IPV4
                       else ipaddress.IPv6Address(_swap_words(raw)))
    return NetAddress(host, port)


def _address_payload(obj: NetAddress | None, path: str) -> bytes:
    """The payload of the ADDRESS TLV for ``obj`` (empty for None): the sub-TLV, quirk applied."""
    if obj is None:
        return b""
    if not 0 <= obj.port <= 0xFFFF:
        raise EncodeError(f"{path}: port {obj.port} out of range")
    if obj.host.version == 4:
        return tlv_header(T.IPV4, 6) + obj.host.packed[::-1] + struct.pack("<H", obj.port)
    return tlv_header(T.IPV6, 18) + _swap_words(obj.host.packed) + struct.pack("<H", obj.port)


AddressTLV = _AddressTLV()


@dataclasses.dataclass(frozen=True)
class AddressInfo:
    """An address with when it was seen and who told us (``RsTlvIpAddressInfo``)."""

    addr: NetAddress | None
    seen_time: int = 0
    source: int = 0


AddressInfoTLV = TLV(T.ADDRESS_INFO, DataclassStruct(
    AddressInfo, "addr" / AddressTLV, "seen_time" / u64, "source" / u32), whole=False)

#: ADDRESS_SET 0x1071: a list of AddressInfo TLVs, decoded to a tuple.
AddressSetTLV = _Tuple(TLVList(T.ADDRESS_SET, AddressInfoTLV))


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


def _key_id_from_text(text: str, path: str, offset: int) -> GxsId:
    """The GXS id whose hex text ``text`` is (exactly 32 hex digits), else `InvalidValueError`."""
    try:
        if len(text) != 2 * GxsId.LENGTH:  # bytes.fromhex would also take "00 01 ..."
            raise ValueError(f"{len(text)} characters")
        return GxsId.from_hex(text)
    except ValueError as e:
        raise InvalidValueError(f"key id {text!r} is not a GXS id", field=path,
                                offset=offset) from e


KeySignatureTLV = TLV(T.KEYSIGNATURE, DataclassStruct(
    KeySignature, "key_id" / _KeyIdString(), "sign_data" / BinaryTLV(T.SIGN_RSA_SHA1)),
    whole=False)

