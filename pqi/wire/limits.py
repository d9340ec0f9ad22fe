# -*- test-case-name: tests.test_limits -*-
"""Named limits on everything a peer can make us count, size or nest.

Each is checked *before* the loop or allocation it bounds; tests exercise every one at
limit - 1, limit and limit + 1.  The values follow RetroShare where it has one
(``retroshare-wire-facts.md`` section 8) and are ours where it has none.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "MAX_SERIAL_SIZE",
    "MAX_CONTAINER_COUNT",
    "MAX_RAW_MEMORY",
    "MAX_TLV_DEPTH",
    "HEADER_SIZE",
    "TLV_HEADER_SIZE",
    "SLICE_SIZE",
    "MAX_SLICE_SIZE",
    "MAX_PARTIAL_PACKETS",
]

#: Largest item, header included (RetroShare's ``RsSerialiser::MAX_SERIAL_SIZE``, 2**18 - 1).
MAX_SERIAL_SIZE: Final = 262143
#: Largest element count of a list, set or map (RetroShare rejects more than this).
MAX_CONTAINER_COUNT: Final = 262143
#: Largest raw memory block (u32 length + bytes), 10 MiB as RetroShare's ``RawMemoryWrapper``.
MAX_RAW_MEMORY: Final = 10 * 1024 * 1024
#: Deepest nesting of TLVs inside TLVs we follow.  RetroShare's formats nest at most 4 deep
#: (FileSet > FileItem > HashSet); 16 leaves room and still stops a recursion bomb.
MAX_TLV_DEPTH: Final = 16
#: Size of the item header and of the slice header.
HEADER_SIZE: Final = 8
#: Size of a TLV header (type u16 + length u32).
TLV_HEADER_SIZE: Final = 6
#: Slice payload size once a peer accepted slicing (``PQISTREAM_OPTIMAL_PACKET_SIZE``).
SLICE_SIZE: Final = 1400
#: Largest slice payload the 16-bit length field of a slice header can say.  RetroShare 0.6.7
#: receivers reassemble slices of any length up to this (tested with 1,400 to 65,535 bytes:
#: see docs/wire.md, "Slice and write sizes"); 1400 is only what RetroShare itself cuts.
MAX_SLICE_SIZE: Final = 0xFFFF
#: Most sliced packets a peer may have half-sent at once (RetroShare has no cap; 16 is far
#: above the one or two a real node interleaves).
MAX_PARTIAL_PACKETS: Final = 16
