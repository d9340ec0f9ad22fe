# -*- test-case-name: tests.test_chat_blocks -*-
"""The chat history's blocks: one friend's messages of one commit, packed in one row.

A flood writes thousands of messages a second to the history.  As one sqlite row each (and
an index entry each), the writer thread spent about 6 µs per message, holding the GIL for
every row it bound: the node's reactor lost its core, or the GIL, to the writer for a
millisecond every commit, and a long flood left the writer behind (docs/benchmarks.md,
"Issue 21, item 3").  A block is what the reactor builds instead: per friend, column by column
in lists while messages arrive, joined at the commit by a few C calls into one row of three
values.  The writer then inserts a handful of rows per commit.

A block's row holds:

- ``meta``: per message, little-endian and column after column: the id's offset from the
  block's first id (uint16), the send time (uint32), the receive time (float64), the body's
  length (uint32), the plain text's length (int32; -1 where it is the body), the flags
  (uint8: 1 incoming, 2 public).  `META_BYTES` per message.
- ``bodies``: the bodies, joined.  TEXT where all of them are valid UTF-8 (lengths then count
  characters); else a BLOB of each body's `pqi.storage.to_stored` bytes, joined (lengths
  count bytes): a joined string of wire text that is not UTF-8 would not read back piece by
  piece, as two escaped bytes of neighbours can make one character.
- ``texts``: the plain texts that differ from their body, joined the same way.

The ids of one block are those of one commit, less than `BLOCK_SPAN` apart, so a reader
looking for the ids around a point knows how far from it a block holding them can begin or
end.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Sequence
from typing import Final, TypeAlias

from pqi.storage import from_stored, to_stored
from pqi.wire.errors import DecodeError

__all__ = ["BLOCK_SPAN", "MAX_PIECE_CHARS", "META_BYTES", "BlockBuilder", "BlockDecodeError",
           "Message", "PackedBlock", "check", "unpack"]

#: Most ids one block spans: ``last - first < BLOCK_SPAN`` (a fact of the layout; a store
#: commits before its waiting rows span more).
BLOCK_SPAN: Final = 1000
#: Bytes of ``meta`` per message.
META_BYTES: Final = 2 + 4 + 8 + 4 + 4 + 1
#: Longest body or plain text a block holds, in characters: its bytes (at most four per
#: character) must fit the 31 bits of a length.  A chat item holds far less (its own bound).
MAX_PIECE_CHARS: Final = 2**29 - 1

_INCOMING: Final = 1
_PUBLIC: Final = 2
_SAME: Final = -1

#: A column's value as sqlite holds it: TEXT (lengths count characters) or BLOB (bytes).
Column: TypeAlias = str | bytes
#: One message as a block holds it, in `BlockBuilder.add`'s order: id, incoming, public, send
#: time, receive time, body, plain text.
Message: TypeAlias = tuple[int, bool, bool, int, float, str, str]


class BlockDecodeError(DecodeError):
    """A history block whose values do not hold what its layout says (a damaged file, or one
    edited by hand): raised instead of returning messages cut at the wrong places."""


@dataclasses.dataclass(frozen=True)
class PackedBlock:
    """A block's row: ``first`` and ``last`` ids, the message ``count`` and the three values."""

    first: int
    last: int
    count: int
    meta: bytes
    bodies: Column
    texts: Column


class BlockBuilder:
    """A block being filled on the reactor thread: a few list appends per message."""

    __slots__ = ("first", "_offsets", "_sends", "_recvs", "_flags", "_bodies", "_texts",
                 "_same")

    def __init__(self, first: int) -> None:
        self.first = first
        self._offsets: list[int] = []
        self._sends: list[int] = []
        self._recvs: list[float] = []
        self._flags: list[int] = []
        self._bodies: list[str] = []
        self._texts: list[str] = []
        #: Per message: is its plain text its body (and so not in ``_texts``)?
        self._same: list[bool] = []

    def add(self, history_id: int, incoming: bool, public: bool, send_time: int,
            recv_time: float, body: str, text: str, /) -> None:
        """Append a message (positional: this runs for every message a node sends or
        receives).  The caller checks the values first (`check`); ids grow."""
        self._offsets.append(history_id - self.first)
        self._sends.append(send_time)
        self._recvs.append(recv_time)
        self._flags.append(_INCOMING * incoming | _PUBLIC * public)
        self._bodies.append(body)
        same = text == body
        self._same.append(same)
        if not same:
            self._texts.append(text)

    def pack(self) -> PackedBlock:
        """The block's row (C calls over the lists, and the length of each piece)."""
        n = len(self._offsets)
        bodies, body_lengths = _join(self._bodies)
        texts, piece_lengths = _join(self._texts)
        if self._texts:
            pieces = iter(piece_lengths)
            text_lengths = [_SAME if same else next(pieces) for same in self._same]
        else:
            text_lengths = [_SAME] * n
        meta = struct.pack(_meta_format(n), *self._offsets, *self._sends, *self._recvs,
                           *body_lengths, *text_lengths, *self._flags)
        return PackedBlock(self.first, self.first + self._offsets[-1], n, meta, bodies, texts)


def check(send_time: int, recv_time: float, body: str, text: str) -> None:
    """Refuse values a block cannot hold, before they take an id (`ValueError`)."""
    if not math.isfinite(recv_time):
        raise ValueError(f"receive time {recv_time!r} is not a finite number")
    if not 0 <= send_time <= 0xFFFFFFFF:
        raise ValueError(f"send time {send_time!r} is not a 32-bit unsigned number")
    if len(body) > MAX_PIECE_CHARS or len(text) > MAX_PIECE_CHARS:
        raise ValueError(f"a body or plain text of {max(len(body), len(text))} characters "
                         f"(at most {MAX_PIECE_CHARS})")


def _meta_format(n: int) -> str:
    return f"<{n}H{n}I{n}d{n}I{n}i{n}B"


def _join(pieces: list[str]) -> tuple[Column, list[int]]:
    """The pieces as one column value, and each one's length in it."""
    joined = "".join(pieces)
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        raw = [_raw(p) for p in pieces]
        return b"".join(raw), [len(r) for r in raw]
    return joined, [len(p) for p in pieces]


def _raw(piece: str) -> bytes:
    stored = to_stored(piece)
    return stored if isinstance(stored, bytes) else stored.encode("utf-8")


def _cut(column: Column, lengths: Sequence[int], name: str) -> list[str]:
    """The pieces of a column value, by their lengths."""
    if sum(lengths) != len(column):
        raise BlockDecodeError(f"the {name} pieces add up to {sum(lengths)}, the column holds "
                               f"{len(column)}", field=name)
    out, at = [], 0
    if isinstance(column, str):
        for length in lengths:
            out.append(column[at:at + length])
            at += length
    else:
        for length in lengths:
            out.append(from_stored(column[at:at + length]))
            at += length
    return out


def unpack(first: int, last: int, count: int, meta: bytes, bodies: Column,
           texts: Column) -> list[Message]:
    """A block's messages, oldest first; `BlockDecodeError` where the row does not add up."""
    if not 1 <= count <= BLOCK_SPAN:
        raise BlockDecodeError(f"a block of {count} messages (1 to {BLOCK_SPAN})", field="count")
    if not 0 <= last - first < BLOCK_SPAN:
        raise BlockDecodeError(f"a block spanning ids {first} to {last} (at most {BLOCK_SPAN})",
                               field="last")
    if not isinstance(meta, bytes | bytearray | memoryview) or len(meta) != count * META_BYTES:
        size = len(meta) if isinstance(meta, bytes | bytearray | memoryview) else None
        raise BlockDecodeError(f"meta of {size} bytes for {count} messages "
                               f"({count * META_BYTES} expected)", field="meta")
    for name, column in (("bodies", bodies), ("texts", texts)):
        if not isinstance(column, str | bytes):
            raise BlockDecodeError(f"the {name} column holds {type(column).__name__}",
                                   field=name)
    values = struct.unpack(_meta_format(count), meta)
    offsets = values[:count]
    sends = values[count:2 * count]
    recvs = values[2 * count:3 * count]
    body_lengths = values[3 * count:4 * count]
    text_lengths = values[4 * count:5 * count]
    flags = values[5 * count:]
    if offsets[0] != 0 or offsets[-1] != last - first or any(
            b <= a for a, b in zip(offsets, offsets[1:], strict=False)):
        raise BlockDecodeError("the ids of a block do not grow from its first to its last",
                               field="meta")
    if any(f > _INCOMING | _PUBLIC for f in flags):
        raise BlockDecodeError("unknown message flags", field="meta")
    if not all(math.isfinite(r) for r in recvs):
        raise BlockDecodeError("a receive time that is not a finite number", field="meta")
    if any(t < _SAME for t in text_lengths):
        raise BlockDecodeError("a negative plain-text length", field="meta")
    body_list = _cut(bodies, body_lengths, "bodies")
    text_pieces = iter(_cut(texts, [t for t in text_lengths if t != _SAME], "texts"))
    return [(first + offset, bool(flag & _INCOMING), bool(flag & _PUBLIC), send, recv, body,
             body if length == _SAME else next(text_pieces))
            for offset, send, recv, body, length, flag
            in zip(offsets, sends, recvs, body_list, text_lengths, flags, strict=True)]
