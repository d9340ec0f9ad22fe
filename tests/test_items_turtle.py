"""Byte-exact tests of the turtle router items (service 0x0014).

Hex strings are items captured from real RetroShare 0.6.7 nodes (file:line of
``tests/vectors/retroshare``: ``captures/``) or built by hand from ``retroshare-wire-facts.md``
section 7.
"""

from __future__ import annotations

import struct

import pytest

import pqi
from pqi.items.turtle import (
    RegexpExpression,
    TurtleChunkCrcItem,
    TurtleChunkCrcRequestItem,
    TurtleDirection,
    TurtleFileDataItem,
    TurtleFileInfo,
    TurtleFileMapItem,
    TurtleFileMapRequestItem,
    TurtleFileRequestItem,
    TurtleFtSearchResultItem,
    TurtleGenericDataItem,
    TurtleGenericFastDataItem,
    TurtleGenericSearchRequestItem,
    TurtleGenericSearchResultItem,
    TurtleOpenTunnelItem,
    TurtleRegexpSearchRequestItem,
    TurtleStringSearchRequestItem,
    TurtleTunnelOkItem,
)
from pqi.wire.fields import Sha1Hash

NEEDLE = Sha1Hash.from_hex("a70bb987f5357e1bfd896b729715b2bdcac9968f")
H = Sha1Hash(b"\x01" * 20)


def _same(item: pqi.PQItem, hexstr: str) -> None:
    raw = bytes.fromhex(hexstr)
    assert pqi.encode(item) == raw
    assert pqi.decode(raw) == item


def test_string_search() -> None:
    """alice:589: STR_VALUE keywords, request id, depth."""
    _same(TurtleStringSearchRequestItem(match_string="needle", request_id=0x3E18EF82, depth=1),
          "020014010000001a00540000000c6e6565646c653e18ef820001")


def test_ft_search_result() -> None:
    """bob:590: request id, u16 0 (retired depth), u32 count, {size, hash, STR_NAME}."""
    _same(TurtleFtSearchResultItem(request_id=0x3E18EF82, depth=0, results=(
        TurtleFileInfo(size=5242880, hash=NEEDLE, name="needle-5MiB.bin"),)),
        "02001402000000433e18ef820000000000010000000000500000a70bb987f5357e1bfd896b729715b2bd"
        "cac9968f0051000000156e6565646c652d354d69422e62696e")


def test_regexp_search() -> None:
    """0x09: request id, depth, then tokens (u8), ints (u32) and strings (STR_VALUE) arrays."""
    _same(TurtleRegexpSearchRequestItem(request_id=1, depth=2, expression=RegexpExpression(
        tokens=(3, 4), ints=(5,), strings=("x",))),
        "0200140900000027" "00000001" "0002" "00000002" "0304" "00000001" "00000005"
        "00000001" "00540000000778")


def test_regexp_string_count_beyond_the_body_is_truncated() -> None:
    """A string count the body cannot hold (6 bytes a string at least) is refused up front."""
    body = struct.pack(">IHIII", 1, 2, 0, 0, 1000) + bytes(12)
    raw = struct.pack(">BHBI", 2, 0x0014, 0x09, 8 + len(body)) + body
    with pytest.raises(pqi.TruncatedError):
        pqi.decode(raw)


def test_generic_search_and_result() -> None:
    """0x0b: ids, depth, service, type, u32-length data; 0x0c: id, u16 0, u32-length data."""
    _same(TurtleGenericSearchRequestItem(request_id=1, depth=2, service_id=0x0217,
                                         request_type=3, search_data=b"q"),
          "0200140b00000016" "00000001" "0002" "0217" "03" "0000000171")
    _same(TurtleGenericSearchResultItem(request_id=1, depth=0, result_data=b"r"),
          "0200140c00000013" "00000001" "0000" "0000000172")


def test_tunnel_open_and_ok() -> None:
    """0x03: hash, request id, partial tunnel id, depth; 0x04: tunnel id, request id."""
    _same(TurtleOpenTunnelItem(file_hash=H, request_id=2, partial_tunnel_id=3, depth=4),
          "0200140300000026" + "01" * 20 + "00000002" "00000003" "0004")
    _same(TurtleTunnelOkItem(tunnel_id=5, request_id=2), "02001404000000100000000500000002")


def test_generic_and_fast_data() -> None:
    """0x0a and 0x16: tunnel id + u32-length bytes."""
    _same(TurtleGenericDataItem(tunnel_id=5, data=b"\xae\xad"),
          "0200140a00000012" "00000005" "00000002" "aead")
    _same(TurtleGenericFastDataItem(tunnel_id=5, data=b""), "020014160000001000000005" "00000000")


def test_file_request_and_data() -> None:
    """0x07: tunnel, offset u64, size u32; 0x08: tunnel, offset, u32-length data."""
    _same(TurtleFileRequestItem(tunnel_id=5, chunk_offset=6, chunk_size=7),
          "0200140700000018" "00000005" "0000000000000006" "00000007")
    _same(TurtleFileDataItem(tunnel_id=5, chunk_offset=6, chunk_data=b"d"),
          "0200140800000019" "00000005" "0000000000000006" "0000000164")


def test_file_map_and_request() -> None:
    """0x10: tunnel, direction, u32 count + words; 0x11: tunnel, direction."""
    _same(TurtleFileMapItem(tunnel_id=5, direction=TurtleDirection.CLIENT, chunk_map=(3,)),
          "0200141000000018" "00000005" "00000001" "00000001" "00000003")
    _same(TurtleFileMapRequestItem(tunnel_id=5, direction=TurtleDirection.SERVER),
          "0200141100000010" "00000005" "00000002")


def test_chunk_crc_and_request() -> None:
    """0x14: tunnel, chunk, SHA-1; 0x15: tunnel, chunk."""
    _same(TurtleChunkCrcItem(tunnel_id=5, chunk_number=1, check_sum=H),
          "0200141400000024" "00000005" "00000001" + "01" * 20)
    _same(TurtleChunkCrcRequestItem(tunnel_id=5, chunk_number=1),
          "0200141500000010" "00000005" "00000001")
