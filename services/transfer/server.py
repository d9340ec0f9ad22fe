# -*- test-case-name: tests.test_transfer_nodes -*-
"""The upload side: answering friends' data, chunk-map and chunk-SHA-1 requests.

Files are found by hash in the shared indexes (any object with
``lookup(hash) -> (path, size) | None``, such as the sharing service's `SharedIndex`) and
among our own downloads, which serve only the chunks already DONE (RetroShare serves partial
files the same way).  Each data request is queued per peer and answered in order as Data
items of at most 240 KiB (``MAX_FT_CHUNK``), as fast as the per-peer and the global token
buckets allow and the peer's link takes (the glue says how many bytes it may queue now).

`UploadServer` reads files but holds no sockets and no clock: the glue calls `pump(now,
room)` and sends what it returns.  A glue that hears when a full link has room again (the
node's links say so) passes ``poll=None`` and pumps on that signal; without it the server
asks to be pumped every `ROOM_POLL` seconds while a link is full.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import os
from collections.abc import Callable
from typing import Final, Protocol

from pqi.items.ft import FtChunkCrcItem, FtChunkMapItem, FtDataItem
from pqi.wire.fields import Sha1Hash, SslId
from pqi.wire.tlvvalues import FileData, FileItem

from .chunkmap import CHUNK_SIZE, chunk_count, full_map

__all__ = [
    "UploadServer",
    "TokenBucket",
    "SharedLookup",
    "PartialSource",
    "MAX_FT_CHUNK",
    "MAX_QUEUED_REQUESTS",
    "MAX_UPLOADS",
    "UPLOAD_IDLE",
    "Upload",
    "ROOM_POLL",
    "RECHECK_BYTES",
]

#: Largest piece of file in one Data item (``MAX_FT_CHUNK``, 240 KiB).
MAX_FT_CHUNK: Final = 240 * 1024
#: Requests kept waiting per peer; more are dropped (a peer asking faster than it reads).
MAX_QUEUED_REQUESTS: Final = 256
#: Largest single data request honoured (a peer asks at most a chunk at a time; RetroShare
#: itself asks far less).
MAX_REQUEST: Final = 16 * CHUNK_SIZE
#: Seconds between two pumps while a link is full, for a glue that is not told when it has
#: room again.
ROOM_POLL: Final = 0.01
#: Bytes of one request served on one lookup of its file (the shared indexes, the ban
#: list and a ``stat`` cost more than reading an item): a file banned, unshared or changed
#: while a request is served stops within this much.
RECHECK_BYTES: Final = CHUNK_SIZE
#: Open files kept for reading.
_MAX_OPEN: Final = 32
#: An upload is listed (`UploadServer.uploads`) until its peer has been silent this long
#: (s), as RetroShare forgets an upload's peer 10 s after its last request.
UPLOAD_IDLE: Final = 10.0
#: Uploads (peer, file) remembered at once; the longest idle is forgotten first.
MAX_UPLOADS: Final = 256


@dataclasses.dataclass
class Upload:
    """What one friend downloads from us: bytes sent so far, since when, last when."""

    peer: SslId
    file_hash: Sha1Hash
    size: int
    sent: int
    started: float
    last: float

    def rate(self) -> float:
        """Average bytes/s since the first piece (0 when all went at once)."""
        span = self.last - self.started
        return self.sent / span if span > 0 else 0.0


class SharedLookup(Protocol):
    def lookup(self, file_hash: Sha1Hash) -> tuple[str, int] | None: ...


class PartialSource(Protocol):
    """What the server needs of a download to serve its DONE chunks."""

    size: int

    def done_chunks(self) -> frozenset[int]: ...

    def read(self, offset: int, length: int) -> bytes: ...


class TokenBucket:
    """``rate`` bytes/s with ``burst`` bytes of credit; rate 0 means unlimited."""

    def __init__(self, rate: float = 0, burst: float | None = None, now: float = 0.0) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(rate, MAX_FT_CHUNK)
        self.tokens = self.burst
        self.at = now

    def available(self, now: float) -> float:
        if self.rate <= 0:
            return float("inf")
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return self.tokens

    def take(self, n: int) -> None:
        if self.rate > 0:
            self.tokens -= n

    def wait(self, n: int) -> float:
        """Seconds until ``n`` tokens are there (0 if already)."""
        if self.rate <= 0 or self.tokens >= n:
            return 0.0
        return (n - self.tokens) / self.rate


@dataclasses.dataclass
class _Pending:
    file_hash: Sha1Hash
    size: int
    offset: int
    end: int
    #: The shared file found for this request, and the offset up to which that lookup
    #: stands (`RECHECK_BYTES` past the lookup): a request's items share one lookup.
    found: tuple[str, int] | None = None
    found_until: int = 0


class UploadServer:
    """Answers requests for shared files and for the DONE chunks of our downloads."""

    def __init__(self, *, rate: float = 0, peer_rate: float = 0, now: float = 0.0) -> None:
        #: Banned files (`services.banlist.files.BannedFiles.is_banned`): never served.
        self.file_filter: Callable[[bytes], bool] | None = None
        self.indexes: list[SharedLookup] = []
        self.partials: Callable[[Sha1Hash], PartialSource | None] = lambda h: None
        self.global_bucket = TokenBucket(rate, now=now)
        self.peer_rate = peer_rate
        self._buckets: dict[SslId, TokenBucket] = {}
        self._queues: dict[SslId, collections.deque[_Pending]] = {}
        self._files: collections.OrderedDict[str, int] = collections.OrderedDict()
        #: Bytes sent per peer, data requests queued, requests refused by reason.
        self.sent: collections.Counter[SslId] = collections.Counter()
        self.requests_queued = 0
        self.refused: collections.Counter[str] = collections.Counter()
        #: Recent uploads by (peer, file), least recently active first.
        self._uploads: collections.OrderedDict[tuple[SslId, Sha1Hash], Upload] = \
            collections.OrderedDict()

    # --- configuration -----------------------------------------------------------------------

    def set_rates(self, rate: float, peer_rate: float, now: float) -> None:
        """Global and per-peer upload limits in bytes/s (0: unlimited)."""
        self.global_bucket = TokenBucket(rate, now=now)
        self.peer_rate = peer_rate
        self._buckets.clear()

    def _bucket(self, peer: SslId, now: float) -> TokenBucket:
        b = self._buckets.get(peer)
        if b is None or b.rate != self.peer_rate:
            b = self._buckets[peer] = TokenBucket(self.peer_rate, now=now)
        return b

    # --- lookups -----------------------------------------------------------------------------

    def _shared(self, file_hash: Sha1Hash, peer: SslId | None) -> tuple[str, int] | None:
        """A shared file, honouring per-friend visibility where the index has it (a banned
        file is never served)."""
        if self.file_filter is not None and self.file_filter(file_hash):
            return None
        for index in self.indexes:
            lookup_for = getattr(index, "lookup_for", None)
            if lookup_for is not None and peer is not None:
                found = lookup_for(file_hash, peer)
            else:
                found = index.lookup(file_hash)
            if found is not None:
                return found
        return None

    def chunk_map(self, peer: SslId, file_hash: Sha1Hash) -> FtChunkMapItem | None:
        """Our answer to a server chunk-map request (None: we do not have that file)."""
        found = self._shared(file_hash, peer)
        if found is not None:
            words = full_map(chunk_count(found[1]))
        else:
            partial = self.partials(file_hash)
            if partial is None:
                self.refused["unknown file"] += 1
                return None
            count = chunk_count(partial.size)
            words_list = [0] * ((count + 31) // 32)
            for i in partial.done_chunks():
                words_list[i >> 5] |= 1 << (i & 31)
            words = tuple(words_list)
        return FtChunkMapItem(is_client=True, hash=file_hash, chunk_map=words)

    def chunk_crc(self, peer: SslId, file_hash: Sha1Hash, index: int) -> FtChunkCrcItem | None:
        """The SHA-1 of chunk ``index``, if we have all of it."""
        found = self._shared(file_hash, peer)
        offset = index * CHUNK_SIZE
        if found is not None:
            path, size = found
            if not 0 <= offset < size:
                self.refused["chunk out of range"] += 1
                return None
            data = self._read(path, offset, min(CHUNK_SIZE, size - offset))
        else:
            partial = self.partials(file_hash)
            if partial is None or index not in partial.done_chunks():
                self.refused["chunk not available"] += 1
                return None
            data = partial.read(offset, min(CHUNK_SIZE, partial.size - offset))
        return FtChunkCrcItem(hash=file_hash, chunk_number=index,
                              check_sum=Sha1Hash(hashlib.sha1(data).digest()))

    # --- data requests -----------------------------------------------------------------------

    def request(self, peer: SslId, file_hash: Sha1Hash, size: int, offset: int,
                length: int) -> bool:
        """Queue a data request; False (and counted) when it cannot be served."""
        found = self._shared(file_hash, peer)
        if found is not None:
            real_size = found[1]
        else:
            partial = self.partials(file_hash)
            if partial is None:
                self.refused["unknown file"] += 1
                return False
            real_size = partial.size
            first, last = offset // CHUNK_SIZE, (offset + max(length, 1) - 1) // CHUNK_SIZE
            if not set(range(first, last + 1)) <= partial.done_chunks():
                self.refused["chunk not available"] += 1
                return False
        if size != real_size or offset < 0 or length <= 0 or length > MAX_REQUEST \
                or offset + length > real_size:
            self.refused["bad range"] += 1
            return False
        queue = self._queues.setdefault(peer, collections.deque())
        if len(queue) >= MAX_QUEUED_REQUESTS:
            self.refused["queue full"] += 1
            return False
        queue.append(_Pending(file_hash, real_size, offset, offset + length))
        self.requests_queued += 1
        return True

    def forget(self, peer: SslId) -> None:
        """The peer is gone: drop what it asked for."""
        self._queues.pop(peer, None)
        self._buckets.pop(peer, None)

    @property
    def backlog(self) -> bool:
        return any(self._queues.values())

    def waiting_with_room(self, room: Callable[[SslId], int]) -> bool:
        """Some peer has requests waiting and room on its link (pump again)."""
        return any(q and room(p) > 0 for p, q in self._queues.items())

    def pump(self, now: float, room: Callable[[SslId], int], poll: float | None = ROOM_POLL
             ) -> tuple[list[tuple[SslId, FtDataItem]], float | None]:
        """Data items to send now, and when to call again (None: nothing waits).

        ``room(peer)`` is how many bytes the peer's link takes now.  Peers are served round
        robin, one item each per round, so one greedy friend does not starve the others.
        ``poll`` is the wait asked for while a link is full; None leaves it to the glue to
        pump again when a link has room (or when `waiting_with_room` after its sends).
        """
        out: list[tuple[SslId, FtDataItem]] = []
        wait: float | None = None
        budget = {p: room(p) for p, q in self._queues.items() if q}
        active = [p for p, b in budget.items() if b > 0]
        if any(self._queues.values()) and not active:
            wait = poll
        while active:
            still = []
            for peer in active:
                queue = self._queues.get(peer)
                if not queue:
                    continue
                pending = queue[0]
                n = min(MAX_FT_CHUNK, pending.end - pending.offset)
                bucket = self._bucket(peer, now)
                if self.global_bucket.available(now) < n or bucket.available(now) < n:
                    delay = max(self.global_bucket.wait(n), bucket.wait(n))
                    wait = delay if wait is None else min(wait, delay)
                    continue
                item = self._data_item(peer, pending, n)
                if item is None:
                    queue.popleft()
                    self.refused["read failed"] += 1
                    continue
                self.global_bucket.take(n)
                bucket.take(n)
                pending.offset += n
                if pending.offset >= pending.end:
                    queue.popleft()
                self.sent[peer] += n
                self._uploaded(peer, pending, n, now)
                out.append((peer, item))
                budget[peer] -= n + 64
                if budget[peer] > 0 and queue:
                    still.append(peer)
                elif queue and poll is not None:
                    wait = poll if wait is None else min(wait, poll)
            active = still
        return out, wait

    def _uploaded(self, peer: SslId, pending: _Pending, n: int, now: float) -> None:
        key = (peer, pending.file_hash)
        up = self._uploads.get(key)
        if up is None:
            up = self._uploads[key] = Upload(peer, pending.file_hash, pending.size, 0, now, now)
            while len(self._uploads) > MAX_UPLOADS:
                self._uploads.popitem(last=False)
        else:
            self._uploads.move_to_end(key)
        up.sent += n
        up.last = now

    def uploads(self, now: float) -> list[Upload]:
        """Uploads whose peer asked for data in the last `UPLOAD_IDLE` seconds (older ones
        are forgotten)."""
        while self._uploads:
            key, oldest = next(iter(self._uploads.items()))
            if oldest.last + UPLOAD_IDLE >= now:
                break
            del self._uploads[key]
        return list(self._uploads.values())

    def _data_item(self, peer: SslId, pending: _Pending, n: int) -> FtDataItem | None:
        found = pending.found
        if found is None or pending.offset >= pending.found_until:
            found = pending.found = self._shared(pending.file_hash, peer)
            pending.found_until = pending.offset + RECHECK_BYTES
        try:
            if found is not None:
                data = self._read(found[0], pending.offset, n)
            else:
                partial = self.partials(pending.file_hash)
                if partial is None:
                    return None
                data = partial.read(pending.offset, n)
        except OSError:
            return None
        if len(data) != n:
            return None
        return FtDataItem(data=FileData(FileItem(pending.size, pending.file_hash),
                                        pending.offset, data))

    def _read(self, path: str, offset: int, n: int) -> bytes:
        fd = self._files.get(path)
        if fd is None:
            fd = os.open(path, os.O_RDONLY)
            self._files[path] = fd
            while len(self._files) > _MAX_OPEN:
                _, old = self._files.popitem(last=False)
                os.close(old)
        else:
            self._files.move_to_end(path)
        return os.pread(fd, n, offset)

    def close(self) -> None:
        for fd in self._files.values():
            os.close(fd)
        self._files.clear()
