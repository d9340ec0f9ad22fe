# -*- test-case-name: tests.test_sharing -*-
"""SHA-1 of shared files, computed in a thread pool and remembered in sqlite.

Files are identified by the SHA-1 of their content.  Hashing a large file takes seconds, so
it runs in a thread pool the caller gives (never on the reactor thread); the result is kept
in a sqlite table keyed by path together with the size and modification time it was computed
for, so a file that has not changed since is never read again, across restarts too.  The
sqlite connection is used from the reactor thread only; the pool threads only read files.
Paths go through `pqi.storage.to_stored`: a file name that is not UTF-8 (Python gives it
escaped bytes) is a key like any other, so such a file is hashed once too.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable
from typing import Final

from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from pqi.storage import private_database, to_stored
from pqi.wire.fields import Sha1Hash

__all__ = ["HashCache", "Hasher", "FileChangedError", "HASH_CACHE_FILE", "sha1_of_file"]

#: The hash cache's sqlite file in the account directory.
HASH_CACHE_FILE: Final = "hash_cache.sqlite"
_BLOCK: Final = 1 << 20


class FileChangedError(Exception):
    """The file changed (size or modification time) while it was being hashed; the hash was
    thrown away and the file will be hashed again on a later scan."""


def sha1_of_file(path: str, size: int, mtime_ns: int) -> Sha1Hash:
    """SHA-1 of a file, provided it still has ``size`` and ``mtime_ns`` once read (blocking)."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
        st = os.fstat(f.fileno())
    if st.st_size != size or st.st_mtime_ns != mtime_ns:
        raise FileChangedError(f"{path} changed while it was hashed")
    return Sha1Hash(h.digest())


class HashCache:
    """(path, size, mtime) -> SHA-1, in sqlite, with the time each entry was last used."""

    def __init__(self, path: str | os.PathLike[str], now: Callable[[], float]) -> None:
        self._db = sqlite3.connect(private_database(path))
        self._now = now
        with self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER NOT NULL,"
                " mtime_ns INTEGER NOT NULL, hash BLOB NOT NULL, used INTEGER NOT NULL)")

    def get(self, path: str, size: int, mtime_ns: int) -> Sha1Hash | None:
        """The cached hash, if one was computed for exactly this size and mtime."""
        row = self._db.execute("SELECT size, mtime_ns, hash FROM hashes WHERE path = ?",
                               (to_stored(path),)).fetchone()
        if row is None or row[0] != size or row[1] != mtime_ns or len(row[2]) != 20:
            return None
        return Sha1Hash(row[2])

    def put(self, path: str, size: int, mtime_ns: int, digest: Sha1Hash) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO hashes (path, size, mtime_ns, hash, used)"
                " VALUES (?, ?, ?, ?, ?)", (to_stored(path), size, mtime_ns, bytes(digest),
                                            int(self._now())))

    def touch(self, paths: list[str]) -> None:
        """Mark entries as used now (entries unused for long are dropped by `forget_older`)."""
        now = int(self._now())
        with self._db:
            self._db.executemany("UPDATE hashes SET used = ? WHERE path = ?",
                                 [(now, to_stored(p)) for p in paths])

    def forget_older(self, seconds: float) -> int:
        """Drop entries unused for ``seconds`` (files deleted or unshared); returns how many."""
        with self._db:
            cur = self._db.execute("DELETE FROM hashes WHERE used < ?",
                                   (int(self._now() - seconds),))
        return cur.rowcount

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM hashes").fetchone()[0])

    def close(self) -> None:
        self._db.close()


class Hasher:
    """Hashes files in ``pool`` (at most ``parallel`` at a time), consulting ``cache`` first.

    ``hashed`` counts the files actually read; ``bytes_hashed`` their bytes.
    """

    def __init__(self, reactor: object, pool: ThreadPool, cache: HashCache,
                 parallel: int = 2) -> None:
        self.reactor = reactor
        self.pool = pool
        self.cache = cache
        self._limit = defer.DeferredSemaphore(parallel)
        self.hashed = 0
        self.bytes_hashed = 0
        #: Set when the node stops: results arriving afterwards are not stored.
        self.closed = False

    def hash(self, path: str, size: int, mtime_ns: int) -> defer.Deferred[Sha1Hash]:
        """The file's SHA-1 (errback `FileChangedError` or `OSError` if it cannot be had)."""
        cached = self.cache.get(path, size, mtime_ns)
        if cached is not None:
            return defer.succeed(cached)

        def run() -> defer.Deferred[Sha1Hash]:
            return deferToThreadPool(self.reactor, self.pool,  # type: ignore[arg-type]
                                     sha1_of_file, path, size, mtime_ns)

        def store(digest: Sha1Hash) -> Sha1Hash:
            self.hashed += 1
            self.bytes_hashed += size
            if not self.closed:
                self.cache.put(path, size, mtime_ns, digest)
            return digest

        return self._limit.run(run).addCallback(store)
