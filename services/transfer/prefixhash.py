# -*- test-case-name: tests.test_prefixhash -*-
"""The SHA-1 of a partial file's finished prefix, kept up while the download runs.

Checking a download used to hash the whole file after its last byte arrived: about 1.5 s per
GiB on this machine's cores, a quarter of a fast transfer, spent while nothing else moves.
`PrefixHash` hashes the contiguous run of finished chunks from the start of the file as it
grows (on the transfer service's sync thread, right after each commit), so the final check
only hashes what is left after that run.

A piece written right at the hashed mark is folded in from memory as it is written (the usual
case: one source sends the file in order), so the hash rarely reads the file back.

Threads: `advance` and `digest` run on worker threads and take the lock; `written` runs on the
thread that wrote the piece and never waits for the lock (if a worker holds it, the piece is
left for the worker to read back).  A write below the hashed mark
(a chunk refetched after a failed check) marks the state dirty, and the next `advance` or
`digest` starts again from byte 0.  The mark (``claimed``) moves before a range is read, and
a writer checks it after its bytes are in the file, so a write is either read by the hash or
seen as dirty, never missed.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Final

__all__ = ["PrefixHash", "HASH_BLOCK"]

#: Bytes read and hashed at a time (the memory one step holds).
HASH_BLOCK: Final = 4 * 1024 * 1024

#: How a hash reads the file: ``read(offset, length)`` gives up to ``length`` bytes.
Reader = Callable[[int, int], bytes]


class PrefixHash:
    """SHA-1 over ``[0, hashed)`` of a file of ``size`` bytes, extended on demand."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._sha1 = hashlib.sha1()
        self._hashed = 0
        #: Highest offset a worker has begun to read; a write below it makes the state dirty.
        self._claimed = 0
        self._dirty = False
        #: Times the state was thrown away by a write below the mark (diagnostics, tests).
        self.restarts = 0

    @property
    def hashed(self) -> int:
        """Bytes from the start already folded into the hash."""
        return self._hashed

    def written(self, offset: int, data: bytes | memoryview | None = None) -> None:
        """``data`` was just written at ``offset`` (call it after the write): a write below the
        mark makes the state dirty, one right at it is hashed now."""
        if offset < self._claimed:
            self._dirty = True
            return
        if data is None or offset != self._hashed or not self._lock.acquire(blocking=False):
            return
        try:
            if not self._dirty and offset == self._hashed:
                self._sha1.update(data)
                self._hashed = self._claimed = offset + len(data)
        finally:
            self._lock.release()

    def advance(self, read: Reader, end: int) -> None:
        """Fold ``[hashed, end)`` into the hash (blocking: call it off the reactor thread)."""
        with self._lock:
            self._extend(read, min(end, self.size))

    def digest(self, read: Reader) -> bytes:
        """The SHA-1 of the whole file (blocking: call it off the reactor thread)."""
        with self._lock:
            self._extend(read, self.size)
            if self._dirty:  # rewritten while we read: once more, from the start
                self._extend(read, self.size)
            return self._sha1.copy().digest()

    def _extend(self, read: Reader, end: int) -> None:
        if self._dirty:
            self._sha1 = hashlib.sha1()
            self._hashed = 0
            self._dirty = False
            self.restarts += 1
        offset = self._hashed
        if end <= offset:
            return
        self._claimed = max(self._claimed, end)
        while offset < end:
            block = read(offset, min(HASH_BLOCK, end - offset))
            if not block:  # the file is shorter: its hash is of what is there, and wrong
                break
            self._sha1.update(block)
            offset += len(block)
        self._hashed = offset
