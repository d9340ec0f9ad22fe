# -*- test-case-name: tests.test_sharing -*-
"""The local shared-file index: our shared folders as a tree of directories and hashed files.

A scan walks every shared folder (in the thread pool), hashes new or changed files through the
`Hasher` (the sqlite cache spares unchanged ones), and swaps in a new tree.  Friends address
our directories by *directory hashes*, ``SHA1(salt || parent hash || name)`` with a secret
per-node salt, so the hash says nothing about the path yet stays the same across scans and
restarts.  The root is the all-zero hash; its subdirectories are the shared folders (top-level
hashes use the folder's real path as the name, so renaming a share's virtual name keeps them).

Each directory carries RetroShare's two times: its own modification time and the *recursive*
one, the newest time anywhere below.  Friends re-ask a directory only when the recursive time
they hold differs from ours, so whenever a subtree's content changes its recursive time is
made to change too (even when the files that appeared carry old times).

`SharedIndex.lookup` is what the file-transfer server serves from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from pqi.storage import atomic_write
from pqi.wire.fields import Sha1Hash, SslId

from .dirlist import DirContent, RemoteFile
from .hashing import Hasher
from .shares import SharedFolder, ShareError, ShareList

__all__ = ["SharedIndex", "HashProgress", "LocalDir", "LocalFile", "dir_hash", "load_salt",
           "ROOT_HASH", "SALT_FILE", "RESCAN_PERIOD", "SETTLE_TIME", "MAX_SHARE_DEPTH",
           "HASH_CACHE_KEEP", "MIN_SETTLE_RECHECK"]

#: The root directory's hash, by convention all zeros.
ROOT_HASH: Final = Sha1Hash.null()
#: The salt's file in the account directory.
SALT_FILE: Final = "sharing_salt"
#: Seconds between rescans of the shared folders (RetroShare checks every 10 minutes).
RESCAN_PERIOD: Final = 60.0
#: Files modified less than this many seconds ago are left for a later scan (being written):
#: the scan after they settle, which comes that much later, not a whole period later.
SETTLE_TIME: Final = 10.0
#: Fewest seconds between a scan that left files to settle and the scan that looks again.
MIN_SETTLE_RECHECK: Final = 1.0
#: Seconds a hash cache entry outlives its file (unshared or deleted), as RetroShare's 30 days.
HASH_CACHE_KEEP: Final = 30 * 86400.0
#: Folders deeper than this below a shared folder are not indexed.
MAX_SHARE_DEPTH: Final = 64


def dir_hash(salt: bytes, parent: bytes, name: str) -> Sha1Hash:
    """``SHA1(salt || parent hash || name)``: a directory's id as friends see it."""
    return Sha1Hash(hashlib.sha1(salt + parent + name.encode("utf-8", "surrogateescape"))
                    .digest())


def load_salt(path: str | os.PathLike[str]) -> bytes:
    """The node's secret directory-hash salt (20 random bytes, created on first use)."""
    p = Path(path)
    try:
        salt = p.read_bytes()
        if len(salt) == 20:
            return salt
    except FileNotFoundError:
        pass
    salt = secrets.token_bytes(20)
    atomic_write(p, salt)
    return salt


@dataclasses.dataclass(frozen=True)
class LocalFile:
    """A hashed shared file."""

    name: str
    path: str
    size: int
    modif_ts: int
    hash: Sha1Hash


@dataclasses.dataclass(frozen=True)
class LocalDir:
    """A directory of the index; ``share`` names the shared folder it belongs to."""

    hash: Sha1Hash
    name: str
    path: str
    parent: Sha1Hash | None
    share: str | None
    modif_ts: int
    recurs_modif_ts: int
    subdirs: tuple[Sha1Hash, ...]
    files: tuple[LocalFile, ...]
    signature: bytes


@dataclasses.dataclass
class _Walked:
    name: str
    path: str
    mtime: int
    dirs: list[_Walked]
    files: list[tuple[str, str, int, int]]


def _walk(path: str, name: str, depth: int, max_depth: int) -> _Walked | None:
    """Read a folder tree (blocking; runs in the pool).  Symlinked folders are not followed
    (no loops); symlinked files are."""
    try:
        st = os.stat(path)
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError:
        return None
    node = _Walked(name, path, int(st.st_mtime), [], [])
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                if depth < max_depth:
                    sub = _walk(entry.path, entry.name, depth + 1, max_depth)
                    if sub is not None:
                        node.dirs.append(sub)
                continue
            est = entry.stat(follow_symlinks=True)
        except OSError:
            continue
        if stat.S_ISREG(est.st_mode):
            node.files.append((entry.name, entry.path, est.st_size, est.st_mtime_ns))
    return node


@dataclasses.dataclass
class HashProgress:
    """How far a scan got checking and hashing the shared files (``rsnode files shares``).

    ``waiting``: files modified too recently (`SETTLE_TIME`), hashed by a later scan."""

    files_total: int = 0
    files_done: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    waiting: int = 0

    def to_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class SharedIndex:
    """Our shared folders, indexed and hashed; rescanned every ``period`` seconds.

    ``on_changed()`` is called after a scan that changed what friends can see.  ``settle``:
    files modified more recently than that (by ``wall()``, seconds) wait for a later scan;
    once started, the index scans again as soon as the first of them has settled (a file
    copied in just before ``rsnode files share`` is shared seconds later, not a period later).
    """

    log = Logger()

    def __init__(self, reactor: object, shares: ShareList, hasher: Hasher, pool: ThreadPool,
                 salt: bytes, *, settle: float = SETTLE_TIME, period: float = RESCAN_PERIOD,
                 max_depth: int = MAX_SHARE_DEPTH, wall: Callable[[], float] = time.time,
                 on_changed: Callable[[], None] | None = None) -> None:
        self.reactor = reactor
        self.shares = shares
        self.hasher = hasher
        self.pool = pool
        self.salt = salt
        self.settle = settle
        self.period = period
        self.max_depth = max_depth
        self.wall = wall
        self.on_changed = on_changed
        self._dirs: dict[Sha1Hash, LocalDir] = {ROOT_HASH: self._root((), 0, b"")}
        self._by_hash: dict[Sha1Hash, LocalFile] = {}
        #: Banned files (`services.banlist.files.BannedFiles.is_banned`): never shown.
        self.file_filter: Callable[[bytes], bool] | None = None
        self._file_share: dict[Sha1Hash, set[str]] = {}
        self._scanning: defer.Deferred[bool] | None = None
        self._again = False
        self._loop: task.LoopingCall | None = None
        #: The one scan waiting for files too recent to hash to settle (at most one).
        self._settle_call: IDelayedCall | None = None
        #: When (``wall()``) the first file the last scan left to settle will have settled.
        self._settles_at: float | None = None
        #: Files skipped by the last scan (too recent, unreadable, or changed while hashed).
        self.pending = 0
        self.scans = 0
        #: The files the current (or last) scan checks and hashes, and how far it got.
        self.progress = HashProgress()

    # --- queries ---------------------------------------------------------------------------

    def lookup(self, file_hash: bytes) -> tuple[str, int] | None:
        """(path, size) of a shared file with this SHA-1, whoever may see it; else None."""
        f = self._by_hash.get(Sha1Hash(file_hash))
        return None if f is None else (f.path, f.size)

    def lookup_for(self, file_hash: bytes, ssl_id: SslId) -> tuple[str, int] | None:
        """Like `lookup`, but only for a file in a folder ``ssl_id`` may see."""
        h = Sha1Hash(file_hash)
        names = self._file_share.get(h, set())
        if not any(self._visible(name, ssl_id) for name in names):
            return None
        return self.lookup(h)

    def directory(self, hash_: bytes) -> LocalDir | None:
        return self._dirs.get(Sha1Hash(hash_))

    def share_size(self, share: str) -> int:
        """Hashed files indexed in shared folder ``share``."""
        return sum(len(d.files) for d in self._dirs.values() if d.share == share)

    def files(self) -> Iterator[LocalFile]:
        """Every hashed shared file (one per path)."""
        for d in self._dirs.values():
            yield from d.files

    def anonymous_files(self) -> Iterator[LocalFile]:
        """Every hashed file in a folder shared anonymously (turtle search and tunnels)."""
        for d in self._dirs.values():
            if d.share is not None and self._anonymous(d.share):
                yield from d.files

    def _anonymous(self, share: str) -> bool:
        try:
            return self.shares.get(share).anonymous
        except ShareError:
            return False

    def content_for(self, hash_: bytes, ssl_id: SslId) -> DirContent | None:
        """Directory ``hash_`` as friend ``ssl_id`` may see it, or None (absent or hidden)."""
        d = self._dirs.get(Sha1Hash(hash_))
        if d is None:
            return None
        if d.hash == ROOT_HASH:
            subdirs = tuple(h for h in d.subdirs if self._visible(self._dirs[h].share, ssl_id))
            return DirContent("", d.recurs_modif_ts, d.modif_ts, subdirs, ())
        if not self._visible(d.share, ssl_id):
            return None
        banned = self.file_filter or (lambda h: False)
        return DirContent(d.name, d.recurs_modif_ts, d.modif_ts, d.subdirs,
                          tuple(RemoteFile(f.name, f.size, f.hash, f.modif_ts)
                                for f in d.files if not banned(f.hash)))

    def _visible(self, share: str | None, ssl_id: SslId) -> bool:
        if share is None:
            return False
        try:
            folder = self.shares.get(share)
        except ShareError:
            return False
        return folder.visible_to(ssl_id)

    # --- scanning --------------------------------------------------------------------------

    def start(self) -> None:
        """Scan now and every ``period`` seconds."""
        self._loop = task.LoopingCall(self._periodic)
        self._loop.clock = self.reactor  # type: ignore[assignment]
        self._loop.start(self.period, now=True)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        if self._settle_call is not None and self._settle_call.active():
            self._settle_call.cancel()
        self._settle_call = None

    def _recheck_when_settled(self) -> None:
        """After a scan of the running index that left files to settle: one more scan when
        the first of them has, unless the periodic scan comes first."""
        if self._loop is None or self._settles_at is None or self._settle_call is not None:
            return
        delay = max(self._settles_at - self.wall(), MIN_SETTLE_RECHECK)
        if delay < self.period:
            self._settle_call = self.reactor.callLater(  # type: ignore[attr-defined]
                delay, self._settled)

    def _settled(self) -> None:
        self._settle_call = None
        self._periodic()

    def _periodic(self) -> None:
        self.scan().addErrback(lambda f: self.log.failure("shared folder scan failed", f))

    @property
    def scanning(self) -> bool:
        """A scan (walk and hashing) is under way."""
        return self._scanning is not None

    def scan(self) -> defer.Deferred[bool]:
        """Rescan every shared folder; fires True if what friends see changed.

        A scan asked for while one runs is run once more after it (coalesced)."""
        if self._scanning is not None:
            self._again = True
            result: defer.Deferred[bool] = defer.Deferred()
            self._scanning.addBoth(lambda _: self.scan().chainDeferred(result))
            return result
        d = defer.ensureDeferred(self._scan())
        self._scanning = d

        def done(result: bool | Failure) -> bool | Failure:
            self._scanning = None
            return result

        return d.addBoth(done)

    async def _scan(self) -> bool:
        folders = self.shares.folders()
        walked: list[tuple[SharedFolder, _Walked | None]] = []
        for folder in folders:
            tree = await deferToThreadPool(self.reactor, self.pool,  # type: ignore[arg-type]
                                           _walk, folder.path, folder.name, 0, self.max_depth)
            walked.append((folder, tree))
        hashes = await self._hash_all([t for _, t in walked if t is not None])
        if self.hasher.closed:
            return False
        old = self._dirs
        dirs: dict[Sha1Hash, LocalDir] = {}
        tops: list[Sha1Hash] = []
        for folder, tree in walked:
            if tree is None:
                continue
            top = dir_hash(self.salt, bytes(ROOT_HASH), folder.path)
            self._build(tree, top, ROOT_HASH, folder.name, folder.name, hashes, old, dirs)
            tops.append(top)
        # who sees what is part of the root's signature: a visibility change alone must change
        # the root's recursive time, or friends would keep their old view
        seen_by = repr([(f.name, f.visibility.value, sorted(f.friends)) for f in folders])
        root = self._root(tuple(tops), max((dirs[t].recurs_modif_ts for t in tops), default=0),
                          b"".join(dirs[t].signature for t in tops) + seen_by.encode())
        previous = old[ROOT_HASH]
        if root.signature != previous.signature:
            root = dataclasses.replace(
                root, recurs_modif_ts=max(root.recurs_modif_ts, previous.recurs_modif_ts + 1))
        else:
            root = dataclasses.replace(root, recurs_modif_ts=previous.recurs_modif_ts)
        dirs[ROOT_HASH] = root
        by_hash: dict[Sha1Hash, LocalFile] = {}
        file_share: dict[Sha1Hash, set[str]] = {}
        for d in dirs.values():
            for f in d.files:
                by_hash.setdefault(f.hash, f)
                file_share.setdefault(f.hash, set()).add(d.share or "")
        changed = root.signature != previous.signature or set(dirs) != set(old)
        self._dirs, self._by_hash, self._file_share = dirs, by_hash, file_share
        self.scans += 1
        self.hasher.cache.touch([f.path for d in dirs.values() for f in d.files])
        self.hasher.cache.forget_older(HASH_CACHE_KEEP)
        self.log.info("shared folders scanned: {files} files in {dirs} folders, {pending} "
                      "waiting, {hashed} hashed so far", files=sum(len(d.files) for d in
                                                                     dirs.values()),
                      dirs=len(dirs) - 1, pending=self.pending, hashed=self.hasher.hashed)
        if changed and self.on_changed is not None:
            self.on_changed()
        self._recheck_when_settled()
        return changed

    async def _hash_all(self, trees: list[_Walked]) -> dict[str, Sha1Hash]:
        now = self.wall()
        todo: list[tuple[str, int, int]] = []

        def collect(t: _Walked) -> None:
            for _name, path, size, mtime_ns in t.files:
                todo.append((path, size, mtime_ns))
            for sub in t.dirs:
                collect(sub)

        for t in trees:
            collect(t)
        pending = 0
        wanted: list[tuple[str, defer.Deferred[Sha1Hash]]] = []
        fresh = [t for t in todo if t[2] / 1e9 > now - self.settle]
        ready = [t for t in todo if t[2] / 1e9 <= now - self.settle]
        self._settles_at = min(t[2] / 1e9 for t in fresh) + self.settle if fresh else None
        progress = self.progress = HashProgress(len(ready), 0, sum(t[1] for t in ready), 0,
                                                len(fresh))

        def checked(result: object, size: int) -> object:
            progress.files_done += 1
            progress.bytes_done += size
            return result

        pending += len(fresh)
        for path, size, mtime_ns in ready:
            d = self.hasher.hash(path, size, mtime_ns)
            d.addBoth(checked, size)
            wanted.append((path, d))
        out: dict[str, Sha1Hash] = {}
        for path, d in wanted:
            try:
                out[path] = await d
            except Exception as e:  # noqa: BLE001  (unreadable or changed: next scan)
                pending += 1
                self.log.debug("not hashed: {path}: {error}", path=path, error=str(e))
        self.pending = pending
        return out

    def _build(self, t: _Walked, h: Sha1Hash, parent: Sha1Hash, name: str, share: str,
               hashes: dict[str, Sha1Hash], old: dict[Sha1Hash, LocalDir],
               dirs: dict[Sha1Hash, LocalDir]) -> LocalDir:
        subs = []
        for sub in t.dirs:
            sh = dir_hash(self.salt, bytes(h), sub.name)
            if sh in dirs:  # two names hashing alike cannot happen short of SHA-1 breaks
                continue
            subs.append(self._build(sub, sh, h, sub.name, share, hashes, old, dirs))
        files = tuple(LocalFile(fname, path, size, mtime_ns // 1_000_000_000, hashes[path])
                      for fname, path, size, mtime_ns in t.files if path in hashes)
        sig = hashlib.sha1()
        sig.update(name.encode("utf-8", "surrogateescape") + b"\0"
                   + t.mtime.to_bytes(8, "big", signed=True))
        for f in files:
            sig.update(f.name.encode("utf-8", "surrogateescape") + b"\0"
                       + f.size.to_bytes(8, "big") + f.hash
                       + f.modif_ts.to_bytes(8, "big", signed=True))
        for s in subs:
            sig.update(s.hash + s.signature)
        recurs = max([t.mtime, *(f.modif_ts for f in files),
                      *(s.recurs_modif_ts for s in subs)])
        signature = sig.digest()
        before = old.get(h)
        if before is not None:
            if before.signature == signature:
                recurs = before.recurs_modif_ts
            else:
                recurs = max(recurs, before.recurs_modif_ts + 1)
        d = LocalDir(h, name, t.path, parent, share, max(t.mtime, 0) & 0xFFFFFFFF,
                     max(recurs, 0) & 0xFFFFFFFF, tuple(s.hash for s in subs), files, signature)
        dirs[h] = d
        return d

    @staticmethod
    def _root(subdirs: tuple[Sha1Hash, ...], recurs: int, signature: bytes) -> LocalDir:
        return LocalDir(ROOT_HASH, "", "", None, None, 0, recurs, subdirs, (),
                        hashlib.sha1(signature).digest())
