# -*- test-case-name: tests.test_transfer_sync -*-
"""The ft service (0x0017) on the node: downloads, uploads, and the glue between them.

Each download is a sans-IO `engine.Download` plus a `partials.PartialFile`, driven by a
`pqi.driver.CoreDriver` of its own (its one timer); this module feeds it items and link
events and carries out its actions (items to peers; writes; commits on a sync thread of its
own and hashes on the reactor's thread pool, both off the reactor thread).  Uploads are the
`server.UploadServer`, pumped (through `_UploadPump` and a driver of its own) whenever
requests wait and the peer's link has room: on a node, a full link says when it has drained
(a producer and its consumer, no polling), so the sender is never idle while a link can take
more.

What is refused, and what happens:

- data for a hash we are not downloading, for a range never asked of that peer, or past the
  file's end is dropped and counted (``dropped`` by `engine.DropReason`), never written;
- a write or commit that fails (ENOSPC: disk full, EROFS/EACCES: read-only) pauses the
  download with the error in its `TransferInfo`: what was DONE stays DONE, ``resume`` retries;
- an incoming folder that refuses the finished file leaves it verified in the partials folder,
  paused with the error; ``resume`` moves it once the folder takes it;
- a download paused because the disk was full resumes by itself once the partials folder has
  room again (checked every `DISK_RETRY_PERIOD` seconds while one waits).

Finished downloads stay listed (`history`, the last `MAX_HISTORY`) until `clear_history`.

Events (``on_event(event)``): `TransferProgress` (about once a second per active download),
`TransferCompleted`, `TransferFailed`, `TransferBadSource`.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import errno
import hashlib
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from twisted.internet import defer, threads
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from pqi.driver import CoreDriver
from pqi.interfaces import DisconnectReason, IItemSender, PeerIdentity
from pqi.items.ft import (
    FtChunkCrcItem,
    FtChunkCrcRequestItem,
    FtChunkMapItem,
    FtChunkMapRequestItem,
    FtDataItem,
    FtDataRequestItem,
)
from pqi.items.ids import SERVICE_FILE_TRANSFER
from pqi.wire.fields import Sha1Hash, SslId
from pqi.wire.tlvvalues import FileItem
from services.base import Service
from services.spec import ServiceSpec

from .chunkmap import Strategy
from .commands import COMMANDS
from .engine import (
    Action,
    BadSource,
    CommitChunks,
    Completed,
    Download,
    DropReason,
    Failed,
    HashChunk,
    Phase,
    ReportProgress,
    RequestChunkCrc,
    RequestChunkMap,
    RequestData,
    Tuning,
    UncommitChunks,
    VerifyFile,
    WriteData,
)
from .errors import TransferError, UnknownTransferError
from .partials import PartialFile
from .server import ROOM_POLL, UploadServer
from .worker import SerialWorker

__all__ = [
    "FileTransferService",
    "TransferInfo",
    "TransferError",
    "UnknownTransferError",
    "ExtraFiles",
    "TRANSFER_EVENTS",
    "TransferProgress",
    "TransferCompleted",
    "TransferFailed",
    "TransferBadSource",
    "SPEC",
    "PARTIALS_DIR",
    "INCOMING_DIR",
    "DISK_RETRY_PERIOD",
    "DISK_RESUME_ROOM",
    "MAX_HISTORY",
]

#: Folders under the account directory.
PARTIALS_DIR: Final = "partials"
INCOMING_DIR: Final = "Downloads"
#: Seconds between two looks at the free space while a download waits for it (one
#: ``statvfs``, nothing to spare: a user who frees space sees the download resume at once).
DISK_RETRY_PERIOD: Final = 2.0
#: Free bytes that make a disk-full download resume (or all it still needs, if less).
DISK_RESUME_ROOM: Final = 16 << 20
#: Finished downloads remembered for ``rsnode files transfers``.
MAX_HISTORY: Final = 100
#: Received file data queued for the sync thread and not yet written (bytes, all downloads):
#: past it the reactor waits for the thread to catch up, so memory stays bounded.  An
#: ``fdatasync`` may hold the thread for tens of milliseconds, in which a link at 300 MB/s
#: brings some 10 MiB: at 16 MiB the reactor waited 33 times in a 512 MiB download
#: (docs/transfer.md).
MAX_WRITE_BEHIND: Final = 32 << 20
#: Least seconds between two commits queued on the sync thread: chunks finished sooner wait
#: and join the next one.  Each commit is an ``fdatasync`` and a state file replaced (two
#: more syncs); at 300 MB/s a commit per finished batch made some 110 per GiB, and every
#: sync may wait for a journal commit that carries other programs' writes too.  A crash
#: refetches at most this long's worth of chunks more.
COMMIT_PERIOD: Final = 0.25
#: The error a full disk leaves on a download (`_disk_error`).
DISK_FULL: Final = "disk full: free some space, then resume"


@dataclasses.dataclass(frozen=True)
class TransferInfo:
    """One download as the API and ``rsnode files transfers`` show it."""

    file_hash: Sha1Hash
    name: str
    size: int
    done: int
    rate: float
    eta: float | None
    state: str
    priority: int
    sources: int
    error: str = ""
    path: str = ""
    bad_sources: tuple[SslId, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"hash": self.file_hash.to_hex(), "name": self.name, "size": self.size,
                "done": self.done, "rate": round(self.rate, 1),
                "eta": None if self.eta is None else round(self.eta, 1), "state": self.state,
                "priority": self.priority, "sources": self.sources, "error": self.error,
                "path": self.path, "bad_sources": [p.to_hex() for p in self.bad_sources]}


class ExtraFiles:
    """Files served by hash outside the shared folders: finished downloads and files offered
    to a friend (RetroShare's "extra list")."""

    def __init__(self) -> None:
        self._files: dict[Sha1Hash, tuple[str, int]] = {}

    def add(self, file_hash: Sha1Hash, path: str, size: int) -> None:
        self._files[file_hash] = (path, size)

    def lookup(self, file_hash: Sha1Hash) -> tuple[str, int] | None:
        found = self._files.get(file_hash)
        if found is None:
            return None
        try:
            if os.stat(found[0]).st_size != found[1]:
                return None
        except OSError:
            return None
        return found


def sha1_of_file(path: str | os.PathLike[str]) -> tuple[Sha1Hash, int]:
    """(SHA-1, size) of a file (blocking)."""
    h = hashlib.sha1()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(4 << 20):
            h.update(block)
            size += len(block)
    return Sha1Hash(h.digest()), size


@dataclasses.dataclass
class _Transfer:
    partial: PartialFile
    engine: Download
    sources: tuple[SslId, ...] | None
    error: str = ""
    path: str = ""
    hashing: bool = False
    driver: CoreDriver | None = None
    #: The first failed write-behind (set on the sync thread): later writes are skipped and
    #: commits refused until `FileTransferService.resume` clears it (on the thread, in order).
    write_error: OSError | None = None

    @property
    def size(self) -> int:
        return self.partial.size

    def done_chunks(self) -> frozenset[int]:
        return self.engine.chunks.done_indexes()

    def read(self, offset: int, length: int) -> bytes:
        return self.partial.read(offset, length)


def _nothing() -> None:
    """A job that only says the jobs queued before it have run."""


class _CommitBatch:
    """Chunks of one download to commit in one job on the sync thread.  Until the job starts
    (under ``lock``) a later batch may take its chunks over: it is then superseded, and its
    job does nothing."""

    def __init__(self, transfer: _Transfer, chunks: set[int]) -> None:
        self.transfer = transfer
        self.chunks = chunks
        self.lock = threading.Lock()
        self.started = False
        self.superseded = False

    def take_over(self) -> set[int]:
        """This batch's chunks, for a batch queued after it; empty once its job started."""
        with self.lock:
            if self.started:
                return set()
            self.superseded = True
            return self.chunks

    def run(self) -> None:
        with self.lock:
            self.started = True
            if self.superseded:
                return
            chunks = tuple(sorted(self.chunks))
        failed = self.transfer.write_error
        if failed is not None:
            raise _LostWriteError(failed)
        self.transfer.partial.commit(chunks)


class _LostWriteError(OSError):
    """A commit refused because a write of its download failed before it."""


class _UploadPump:
    """The upload server as a core: `drain` pumps it (the data items the links have room
    for), `next_deadline` is when its rate limits (or a full link) let more out."""

    def __init__(self, server: UploadServer, room: Callable[[SslId], int],
                 clock: IReactorTime, *, told: bool) -> None:
        self.server = server
        self.room = room
        self.clock = clock
        #: The glue hears when a full link has room again: no polling while one is full.
        self.told = told
        self._due: float | None = None

    def handle_timer(self, now: float) -> None:
        self._due = None

    def next_deadline(self) -> float | None:
        return self._due

    def drain(self, now: float) -> list[tuple[SslId, FtDataItem]]:
        items, wait = self.server.pump(now, self.room, None if self.told else ROOM_POLL)
        self._due = None if wait is None else now + wait
        return items

    def after(self) -> None:
        """Once the items went to the links: a link that took them all straight to its
        transport still has room and will not say so, so pump again on the next turn."""
        if self.told and self.server.waiting_with_room(self.room):
            self._due = self.clock.seconds()


@dataclasses.dataclass(frozen=True)
class TransferProgress:
    """A download moved on (about once a second while it runs)."""

    info: TransferInfo


@dataclasses.dataclass(frozen=True)
class TransferCompleted:
    """A download finished: verified and moved to the incoming folder (``info.path``)."""

    info: TransferInfo


@dataclasses.dataclass(frozen=True)
class TransferFailed:
    """A download paused on an error (``info.error``); ``resume`` retries."""

    info: TransferInfo


@dataclasses.dataclass(frozen=True)
class TransferBadSource:
    """A source sent data that failed verification and is no longer asked."""

    info: TransferInfo
    #: The friend location that sent it.
    peer: SslId
    #: What was wrong.
    reason: str


#: The events the ft service emits.
TRANSFER_EVENTS: Final = (TransferProgress, TransferCompleted, TransferFailed,
                          TransferBadSource)


#: File transfer on a node: partial files and the incoming folder under the account directory.
SPEC: Final = ServiceSpec(
    SERVICE_FILE_TRANSFER, "ft", attribute="transfers",
    items=(FtDataRequestItem, FtDataItem, FtChunkMapRequestItem, FtChunkMapItem,
           FtChunkCrcRequestItem, FtChunkCrcItem),
    events=TRANSFER_EVENTS, commands=COMMANDS, cli="services.cli.transfer:register",
    build=lambda node: FileTransferService(
        node.control, node.reactor, partials_dir=Path(node.account.base_dir) / PARTIALS_DIR,
        incoming_dir=Path(node.account.base_dir) / INCOMING_DIR, room=node.link_room,
        watch_room=node.link_room_watch, on_event=node.emit))


class FileTransferService(Service):
    """Downloads into ``partials_dir`` then ``incoming_dir``; uploads from the shared indexes.

    ``room(peer)``: bytes the peer's link queue takes now (the node gives its streamer's free
    space); ``watch_room(callback)``, if given, registers ``callback(peer)`` to be called when
    a full link has room again (the node's `link_room_watch`), and uploads then wait for it
    instead of polling every `ROOM_POLL` s; ``hash_in_thread``: hash whole files off the
    reactor thread (False in tests driven by a fake clock); ``sync_in_thread``: write the
    partials' states (each a few fsyncs) on a worker thread of their own, in order, so that
    the reactor keeps receiving meanwhile (only where the reactor has ``callFromThread``);
    ``hook``: passed to every `PartialFile` (crash tests).
    """

    spec = SPEC
    log = Logger()

    def __init__(self, sender: IItemSender, reactor: IReactorTime, *,
                 partials_dir: str | os.PathLike[str], incoming_dir: str | os.PathLike[str],
                 room: Callable[[SslId], int] | None = None,
                 on_event: Callable[[object], None] | None = None,
                 hash_in_thread: bool = True, tuning: Tuning = Tuning(),
                 strategy: Strategy = Strategy.PROGRESSIVE,
                 hook: Callable[[str], None] | None = None,
                 upload_rate: float = 0, peer_upload_rate: float = 0,
                 sync_in_thread: bool = True,
                 watch_room: Callable[[Callable[[SslId], object]], object] | None = None
                 ) -> None:
        super().__init__(sender, reactor)
        self._sync_in_thread = sync_in_thread and hasattr(reactor, "callFromThread")
        self._syncer: SerialWorker | None = None
        self._closed = False
        self.partials_dir = Path(partials_dir)
        self.incoming_dir = Path(incoming_dir)
        self._room = room if room is not None else (lambda peer: 8 << 20)
        self._told = watch_room is not None
        if watch_room is not None:
            watch_room(self.link_has_room)
        self._on_event = on_event
        self._hash_in_thread = hash_in_thread
        self.tuning = tuning
        self.strategy = strategy
        self.hook = hook
        self.extra = ExtraFiles()
        #: Banned files (`services.banlist.files.BannedFiles.is_banned`): never downloaded.
        self.file_filter: Callable[[bytes], bool] | None = None
        self.server = UploadServer(rate=upload_rate, peer_rate=peer_upload_rate,
                                   now=reactor.seconds())
        self.server.indexes.append(self.extra)
        self.server.partials = self._partial_source
        self.downloads: dict[Sha1Hash, _Transfer] = {}
        #: Received data not written, by reason (bytes).
        self.dropped: collections.Counter[DropReason] = collections.Counter()
        self._uploads = self._upload_driver()
        #: Finished downloads, oldest first (bounded: `MAX_HISTORY`).
        self.history: collections.deque[TransferInfo] = collections.deque(maxlen=MAX_HISTORY)
        self._disk_timer: IDelayedCall | None = None
        #: The commit job last queued on the sync thread, while more chunks may join it.
        self._open_batch: _CommitBatch | None = None
        #: Chunks of one download finished since the last commit was queued, waiting for
        #: `COMMIT_PERIOD` to pass (`_release_held` queues them), and the call that will.
        self._held: tuple[_Transfer, set[int]] | None = None
        self._held_call: IDelayedCall | None = None
        self._last_commit = float("-inf")
        #: Bytes of file data queued for the sync thread and not yet written (under its lock).
        self._write_behind = 0
        self._write_lock = threading.Lock()
        #: Times the reactor waited for the sync thread (`MAX_WRITE_BEHIND` reached), and the
        #: seconds it spent waiting: a disk slower than the links shows here.
        self.write_waits = 0
        self.write_wait_seconds = 0.0
        #: Free bytes of the partials folder (a seam for tests).
        self.free_space: Callable[[], int] = lambda: shutil.disk_usage(self.partials_dir).free

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Resume the partials found on disk (paused ones stay paused)."""
        self._closed = False
        if self._sync_in_thread and self._syncer is None:
            self._syncer = SerialWorker("rsproto-ft-sync")
        found, failed = PartialFile.scan(self.partials_dir, self.hook)
        for path, error in failed:
            self.log.warn("partial {path} not resumed: {error}", path=str(path),
                          error=str(error))
        if self._uploads.stopped:
            self._uploads = self._upload_driver()
        for t in self.downloads.values():
            if t.driver is None or t.driver.stopped:
                t.driver = self._driver(t)
                t.driver.service()
        for partial in found:
            if partial.file_hash not in self.downloads:
                self._adopt(partial)
        self._pump()
        self._watch_disk()

    def stop(self) -> None:
        if self._disk_timer is not None and self._disk_timer.active():
            self._disk_timer.cancel()
        self._disk_timer = None
        self._uploads.stop()
        for t in self.downloads.values():
            if t.driver is not None:
                t.driver.stop()
        if self._held is not None:
            self._release_held()
        if self._syncer is not None:
            self._syncer.shutdown(wait=True)  # every state write queued is done
            self._syncer = None
        self._closed = True
        for t in self.downloads.values():
            t.partial.close()
        self.server.close()

    def add_index(self, index: Any) -> None:
        """Serve the files of ``index`` (``lookup(hash) -> (path, size) | None``)."""
        self.server.indexes.append(index)

    def _adopt(self, partial: PartialFile) -> _Transfer:
        settings = partial.settings
        now = self.reactor.seconds()
        engine = Download(partial.file_hash, partial.size, partial.chunks.done_indexes(),
                          now=now, strategy=self.strategy, priority=settings["priority"],
                          tuning=self.tuning)
        sources = tuple(settings["sources"]) or None
        t = _Transfer(partial, engine, sources, error=settings["error"])
        t.driver = self._driver(t)
        self.downloads[partial.file_hash] = t
        if partial.verified:
            engine.phase = Phase.COMPLETE
            if not settings["paused"]:
                self.reactor.callLater(0, self._finish, t)  # type: ignore[attr-defined]
            return t
        if settings["paused"]:
            engine.pause()
        elif engine.chunks.complete:
            engine.verify(now)
        for peer in self.peers:
            if sources is None or peer in sources:
                engine.add_source(peer, now)
        t.driver.service()
        return t

    def _driver(self, t: _Transfer) -> CoreDriver:
        return CoreDriver(t.engine, self.reactor, lambda action: self._act(t, action))

    # --- API ---------------------------------------------------------------------------------

    def download(self, file_hash: Sha1Hash, size: int, name: str,
                 sources: Iterable[SslId] | None = None, priority: int = 1) -> TransferInfo:
        """Start (or return the existing) download of ``file_hash``.

        ``sources``: the friends to ask (default: every connected friend running ft; those
        without the file never answer the chunk-map request and are never asked for data).
        """
        if size <= 0:
            raise TransferError("the file size must be known and positive")
        if file_hash in self.downloads:
            return self.info(file_hash)
        if self.file_filter is not None and self.file_filter(file_hash):
            raise TransferError(f"{file_hash.to_hex()} is a banned file")
        found = self.extra.lookup(file_hash)
        if found is not None:
            raise TransferError(f"already have that file at {found[0]}")
        chosen = tuple(sources) if sources is not None else None
        partial = PartialFile.create(self.partials_dir, file_hash, size, name,
                                     priority=priority, sources=chosen or (), hook=self.hook)
        t = self._adopt(partial)
        self.log.info("download of {name} ({size} bytes, {hash}) started",
                      name=partial.name, size=size, hash=file_hash.to_hex())
        return self.info(t.partial.file_hash)

    def _get(self, file_hash: Sha1Hash) -> _Transfer:
        t = self.downloads.get(file_hash)
        if t is None:
            raise UnknownTransferError(file_hash.to_hex())
        return t

    def pause(self, file_hash: Sha1Hash, error: str = "") -> None:
        t = self._get(file_hash)
        t.engine.pause()
        t.error = error
        self._service(t)
        self._save(t, paused=True, error=error)

    def resume(self, file_hash: Sha1Hash) -> None:
        t = self._get(file_hash)
        t.error = ""
        if self._syncer is not None:
            self._queue(setattr, t, "write_error", None)
        self._save(t, paused=False, error="")
        if t.partial.verified:
            self._after_disk(t, lambda: self._finish(t))
            return
        now = self.reactor.seconds()
        t.engine.resume(now)
        for peer in self.peers:
            if t.sources is None or peer in t.sources:
                t.engine.add_source(peer, now)
        self._service(t)

    def cancel(self, file_hash: Sha1Hash) -> None:
        t = self.downloads.pop(file_hash, None)
        if t is None:
            raise UnknownTransferError(file_hash.to_hex())
        t.engine.pause()
        if t.driver is not None:
            t.driver.stop()
        self._queue(t.partial.remove).addErrback(
            lambda f: self.log.failure("removing {name} failed", f, name=t.partial.name))

    def set_priority(self, file_hash: Sha1Hash, priority: int) -> None:
        if priority not in (0, 1, 2):
            raise TransferError("priority is 0 (low), 1 (normal) or 2 (high)")
        t = self._get(file_hash)
        t.engine.priority = priority
        self._save(t, priority=priority)

    def info(self, file_hash: Sha1Hash) -> TransferInfo:
        t = self._get(file_hash)
        p = t.engine.progress()
        state = "error" if t.error else p.phase.value
        return TransferInfo(t.partial.file_hash, t.partial.name, t.partial.size, p.done_bytes,
                            p.rate, p.eta, state, t.engine.priority, p.sources, t.error,
                            t.path, tuple(t.engine.reported))

    def transfers(self) -> list[TransferInfo]:
        return [self.info(h) for h in list(self.downloads)]

    def clear_history(self) -> int:
        """Forget the finished downloads listed in `history`; returns how many."""
        count = len(self.history)
        self.history.clear()
        return count

    # --- waiting for disk space ----------------------------------------------------------------

    def _watch_disk(self) -> None:
        """Look again in `DISK_RETRY_PERIOD` s if a download waits for disk space."""
        waiting = any(t.error == DISK_FULL for t in self.downloads.values())
        if not waiting or self._closed or (
                self._disk_timer is not None and self._disk_timer.active()):
            return
        self._disk_timer = self.reactor.callLater(  # type: ignore[attr-defined]
            DISK_RETRY_PERIOD, self._retry_disk)

    def _retry_disk(self) -> None:
        self._disk_timer = None
        try:
            free = self.free_space()
        except OSError:
            free = 0
        for t in list(self.downloads.values()):
            if t.error != DISK_FULL:
                continue
            needed = min(DISK_RESUME_ROOM, t.partial.size - t.engine.progress().done_bytes)
            if free >= needed:
                self.log.info("disk space is back: download of {name} resumes",
                              name=t.partial.name)
                self.resume(t.partial.file_hash)
        self._watch_disk()

    def share_file(self, path: str | os.PathLike[str]) -> FileItem:
        """Serve one file by its hash (blocking hash; for offers and small shares)."""
        real = os.path.realpath(path)
        file_hash, size = sha1_of_file(real)
        self.extra.add(file_hash, real, size)
        return FileItem(size, file_hash, os.path.basename(real))

    def _save(self, t: _Transfer, **changes: Any) -> None:
        def failed(f: Failure) -> None:
            f.trap(OSError)
            self.log.warn("cannot record the state of {name}: {error}", name=t.partial.name,
                          error=str(f.value))

        self._queue(t.partial.update, **changes).addErrback(failed)

    def _commit(self, t: _Transfer, chunks: tuple[int, ...]) -> None:
        """Record ``chunks`` DONE durably, after every write queued before: at once when
        the last commit was queued `COMMIT_PERIOD` ago or more, else held until then (any
        state write queued meanwhile queues the held chunks first, so the order of state
        writes is kept)."""
        if self._syncer is None:
            self._queue_commit(t, set(chunks))
            return
        held = self._held
        if held is not None and held[0] is not t:
            self._release_held()
            held = None
        if held is not None:
            held[1].update(chunks)
            return
        wait = self._last_commit + COMMIT_PERIOD - self.reactor.seconds()
        if wait <= 0:
            self._queue_commit(t, set(chunks))
            return
        self._held = (t, set(chunks))
        self._held_call = self.reactor.callLater(wait, self._release_held)

    def _release_held(self) -> None:
        """Queue the held commit now (its time came, or a state write must follow it)."""
        if self._held_call is not None and self._held_call.active():
            self._held_call.cancel()
        self._held_call = None
        held, self._held = self._held, None
        if held is not None:
            self._queue_commit(*held)

    def _queue_commit(self, t: _Transfer, chunks: set[int]) -> None:
        """Queue the commit of ``chunks`` on the sync thread.  While the last
        commit queued on the sync thread is one of the same download that has not started,
        and no state write was queued since, the new batch takes its chunks over and it does
        nothing: a lagging sync thread then makes one ``fdatasync`` and one state write for
        all of them instead of one per chunk.  A commit only ever moves later, past data
        writes (never past another state write), so no chunk is recorded before its bytes."""
        self._last_commit = self.reactor.seconds()
        taken: set[int] = set()
        previous = self._open_batch
        if previous is not None and previous.transfer is t:
            taken = previous.take_over()
        batch = _CommitBatch(t, taken | chunks)

        def failed(f: Failure) -> None:
            if not f.check(OSError):
                self.log.failure("committing chunks of {name} failed", f, name=t.partial.name)
                return
            if not self._current(t):
                return
            # Chunks whose bytes may not all be on disk are fetched again after the resume.
            t.engine.lost(tuple(sorted(batch.chunks)))
            if not t.error:
                self._disk_error(t, f.value)

        self._queue(batch.run).addErrback(failed)
        self._open_batch = batch if self._syncer is not None else None

    def _write(self, t: _Transfer, offset: int, data: bytes | memoryview) -> None:
        """Write received data: on the sync thread, behind the reactor, when there is one.

        The reactor thread then only decrypts and parses while the kernel copies the bytes
        into the page cache on the other core.  The sync thread runs its jobs in order, so a
        commit (``fdatasync``), a chunk's hash, the file's check and a removal all see every
        write queued before them; a failed write marks the download (`_Transfer.write_error`)
        so that no later commit of it succeeds."""
        if self._syncer is None:
            self._disk(t, t.partial.write, offset, data)
            return
        n = len(data)
        with self._write_lock:
            self._write_behind += n
            over = self._write_behind > MAX_WRITE_BEHIND
        if over:
            began = self.reactor.seconds()
            self._syncer.submit(_nothing).result()  # the thread catches up with every job
            self.write_waits += 1
            self.write_wait_seconds += self.reactor.seconds() - began
        call = self.reactor.callFromThread  # type: ignore[attr-defined]

        def job() -> None:
            try:
                if t.write_error is None:
                    t.partial.write(offset, data)
            except OSError as e:
                t.write_error = e
                call(self._write_failed, t, e)
            finally:
                with self._write_lock:
                    self._write_behind -= n

        self._syncer.post(job)

    def _write_failed(self, t: _Transfer, e: OSError) -> None:
        if self._current(t) and not t.error:
            self._disk_error(t, e)

    def _queue(self, op: Callable[..., object], *args: object,
               **kwargs: object) -> defer.Deferred[object]:
        """Run ``op`` (a partial's state write or removal) after every one queued before it:
        on the sync thread (one thread, first in first out) when there is one, else at once.
        Fires on the reactor thread with its result or failure."""
        if self._held is not None:
            self._release_held()  # held chunks are committed before this job, as they came
        self._open_batch = None  # a commit queued from now on must not pass this job
        if self._syncer is None:
            return defer.maybeDeferred(op, *args, **kwargs)
        d: defer.Deferred[object] = defer.Deferred()
        call = self.reactor.callFromThread  # type: ignore[attr-defined]

        def done(fut: concurrent.futures.Future[object]) -> None:
            exc = fut.exception()
            if exc is not None:
                call(d.errback, Failure(exc))
            else:
                call(d.callback, fut.result())

        self._syncer.submit(op, *args, **kwargs).add_done_callback(done)
        return d

    def _durably(self, t: _Transfer, op: Callable[..., object], *args: object,
                 then: Callable[[], object] | None = None) -> None:
        """Queue a state write; a disk error pauses the download, success runs ``then``."""
        def ok(_: object) -> None:
            if then is not None and self._current(t):
                then()

        def failed(f: Failure) -> None:
            if f.check(OSError):
                if self._current(t):
                    self._disk_error(t, f.value)
            else:
                self.log.failure("writing the state of {name} failed", f,
                                 name=t.partial.name)

        self._queue(op, *args).addCallbacks(ok, failed)

    def _after_disk(self, t: _Transfer, then: Callable[[], object]) -> None:
        """Run ``then`` on the reactor once the state writes queued so far are done."""
        self._queue(lambda: None).addCallback(lambda _: then() if self._current(t) else None)

    def _current(self, t: _Transfer) -> bool:
        return not self._closed and self.downloads.get(t.partial.file_hash) is t

    # --- peers -------------------------------------------------------------------------------

    def peer_connected(self, peer: PeerIdentity) -> None:
        super().peer_connected(peer)
        for t in list(self.downloads.values()):
            if t.sources is None or peer.ssl_id in t.sources:
                self._feed(t, t.engine.add_source, peer.ssl_id)

    def peer_disconnected(self, peer: PeerIdentity, reason: DisconnectReason) -> None:
        super().peer_disconnected(peer, reason)
        self.server.forget(peer.ssl_id)
        for t in list(self.downloads.values()):
            self._feed(t, t.engine.remove_source, peer.ssl_id)

    # --- items -------------------------------------------------------------------------------

    def receive(self, peer: PeerIdentity, item: object) -> None:
        ssl = peer.ssl_id
        if isinstance(item, FtDataItem):
            fd = item.data
            t = self.downloads.get(fd.file.hash)
            if t is None or fd.file.size != t.partial.size:
                self.dropped[DropReason.NOT_DOWNLOADING] += len(fd.data)
                return
            dropped = t.engine.dropped
            before = dict(dropped)  # a few reasons at most: cheaper than Counter arithmetic
            self._feed(t, t.engine.data, ssl, fd.offset, fd.data)
            if dropped != before:
                for reason, count in dropped.items():
                    if count > before.get(reason, 0):
                        self.dropped[reason] += count - before.get(reason, 0)
        elif isinstance(item, FtDataRequestItem):
            if self.server.request(ssl, item.file.hash, item.file.size, item.offset,
                                   item.chunk_size):
                self._pump()
        elif isinstance(item, FtChunkMapRequestItem):
            if item.is_client:
                t = self.downloads.get(item.hash)
                if t is not None:
                    self.send(ssl, FtChunkMapItem(is_client=False, hash=item.hash,
                                                  chunk_map=t.engine.chunks.compressed()))
                return
            answer = self.server.chunk_map(ssl, item.hash)
            if answer is not None:
                self.send(ssl, answer)
        elif isinstance(item, FtChunkMapItem):
            t = self.downloads.get(item.hash)
            if t is not None and item.is_client:
                self._feed(t, t.engine.chunk_map, ssl, item.chunk_map)
        elif isinstance(item, FtChunkCrcRequestItem):
            crc = self.server.chunk_crc(ssl, item.hash, item.chunk_number)
            if crc is not None:
                self.send(ssl, crc)
        elif isinstance(item, FtChunkCrcItem):
            t = self.downloads.get(item.hash)
            if t is not None:
                self._feed(t, t.engine.chunk_crc, ssl, item.chunk_number, item.check_sum)

    def _partial_source(self, file_hash: Sha1Hash) -> _Transfer | None:
        t = self.downloads.get(file_hash)
        if t is None or t.engine.chunks.done_count == 0:
            return None
        return t

    # --- actions -----------------------------------------------------------------------------

    def _feed(self, t: _Transfer, method: Callable[..., object], *args: object) -> None:
        """Give ``t``'s engine one input through its driver (which adds ``now``)."""
        if t.driver is not None:
            t.driver.feed(method, *args)

    def _service(self, t: _Transfer) -> None:
        """Carry out what ``t``'s engine queued outside `_feed`, and re-arm its timer."""
        if t.driver is not None:
            t.driver.service()

    def _act(self, t: _Transfer, a: Action) -> None:
        """Carry out one action of ``t``'s engine (none once it is gone or stopped by an
        error)."""
        fh, size = t.partial.file_hash, t.partial.size
        if self.downloads.get(fh) is not t:
            return
        if t.error and t.engine.phase is Phase.PAUSED:
            if isinstance(a, CommitChunks):
                # A write before this commit failed (disk full...): these chunks' bytes are
                # not all on disk, so they are fetched again after the resume.
                t.engine.lost(a.chunks)
            return
        if isinstance(a, RequestData):
            self.send(a.peer, FtDataRequestItem(offset=a.offset, chunk_size=a.length,
                                                file=FileItem(size, fh)))
        elif isinstance(a, WriteData):
            self._write(t, a.offset, a.data)
        elif isinstance(a, CommitChunks):
            self._commit(t, a.chunks)
        elif isinstance(a, UncommitChunks):
            self._durably(t, t.partial.uncommit, a.chunks)
        elif isinstance(a, RequestChunkMap):
            self.send(a.peer, FtChunkMapRequestItem(is_client=False, hash=fh))
        elif isinstance(a, RequestChunkCrc):
            self.send(a.peer, FtChunkCrcRequestItem(hash=fh, chunk_number=a.chunk))
        elif isinstance(a, HashChunk):
            self._hash_chunk(t, a.chunk)
        elif isinstance(a, VerifyFile):
            self._verify(t)
        elif isinstance(a, BadSource):
            self.log.warn("{peer} is a bad source of {name}: {reason}",
                          peer=a.peer.to_hex(), name=t.partial.name, reason=a.reason)
            self._emit(TransferBadSource(self.info(fh), a.peer, a.reason))
        elif isinstance(a, Completed):
            self._durably(t, t.partial.mark_verified, then=lambda: self._finish(t))
        elif isinstance(a, Failed):
            t.error = a.reason
            self._save(t, paused=True, error=a.reason)
            self._emit(TransferFailed(self.info(fh)))
        elif isinstance(a, ReportProgress):
            self._emit(TransferProgress(self.info(fh)))

    def _disk(self, t: _Transfer, op: Callable[..., object], *args: object) -> None:
        try:
            op(*args)
        except OSError as e:
            self._disk_error(t, e)

    def _disk_error(self, t: _Transfer, e: OSError) -> None:
        if e.errno == errno.ENOSPC:
            text = DISK_FULL
        elif e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            text = f"cannot write ({os.strerror(e.errno)}): fix the folder, then resume"
        else:
            text = f"disk error: {e}"
        t.engine.pause()
        t.error = text
        self._service(t)
        self.log.warn("download of {name} paused: {error}", name=t.partial.name, error=text)
        self._save(t, paused=True, error=text)
        self._emit(TransferFailed(self.info(t.partial.file_hash)))
        self._watch_disk()

    def _hash_chunk(self, t: _Transfer, chunk: int) -> None:
        """A chunk's SHA-1 for the engine, read after the writes queued before it."""
        if self._syncer is None:
            self._feed(t, t.engine.chunk_hashed, chunk, t.partial.chunk_sha1(chunk))
            return

        def hashed(sha1: object) -> None:
            if self._current(t):
                self._feed(t, t.engine.chunk_hashed, chunk, sha1)

        def failed(f: Failure) -> None:
            f.trap(OSError)
            if self._current(t):
                self._disk_error(t, f.value)

        self._queue(t.partial.chunk_sha1, chunk).addCallbacks(hashed, failed)

    def _verify(self, t: _Transfer, *, written: bool = False) -> None:
        """Check the whole file's SHA-1 (once the writes queued so far are on disk)."""
        if t.hashing:
            return
        if self._syncer is not None and not written:
            self._after_disk(t, lambda: self._verify(t, written=True))
            return
        t.hashing = True
        if self._hash_in_thread and hasattr(self.reactor, "getThreadPool"):
            d = threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(),
                                          t.partial.file_sha1)
        else:
            d = defer.maybeDeferred(t.partial.file_sha1)

        def hashed(sha1: bytes) -> None:
            t.hashing = False
            if self.downloads.get(t.partial.file_hash) is t:
                self._feed(t, t.engine.file_hashed, sha1)

        def failed(f: Any) -> None:
            t.hashing = False
            if f.check(OSError):
                self._disk_error(t, f.value)
            else:
                self.log.failure("hashing {name} failed", f, name=t.partial.name)

        d.addCallbacks(hashed, failed)

    def _finish(self, t: _Transfer) -> None:
        fh = t.partial.file_hash
        if self.downloads.get(fh) is not t:
            return
        try:
            path = t.partial.finish(self.incoming_dir)
        except OSError as e:
            text = (f"the incoming folder {self.incoming_dir} refuses the file "
                    f"({os.strerror(e.errno) if e.errno else e}): fix it, then resume")
            t.error = text
            self._save(t, paused=True, error=text)
            self.log.warn("{name} verified but not moved: {error}", name=t.partial.name,
                          error=text)
            self._emit(TransferFailed(self.info(fh)))
            return
        t.path = str(path)
        info = self.info(fh)
        del self.downloads[fh]
        if t.driver is not None:
            t.driver.stop()
        self.history.append(info)
        self.extra.add(fh, str(path), t.partial.size)
        self.log.info("download of {name} complete: {path}", name=t.partial.name,
                      path=str(path))
        self._emit(TransferCompleted(info))

    # --- uploads ---------------------------------------------------------------------------

    def _upload_driver(self) -> CoreDriver:
        pump = _UploadPump(self.server, self._room, self.reactor, told=self._told)
        return CoreDriver(pump, self.reactor, lambda out: self.send(*out), after=pump.after)

    def link_has_room(self, peer: SslId) -> None:
        """A friend's link, full before, has room again: send what waits for it (and for any
        other peer: a tunnel's virtual peers share their friend's link)."""
        self._pump()

    def _pump(self) -> None:
        """Send the data items waiting uploads may send now; the driver keeps the timer for
        the rest."""
        self._uploads.service()

    def _emit(self, event: object) -> None:
        if self._on_event is not None:
            self._on_event(event)
