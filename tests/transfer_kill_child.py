"""A downloader process for the crash tests: fetches a file from an in-process upload
server through the engine into a partial, and SIGKILLs itself at a chosen moment.

Usage: ``python -m tests.transfer_kill_child SOURCE PARTIALS INCOMING FETCH_LOG`` with
``RSPROTO_KILL_AT=point:n`` (``write``, ``commit`` or ``rename``; die at its n-th
occurrence).  Every data request is appended to FETCH_LOG before it is served.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sys

from pqi.wire.fields import Sha1Hash, SslId
from services.transfer.chunkmap import CHUNK_SIZE
from services.transfer.engine import (
    CommitChunks,
    Completed,
    Download,
    HashChunk,
    RequestChunkMap,
    RequestData,
    Tuning,
    UncommitChunks,
    VerifyFile,
    WriteData,
)
from services.transfer.partials import PartialFile
from services.transfer.server import UploadServer

#: Window kept small so that "in flight" is at most a few chunks.
TUNING = Tuning(min_window=2 * CHUNK_SIZE, max_window=2 * CHUNK_SIZE)
PEER = SslId(b"\x07" * 16)


class OneFile:
    def __init__(self, path: str, file_hash: bytes, size: int) -> None:
        self.entry = (file_hash, path, size)

    def lookup(self, file_hash: bytes):
        return (self.entry[1], self.entry[2]) if file_hash == self.entry[0] else None


def main() -> int:
    source, partials, incoming, fetch_log = sys.argv[1:5]
    point, _, count = os.environ.get("RSPROTO_KILL_AT", "none:0").partition(":")
    seen = {"n": 0}

    def hook(name: str) -> None:
        if name == point:
            seen["n"] += 1
            if seen["n"] == int(count):
                os.kill(os.getpid(), signal.SIGKILL)

    data = open(source, "rb").read()
    h = Sha1Hash(hashlib.sha1(data).digest())
    server = UploadServer()
    server.indexes.append(OneFile(source, h, len(data)))
    partial = PartialFile.create(partials, h, len(data), "../../evil/ target.bin", hook=hook)
    if partial.verified:
        partial.finish(incoming)
        return 0
    eng = Download(h, len(data), partial.chunks.done_indexes(), now=0, tuning=TUNING,
                   rng=random.Random(len(partial.chunks.done_indexes())))
    log = os.open(fetch_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    now = 0.0
    eng.add_source(PEER, now)
    todo = eng.drain(now)
    for _ in range(100000):
        if not todo:
            break
        a = todo.pop(0)
        if isinstance(a, RequestChunkMap):
            eng.chunk_map(PEER, server.chunk_map(PEER, h).chunk_map, now)
            todo += eng.drain(now)
        elif isinstance(a, RequestData):
            os.write(log, f"{a.offset} {a.length}\n".encode())
            server.request(PEER, h, len(data), a.offset, a.length)
            items, _ = server.pump(now, lambda p: 1 << 30)
            for _peer, item in items:
                eng.data(PEER, item.data.offset, item.data.data, now)
                todo += eng.drain(now)
        elif isinstance(a, WriteData):
            partial.write(a.offset, a.data)
        elif isinstance(a, CommitChunks):
            partial.commit(a.chunks)
        elif isinstance(a, UncommitChunks):
            partial.uncommit(a.chunks)
        elif isinstance(a, HashChunk):
            eng.chunk_hashed(a.chunk, partial.chunk_sha1(a.chunk), now)
            todo += eng.drain(now)
        elif isinstance(a, VerifyFile):
            eng.file_hashed(partial.file_sha1(), now)
            todo += eng.drain(now)
        elif isinstance(a, Completed):
            partial.mark_verified()
            partial.finish(incoming)
            return 0
        now += 0.001
    return 1


if __name__ == "__main__":
    sys.exit(main())
