# -*- test-case-name: tests.test_items_gxstunnel -*-
"""Global router (service 0x0018): signed, encrypted data for a GXS identity, relayed by friends.

Older RetroShare nodes send distant mail this way (newer ones send it both this way and as
GXS trans messages).  On the link an item to route travels cut into transaction chunks
(0x10), each acknowledged once the whole transaction arrived (0x11); the reassembled bytes
are one serialised `GRouterDataItem` (0x07) or `GRouterSignedReceiptItem` (0x08), item
header included.
"""

from __future__ import annotations

import dataclasses
import enum
import io
import struct
from typing import Any, Final

import construct as c

from pqi.wire.errors import LimitExceededError, TruncatedError
from pqi.wire.fields import GxsId, IdField, RawMemory, Sha1Hash, read_exact, remaining, u32, u64
from pqi.wire.item import PQItem
from pqi.wire.tlvvalues import KeySignature, KeySignatureTLV

from .ids import SERVICE_GROUTER

__all__ = [
    "GRouterFlags", "GRouterChunk", "MAX_GROUTER_DATA", "MAX_DUPLICATION_FACTOR",
    "GRouterDataItem", "GRouterSignedReceiptItem", "GRouterTransactionChunkItem",
    "GRouterTransactionAcknItem",
]

#: Largest routed payload we read (a distant mail is far smaller).
MAX_GROUTER_DATA: Final = 2 * 1024 * 1024
#: ``GROUTER_MAX_DUPLICATION_FACTOR``: RetroShare clamps the factor it reads to this.
MAX_DUPLICATION_FACTOR: Final = 10
#: ``QOS_PRIORITY_RS_GROUTER``.
_PRIORITY: Final = 4
_U32X3 = struct.Struct(">III")


class GRouterFlags(enum.IntFlag):
    """``RsGRouterItemFlags``."""

    NONE = 0x0
    ENCRYPTED = 0x1
    SERVICE_UNKNOWN = 0x2


@dataclasses.dataclass(frozen=True)
class GRouterChunk:
    """One slice of a transaction: ``data`` sits at ``start`` in ``total`` bytes."""

    start: int
    total: int
    data: bytes


class _ChunkConstruct(c.Construct):
    """``chunk_start, chunk_size, total_size`` (u32 each) then ``chunk_size`` bytes."""

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> GRouterChunk:
        offset = stream.tell()
        if remaining(stream) < _U32X3.size:
            raise TruncatedError("chunk header needs 12 bytes", field=path, offset=offset)
        start, size, total = _U32X3.unpack(stream.read(_U32X3.size))
        if size > MAX_GROUTER_DATA:
            raise LimitExceededError("MAX_GROUTER_DATA", size, MAX_GROUTER_DATA, field=path,
                                     offset=offset)
        return GRouterChunk(start, total, read_exact(stream, size, path))

    def _build(self, obj: GRouterChunk, stream: io.BytesIO, context: Any,
               path: str) -> GRouterChunk:
        stream.write(_U32X3.pack(obj.start, len(obj.data), obj.total))
        stream.write(obj.data)
        return obj


class GRouterDataItem(PQItem):
    """``RsGRouterGenericDataItem``: ``data`` (encrypted to ``destination_key`` when the
    flags say so) for the client ``service_id``, signed by the sender's identity over
    routing id, destination, service and data."""

    SERVICE = SERVICE_GROUTER
    SUBTYPE = 0x07
    PRIORITY = _PRIORITY
    BODY = c.Struct("routing_id" / u64, "destination_key" / IdField(GxsId),
                    "service_id" / u32,
                    "data" / RawMemory(MAX_GROUTER_DATA, "MAX_GROUTER_DATA"),
                    "signature" / KeySignatureTLV, "duplication_factor" / u32,
                    "flags" / u32)
    routing_id: int
    destination_key: GxsId
    service_id: int
    data: bytes
    signature: KeySignature
    duplication_factor: int
    flags: int


class GRouterSignedReceiptItem(PQItem):
    """``RsGRouterSignedReceiptItem``: the destination got the data whose hash is
    ``data_hash``, signed by the destination identity."""

    SERVICE = SERVICE_GROUTER
    SUBTYPE = 0x08
    PRIORITY = _PRIORITY
    BODY = c.Struct("routing_id" / u64, "flags" / u32, "destination_key" / IdField(GxsId),
                    "service_id" / u32, "data_hash" / IdField(Sha1Hash),
                    "signature" / KeySignatureTLV)
    routing_id: int
    flags: int
    destination_key: GxsId
    service_id: int
    data_hash: Sha1Hash
    signature: KeySignature


class GRouterTransactionChunkItem(PQItem):
    """``RsGRouterTransactionChunkItem``: one chunk of transaction ``propagation_id``."""

    SERVICE = SERVICE_GROUTER
    SUBTYPE = 0x10
    PRIORITY = _PRIORITY
    BODY = c.Struct("propagation_id" / u64, "chunk" / _ChunkConstruct())
    propagation_id: int
    chunk: GRouterChunk


class GRouterTransactionAcknItem(PQItem):
    """``RsGRouterTransactionAcknItem``: transaction ``propagation_id`` arrived whole."""

    SERVICE = SERVICE_GROUTER
    SUBTYPE = 0x11
    PRIORITY = _PRIORITY
    BODY = c.Struct("propagation_id" / u64)
    propagation_id: int
