# -*- test-case-name: tests.test_chunkmap -*-
"""The chunk map of one file: 1 MiB chunks, their states, and which one to fetch next.

A file is cut into fixed 1 MiB chunks (the last one shorter), RetroShare's unit of
availability (``ChunkMap::CHUNKMAP_FIXED_CHUNK_SIZE``) and of repair.  Each chunk is
OUTSTANDING (nobody fetches it), ACTIVE (being fetched), DONE (written and durable) or
CHECKING (its SHA-1 is being compared with what the sources say).

Three strategies choose the next chunk among those a source has: STREAMING (the first, for
playing while downloading), RANDOM, and PROGRESSIVE, RetroShare's default: a random chunk
among the first available one and the 50 after it, so sources spread over the file while the
file still fills roughly from the front.

Peers exchange availability as a ``CompressedChunkMap``: u32 words, chunk i is bit ``i & 31``
of word ``i >> 5``.  A complete source sends every bit of every word set (``ffffffff`` even
for a 3-chunk file, as the captured map shows).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Iterable
from typing import Final

__all__ = [
    "ChunkMap",
    "ChunkState",
    "Strategy",
    "CHUNK_SIZE",
    "PROGRESSIVE_JUMP",
    "chunk_count",
    "compress",
    "decompress",
    "full_map",
]

#: Bytes per chunk (``CHUNKMAP_FIXED_CHUNK_SIZE``).
CHUNK_SIZE: Final = 1 << 20
#: How far past the first available chunk the progressive strategy may jump.
PROGRESSIVE_JUMP: Final = 50


class ChunkState(enum.IntEnum):
    """RetroShare's ``FileChunksInfo::ChunkState`` values."""

    OUTSTANDING = 0
    ACTIVE = 1
    DONE = 2
    CHECKING = 3


class Strategy(enum.Enum):
    STREAMING = "streaming"
    RANDOM = "random"
    PROGRESSIVE = "progressive"


def chunk_count(size: int) -> int:
    """Chunks of a ``size``-byte file (an empty file has none)."""
    return (size + CHUNK_SIZE - 1) // CHUNK_SIZE


def compress(present: Iterable[int], count: int) -> tuple[int, ...]:
    """The CompressedChunkMap words for the chunk indexes ``present`` of a ``count``-chunk file."""
    words = [0] * ((count + 31) // 32)
    for i in present:
        words[i >> 5] |= 1 << (i & 31)
    return tuple(words)


def full_map(count: int) -> tuple[int, ...]:
    """The map a complete source sends: every bit of every word set."""
    return (0xFFFFFFFF,) * ((count + 31) // 32)


def decompress(words: Iterable[int], count: int) -> frozenset[int]:
    """The chunk indexes below ``count`` whose bit is set (extra words and bits are ignored)."""
    out = set()
    for w, word in enumerate(words):
        base = w << 5
        if base >= count:
            break
        while word:
            low = word & -word
            i = base + low.bit_length() - 1
            if i < count:
                out.add(i)
            word ^= low
    return frozenset(out)


class ChunkMap:
    """States of the chunks of a ``size``-byte file (all OUTSTANDING unless ``done`` given)."""

    def __init__(self, size: int, done: Iterable[int] = ()) -> None:
        self.size = size
        self.count = chunk_count(size)
        self._states = bytearray(self.count)
        for i in done:
            self._states[i] = ChunkState.DONE
        self._done = sum(1 for s in self._states if s == ChunkState.DONE)
        #: No chunk below it is OUTSTANDING: `pick` starts there, so picking through a file
        #: in order costs what it skips, not the whole map each time.
        self._low = 0

    def chunk_range(self, index: int) -> tuple[int, int]:
        """(offset, length) of chunk ``index``."""
        offset = index * CHUNK_SIZE
        return offset, min(CHUNK_SIZE, self.size - offset)

    def chunk_of(self, offset: int) -> int:
        return offset // CHUNK_SIZE

    def state(self, index: int) -> ChunkState:
        return ChunkState(self._states[index])

    def set_state(self, index: int, state: ChunkState) -> None:
        old = self._states[index]
        if old == ChunkState.DONE:
            self._done -= 1
        if state == ChunkState.DONE:
            self._done += 1
        if state == ChunkState.OUTSTANDING and index < self._low:
            self._low = index
        self._states[index] = state

    def indexes(self, state: ChunkState) -> list[int]:
        return [i for i, s in enumerate(self._states) if s == state]

    @property
    def done_count(self) -> int:
        return self._done

    @property
    def done_bytes(self) -> int:
        if self._done == self.count:
            return self.size
        last_done = self.count and self._states[-1] == ChunkState.DONE
        full = self._done - (1 if last_done else 0)
        return full * CHUNK_SIZE + (self.chunk_range(self.count - 1)[1] if last_done else 0)

    @property
    def complete(self) -> bool:
        return self._done == self.count

    def done_indexes(self) -> frozenset[int]:
        return frozenset(self.indexes(ChunkState.DONE))

    def compressed(self) -> tuple[int, ...]:
        """Our availability as CompressedChunkMap words (DONE chunks only)."""
        return compress(self.indexes(ChunkState.DONE), self.count)

    def pick(self, available: Callable[[int], bool], strategy: Strategy,
             rng: random.Random) -> int | None:
        """An OUTSTANDING chunk for which ``available(i)`` holds, or None."""
        states = self._states
        outstanding = ChunkState.OUTSTANDING
        low = self._low
        while low < self.count and states[low] != outstanding:
            low += 1
        self._low = low
        first = None
        for i in range(low, self.count):
            if states[i] == outstanding and available(i):
                first = i
                break
        if first is None or strategy is Strategy.STREAMING:
            return first
        if strategy is Strategy.PROGRESSIVE:
            stop = min(self.count, first + PROGRESSIVE_JUMP + 1)
        else:
            stop = self.count
        candidates = [i for i in range(first, stop)
                      if states[i] == outstanding and available(i)]
        return rng.choice(candidates)
