# -*- test-case-name: tests.test_items_ft -*-
"""File lists (service 0x0019): directory-by-directory sync of a friend's shared files.

The directory content inside a sync response is an opaque byte block at this layer; its own
format is decoded by the file-list service.
"""

from __future__ import annotations

import enum

import construct as c

from pqi.wire.compound import FlagsField, IdSet
from pqi.wire.fields import IdField, Sha1Hash, u32, u64
from pqi.wire.item import PQItem
from pqi.wire.tlv import BinaryTLV

from .ids import SERVICE_FILE_DATABASE

__all__ = ["FileListsFlags", "FileListsSyncRequestItem", "FileListsSyncResponseItem",
           "FileListsBannedHashesItem"]


class FileListsFlags(enum.IntFlag):
    """``RsFileListsItem::FLAGS_*``."""

    SYNC_REQUEST = 0x0001
    SYNC_RESPONSE = 0x0002
    SYNC_DIR_CONTENT = 0x0004
    ENTRY_UP_TO_DATE = 0x0008
    ENTRY_WAS_REMOVED = 0x0010
    SYNC_PARTIAL = 0x0020
    SYNC_PARTIAL_END = 0x0040


class FileListsSyncRequestItem(PQItem):
    """``RsFileListsSyncRequestItem``: send me directory ``entry_hash`` if newer than TS."""

    SERVICE = SERVICE_FILE_DATABASE
    SUBTYPE = 0x01
    PRIORITY = 3
    BODY = c.Struct("entry_hash" / IdField(Sha1Hash), "flags" / FlagsField(FileListsFlags),
                    "last_known_recurs_modf_ts" / u32, "request_id" / u64)
    entry_hash: Sha1Hash
    flags: FileListsFlags
    last_known_recurs_modf_ts: int
    request_id: int


class FileListsSyncResponseItem(PQItem):
    """``RsFileListsSyncResponseItem``: a directory's content (binary TLV of type 0)."""

    SERVICE = SERVICE_FILE_DATABASE
    SUBTYPE = 0x02
    PRIORITY = 3
    BODY = c.Struct("entry_hash" / IdField(Sha1Hash), "checksum" / IdField(Sha1Hash),
                    "flags" / FlagsField(FileListsFlags), "last_known_recurs_modf_ts" / u32,
                    "request_id" / u64, "content" / BinaryTLV(0))
    entry_hash: Sha1Hash
    checksum: Sha1Hash
    flags: FileListsFlags
    last_known_recurs_modf_ts: int
    request_id: int
    content: bytes


class FileListsBannedHashesItem(PQItem):
    """``RsFileListsBannedHashesItem``: H(H) of files the friend refuses to relay."""

    SERVICE = SERVICE_FILE_DATABASE
    SUBTYPE = 0x04
    PRIORITY = 3
    BODY = c.Struct("session_id" / u32, "encrypted_hashes" / IdSet(Sha1Hash))
    session_id: int
    encrypted_hashes: frozenset[Sha1Hash]
