# -*- test-case-name: tests.test_items_ft -*-
"""File transfer between friends (service 0x0017): data requests, data, chunk maps, chunk CRCs.

Subtypes 0x03 (transfer), 0x06/0x07 (CRC32 maps) are commented out in libretroshare and
0x0A/0x0B belong to the old cache system: none is sent today, none is registered here.
"""

from __future__ import annotations

import construct as c

from pqi.wire.compound import TupleArray
from pqi.wire.fields import Bool, IdField, Sha1Hash, u32, u64
from pqi.wire.item import PQItem
from pqi.wire.tlvvalues import FileData, FileDataTLV, FileItem, FileItemTLV

from .ids import SERVICE_FILE_TRANSFER

__all__ = [
    "FtDataRequestItem", "FtDataItem", "FtChunkMapRequestItem", "FtChunkMapItem",
    "FtChunkCrcRequestItem", "FtChunkCrcItem", "CompressedChunkMap",
]

#: ``CompressedChunkMap``: u32 count + u32 words; chunk i is bit (i & 31) of word i >> 5.
CompressedChunkMap = TupleArray(u32)


class FtDataRequestItem(PQItem):
    """``RsFileTransferDataRequestItem``: send me ``chunk_size`` bytes of ``file`` at offset."""

    SERVICE = SERVICE_FILE_TRANSFER
    SUBTYPE = 0x01
    PRIORITY = 6
    BODY = c.Struct("offset" / u64, "chunk_size" / u32, "file" / FileItemTLV)
    offset: int
    chunk_size: int
    file: FileItem


class FtDataItem(PQItem):
    """``RsFileTransferDataItem``: a piece of a file (at most 240 KiB per item)."""

    SERVICE = SERVICE_FILE_TRANSFER
    SUBTYPE = 0x02
    PRIORITY = 5
    BODY = c.Struct("data" / FileDataTLV)
    data: FileData


class FtChunkMapRequestItem(PQItem):
    """``RsFileTransferChunkMapRequestItem``: which 1 MiB chunks of that file do you have?"""

    SERVICE = SERVICE_FILE_TRANSFER
    SUBTYPE = 0x04
    PRIORITY = 6
    BODY = c.Struct("is_client" / Bool, "hash" / IdField(Sha1Hash))
    is_client: bool
    hash: Sha1Hash


class FtChunkMapItem(PQItem):
    """``RsFileTransferChunkMapItem``: the chunk bitmap of a file, as 32-bit words."""

    SERVICE = SERVICE_FILE_TRANSFER
    SUBTYPE = 0x05
    PRIORITY = 6
    BODY = c.Struct("is_client" / Bool, "hash" / IdField(Sha1Hash),
                    "chunk_map" / CompressedChunkMap)
    is_client: bool
    hash: Sha1Hash
    chunk_map: tuple[int, ...]


class FtChunkCrcRequestItem(PQItem):
    """``RsFileTransferSingleChunkCrcRequestItem``: what is the SHA-1 of chunk n?"""

    SERVICE = SERVICE_FILE_TRANSFER
    SUBTYPE = 0x08
    PRIORITY = 6
    BODY = c.Struct("hash" / IdField(Sha1Hash), "chunk_number" / u32)
    hash: Sha1Hash
    chunk_number: int


class FtChunkCrcItem(PQItem):
    """``RsFileTransferSingleChunkCrcItem``: the SHA-1 of one chunk."""

    SERVICE = SERVICE_FILE_TRANSFER
    SUBTYPE = 0x09
    PRIORITY = 6
    BODY = c.Struct("hash" / IdField(Sha1Hash), "chunk_number" / u32,
                    "check_sum" / IdField(Sha1Hash))
    hash: Sha1Hash
    chunk_number: int
    check_sum: Sha1Hash
