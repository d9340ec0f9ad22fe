# -*- test-case-name: tests.test_items_turtle -*-
"""Turtle router (service 0x0014): anonymous multi-hop search, tunnels and tunnelled transfers.

Search requests flood outwards with a depth counter; results and TUNNEL_OK travel back by
request id; tunnel traffic (generic data and the file-transfer items 0x07..0x15) is routed by
tunnel id.  With encrypted transfers the file items travel inside GENERIC_DATA instead.
"""

from __future__ import annotations

import dataclasses
import enum

import construct as c

from pqi.wire import tlvtypes as tt
from pqi.wire.compound import DataclassStruct, TupleArray
from pqi.wire.fields import IdField, RawMemory, Sha1Hash, u8, u16, u32, u64
from pqi.wire.item import PQItem
from pqi.wire.tlv import StringTLV

from .ids import SERVICE_TURTLE

__all__ = [
    "TurtleDirection", "TurtleFileInfo", "RegexpExpression",
    "TurtleStringSearchRequestItem", "TurtleRegexpSearchRequestItem",
    "TurtleGenericSearchRequestItem", "TurtleFtSearchResultItem",
    "TurtleGenericSearchResultItem", "TurtleOpenTunnelItem", "TurtleTunnelOkItem",
    "TurtleGenericDataItem", "TurtleGenericFastDataItem", "TurtleFileRequestItem",
    "TurtleFileDataItem", "TurtleFileMapItem", "TurtleFileMapRequestItem",
    "TurtleChunkCrcItem", "TurtleChunkCrcRequestItem",
]


class TurtleDirection(enum.IntEnum):
    """Which end of a tunnel an item is for (``RsTurtleGenericTunnelItem::DIRECTION_*``)."""

    CLIENT = 1
    SERVER = 2


@dataclasses.dataclass(frozen=True)
class TurtleFileInfo:
    """One hit of a file search: size, SHA-1 and name."""

    size: int
    hash: Sha1Hash
    name: str


@dataclasses.dataclass(frozen=True)
class RegexpExpression:
    """A linearised search expression: opcode tokens, integer operands, string operands."""

    tokens: tuple[int, ...] = ()
    ints: tuple[int, ...] = ()
    strings: tuple[str, ...] = ()


_Expression = DataclassStruct(
    RegexpExpression, "tokens" / TupleArray(u8), "ints" / TupleArray(u32),
    "strings" / TupleArray(StringTLV(tt.STR_VALUE), min_size=6))
_FileInfo = DataclassStruct(TurtleFileInfo, "size" / u64, "hash" / IdField(Sha1Hash),
                            "name" / StringTLV(tt.STR_NAME))


class TurtleStringSearchRequestItem(PQItem):
    """``RsTurtleStringSearchRequestItem``: keywords, request id and depth so far."""

    SERVICE = SERVICE_TURTLE
    SUBTYPE = 0x01
    PRIORITY = 6
    BODY = c.Struct("match_string" / StringTLV(tt.STR_VALUE), "request_id" / u32, "depth" / u16)
    match_string: str
    request_id: int
    depth: int


class TurtleRegexpSearchRequestItem(PQItem):
    """``RsTurtleRegExpSearchRequestItem``: a boolean expression search."""

    SERVICE = SERVICE_TURTLE
    SUBTYPE = 0x09
    PRIORITY = 6
    BODY = c.Struct("request_id" / u32, "depth" / u16, "expression" / _Expression)
    request_id: int
    depth: int
    expression: RegexpExpression


class TurtleGenericSearchRequestItem(PQItem):
    """``RsTurtleGenericSearchRequestItem``: an opaque search for another service."""

    SERVICE = SERVICE_TURTLE
    SUBTYPE = 0x0B
    PRIORITY = 6
    BODY = c.Struct("request_id" / u32, "depth" / u16, "service_id" / u16,
                    "request_type" / u8, "search_data" / RawMemory())
    request_id: int
    depth: int
    service_id: int
    request_type: int
    search_data: bytes


class TurtleFtSearchResultItem(PQItem):
    """``RsTurtleFTSearchResultItem``: file hits for a request.

    ``depth`` is a retired field RetroShare writes as 0 and ignores; it is kept so that a
    relayed item is forwarded byte for byte.
    """

    SERVICE = SERVICE_TURTLE
    SUBTYPE = 0x02
    PRIORITY = 6
    BODY = c.Struct("request_id" / u32, "depth" / u16,
                    "results" / TupleArray(_FileInfo, min_size=8 + 20 + 6))
    request_id: int
    depth: int
    results: tuple[TurtleFileInfo, ...]


class TurtleGenericSearchResultItem(PQItem):
    """``RsTurtleGenericSearchResultItem``: an opaque result for another service."""

    SERVICE = SERVICE_TURTLE
    SUBTYPE = 0x0C
    PRIORITY = 6
    BODY = c.Struct("request_id" / u32, "depth" / u16, "result_data" / RawMemory())
    request_id: int
    depth: int
    result_data: bytes


class TurtleOpenTunnelItem(PQItem):
    """``RsTurtleOpenTunnelItem``: find me a route to whoever has this (hashed) file."""

    SERVICE = SERVICE_TURTLE
    SUBTYPE = 0x03
    PRIORITY = 7
    BODY = c.Struct("file_hash" / IdField(Sha1Hash), "request_id" / u32,
                    "partial_tunnel_id" / u32, "depth" / u16)
    file_hash: Sha1Hash
    request_id: int
    partial_tunnel_id: int
    depth: int


class TurtleTunnelOkItem(PQItem):
    """``RsTurtleTunnelOkItem``: the tunnel exists; routed back by request id."""

    SERVICE = SERVICE_TURTLE
    SUBTYPE = 0x04
    PRIORITY = 7
    BODY = c.Struct("tunnel_id" / u32, "request_id" / u32)
    tunnel_id: int
    request_id: int


class TurtleGenericDataItem(PQItem):
    """``RsTurtleGenericDataItem``: opaque bytes for the service at the tunnel's end."""

    SERVICE = SERVICE_TURTLE
    SUBTYPE = 0x0A
    PRIORITY = 5
    BODY = c.Struct("tunnel_id" / u32, "data" / RawMemory())
    tunnel_id: int
    data: bytes


class TurtleGenericFastDataItem(PQItem):
    """``RsTurtleGenericFastDataItem``: as generic data, at a higher priority."""

    SERVICE = SERVICE_TURTLE
    SUBTYPE = 0x16
    PRIORITY = 7
    BODY = c.Struct("tunnel_id" / u32, "data" / RawMemory())
    tunnel_id: int
    data: bytes


class TurtleFileRequestItem(PQItem):
    """``RsTurtleFileRequestItem``: send ``chunk_size`` bytes at ``chunk_offset``."""

    SERVICE = SERVICE_TURTLE
    SUBTYPE = 0x07
    PRIORITY = 6
    BODY = c.Struct("tunnel_id" / u32, "chunk_offset" / u64, "chunk_size" / u32)
    tunnel_id: int
    chunk_offset: int
    chunk_size: int


class TurtleFileDataItem(PQItem):
    """``RsTurtleFileDataItem``: file bytes at ``chunk_offset``."""

    SERVICE = SERVICE_TURTLE
    SUBTYPE = 0x08
    PRIORITY = 5
    BODY = c.Struct("tunnel_id" / u32, "chunk_offset" / u64, "chunk_data" / RawMemory())
    tunnel_id: int
    chunk_offset: int
    chunk_data: bytes


class TurtleFileMapItem(PQItem):
    """``RsTurtleFileMapItem``: the chunk map of the file at the other end."""

    SERVICE = SERVICE_TURTLE
    SUBTYPE = 0x10
    PRIORITY = 6
    BODY = c.Struct("tunnel_id" / u32, "direction" / u32, "chunk_map" / TupleArray(u32))
    tunnel_id: int
    direction: int
    chunk_map: tuple[int, ...]


class TurtleFileMapRequestItem(PQItem):
    """``RsTurtleFileMapRequestItem``: asks for the chunk map."""

    SERVICE = SERVICE_TURTLE
    SUBTYPE = 0x11
    PRIORITY = 6
    BODY = c.Struct("tunnel_id" / u32, "direction" / u32)
    tunnel_id: int
    direction: int


class TurtleChunkCrcItem(PQItem):
    """``RsTurtleChunkCrcItem``: SHA-1 of one chunk."""

    SERVICE = SERVICE_TURTLE
    SUBTYPE = 0x14
    PRIORITY = 6
    BODY = c.Struct("tunnel_id" / u32, "chunk_number" / u32, "check_sum" / IdField(Sha1Hash))
    tunnel_id: int
    chunk_number: int
    check_sum: Sha1Hash


class TurtleChunkCrcRequestItem(PQItem):
    """``RsTurtleChunkCrcRequestItem``: asks for the SHA-1 of one chunk."""

    SERVICE = SERVICE_TURTLE
    SUBTYPE = 0x15
    PRIORITY = 6
    BODY = c.Struct("tunnel_id" / u32, "chunk_number" / u32)
    tunnel_id: int
    chunk_number: int
