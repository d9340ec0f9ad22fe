# -*- test-case-name: tests.test_partials -*-
"""Partial downloads on disk: ``<partials>/<hex hash>`` plus its state file beside it.

The data file is written at absolute offsets as pieces arrive.  The state file
``<hex hash>.state`` (JSON) records the file's identity, its name, which chunks are DONE and
the download's settings; it is only ever replaced whole (temp file, fsync, rename, fsync of the
folder), and a chunk is recorded DONE only after the data file was fsynced.  So whatever
moment a process is killed at, the state on disk parses and every chunk it calls DONE holds
the right bytes: a restart refetches at most the chunks that were in flight.

Completion is two steps, each durable before the next: the state records ``verified`` once the
whole file hashed right, then the data file is hard-linked under its final name in the
incoming folder (``os.link`` never replaces a name: a clash or a planted symlink gets
``name (1).ext``), and only then are the partial and its state removed.  The final name
therefore never exists before verification; a kill between link and removal is finished by
`PartialFile.finish` on the next start.  When the incoming folder is on another file system
the bytes are copied to a hidden temp file there first (``O_EXCL|O_NOFOLLOW``), fsynced, and
that is linked.

``hook(point)``, if given, is called at ``"write"`` (half a piece written), ``"commit"`` (new
state written, not yet renamed) and ``"rename"`` (final name linked, partial not yet removed):
the crash tests kill the process there.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from pqi.storage import atomic_write, fsync_dir
from pqi.wire.fields import Sha1Hash, SslId

from .chunkmap import CHUNK_SIZE, ChunkMap, chunk_count, compress, decompress
from .names import candidates, link_into, sanitise
from .prefixhash import PrefixHash

__all__ = [
    "PartialFile",
    "PartialStateError",
    "STATE_SUFFIX",
    "STATE_VERSION",
]

#: Suffix of the state file beside each partial.
STATE_SUFFIX: Final = ".state"
#: Version of the state file format.
STATE_VERSION: Final = 1
#: Largest state file read back (a 1 TiB file's map is 128 KiB of hex).
_MAX_STATE_BYTES: Final = 4 * 1024 * 1024
_TMP_SUFFIX: Final = ".tmp"


def _fallocate() -> Callable[[int, int, int, int], int] | None:
    """The C library's ``fallocate`` (Linux), or None."""
    try:
        call = ctypes.CDLL(None, use_errno=True).fallocate
    except (AttributeError, OSError):
        return None
    call.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
    call.restype = ctypes.c_int
    return call  # type: ignore[no-any-return]


_FALLOCATE: Final = _fallocate()


def _reserve_blocks(fd: int, size: int) -> bool:
    """Ask the file system for the blocks of ``[0, size)`` of ``fd`` (the file grows to
    ``size``); False, changing nothing, where it cannot (no space, no support).

    ``fallocate(2)`` itself, not ``posix_fallocate``: where the file system has no
    reservation, glibc's ``posix_fallocate`` emulates one by reading and writing a byte in
    every block, a round trip per 4 KiB on a network file system."""
    if _FALLOCATE is None:
        return False
    return _FALLOCATE(fd, 0, 0, size) == 0


class PartialStateError(ValueError):
    """A partial's state file is missing or does not parse: the partial cannot be resumed
    (it is left alone on disk, never overwritten)."""


@dataclasses.dataclass
class _State:
    """What the state file holds.  ``done`` and its map ``done_words`` change in place, by
    the chunks added or removed (`add_done`, `remove_done`), so a commit costs what it adds,
    not what the file already has (a 10 GiB file is 10,240 chunks and as many commits)."""

    file_hash: Sha1Hash
    size: int
    name: str
    done: set[int] = dataclasses.field(default_factory=set)
    priority: int = 1
    paused: bool = False
    error: str = ""
    sources: tuple[SslId, ...] = ()
    verified: bool = False
    done_words: list[int] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.done = set(self.done)
        self.done_words = list(compress(self.done, chunk_count(self.size)))

    def add_done(self, chunks: Iterable[int]) -> None:
        for i in chunks:
            self.done.add(i)
            self.done_words[i >> 5] |= 1 << (i & 31)

    def remove_done(self, chunks: Iterable[int]) -> None:
        for i in chunks:
            self.done.discard(i)
            self.done_words[i >> 5] &= ~(1 << (i & 31))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION, "hash": self.file_hash.to_hex(), "size": self.size,
            "name": self.name,
            "done": b"".join(w.to_bytes(4, "little") for w in self.done_words).hex(),
            "priority": self.priority, "paused": self.paused, "error": self.error,
            "sources": [s.to_hex() for s in self.sources], "verified": self.verified,
        }

    @classmethod
    def from_json(cls, obj: Any) -> _State:
        try:
            if obj["version"] != STATE_VERSION:
                raise PartialStateError(f"state version {obj['version']} unknown")
            size = int(obj["size"])
            if size < 0:
                raise PartialStateError("negative size")
            raw = bytes.fromhex(obj["done"])
            words = [int.from_bytes(raw[i:i + 4], "little") for i in range(0, len(raw), 4)]
            return cls(
                file_hash=Sha1Hash.from_hex(obj["hash"]), size=size, name=str(obj["name"]),
                done=decompress(words, chunk_count(size)), priority=int(obj["priority"]),
                paused=bool(obj["paused"]), error=str(obj["error"]),
                sources=tuple(SslId.from_hex(s) for s in obj["sources"]),
                verified=bool(obj["verified"]))
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, PartialStateError):
                raise
            raise PartialStateError(f"bad state: {e}") from e


class PartialFile:
    """One partial download: its data file, its durable state and the chunk map in memory."""

    def __init__(self, folder: Path, state: _State,
                 hook: Callable[[str], None] | None = None) -> None:
        self.folder = folder
        self._state = state
        self.hook = hook
        self.chunks = ChunkMap(state.size, state.done)
        self.data_path = folder / state.file_hash.to_hex()
        self.state_path = folder / (state.file_hash.to_hex() + STATE_SUFFIX)
        self._fd: int | None = None
        self._open_lock = threading.Lock()
        #: Whether the first write has asked the file system for the whole file's blocks.
        self._allocated = False
        self._prefix = PrefixHash(state.size)
        #: Every chunk below it is DONE (where `hash_prefix` resumes looking for a gap).
        self._done_run = 0

    # --- creation and loading --------------------------------------------------------------

    @classmethod
    def create(cls, folder: str | os.PathLike[str], file_hash: Sha1Hash, size: int, name: str,
               *, priority: int = 1, sources: Iterable[SslId] = (),
               hook: Callable[[str], None] | None = None) -> PartialFile:
        """A new partial (or the existing one for that hash, resumed)."""
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        if (path / (file_hash.to_hex() + STATE_SUFFIX)).exists():
            return cls.load(path, file_hash, hook=hook)
        state = _State(file_hash, size, sanitise(name), priority=priority,
                       sources=tuple(sources))
        partial = cls(path, state, hook)
        partial._open()
        partial._write_state()
        return partial

    @classmethod
    def load(cls, folder: str | os.PathLike[str], file_hash: Sha1Hash,
             hook: Callable[[str], None] | None = None) -> PartialFile:
        """The partial of ``file_hash`` as its state file records it."""
        path = Path(folder)
        state_path = path / (file_hash.to_hex() + STATE_SUFFIX)
        try:
            with open(state_path, "rb") as f:
                text = f.read(_MAX_STATE_BYTES + 1)
        except FileNotFoundError as e:
            raise PartialStateError(f"no state for {file_hash.to_hex()}") from e
        if len(text) > _MAX_STATE_BYTES:
            raise PartialStateError("state file too large")
        try:
            state = _State.from_json(json.loads(text))
        except ValueError as e:
            raise PartialStateError(f"{state_path}: {e}") from e
        if state.file_hash != file_hash:
            raise PartialStateError(f"{state_path} names another hash")
        return cls(path, state, hook)

    @classmethod
    def scan(cls, folder: str | os.PathLike[str],
             hook: Callable[[str], None] | None = None
             ) -> tuple[list[PartialFile], list[tuple[Path, PartialStateError]]]:
        """Every partial in ``folder`` (to resume at start) and the state files that failed."""
        path = Path(folder)
        found: list[PartialFile] = []
        failed: list[tuple[Path, PartialStateError]] = []
        if not path.is_dir():
            return found, failed
        for entry in sorted(path.iterdir()):
            if not entry.name.endswith(STATE_SUFFIX):
                continue
            try:
                file_hash = Sha1Hash.from_hex(entry.name[:-len(STATE_SUFFIX)])
                found.append(cls.load(path, file_hash, hook))
            except ValueError as e:
                err = e if isinstance(e, PartialStateError) else PartialStateError(str(e))
                failed.append((entry, err))
        return found, failed

    # --- properties ------------------------------------------------------------------------

    @property
    def file_hash(self) -> Sha1Hash:
        return self._state.file_hash

    @property
    def size(self) -> int:
        return self._state.size

    @property
    def name(self) -> str:
        return self._state.name

    @property
    def verified(self) -> bool:
        return self._state.verified

    @property
    def settings(self) -> dict[str, Any]:
        """priority, paused, error and sources as recorded."""
        s = self._state
        return {"priority": s.priority, "paused": s.paused, "error": s.error,
                "sources": s.sources}

    def update(self, **changes: Any) -> None:
        """Change and persist settings (priority, paused, error, sources)."""
        for key in changes:
            if key not in ("priority", "paused", "error", "sources"):
                raise TypeError(f"unknown setting {key}")
        self._state = dataclasses.replace(self._state, **changes)
        self._write_state()

    # --- data ------------------------------------------------------------------------------

    def _open(self) -> int:
        if self._fd is None:
            with self._open_lock:  # the reactor (uploads) and the sync thread (writes) share it
                if self._fd is None:
                    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
                    self._fd = os.open(self.data_path, flags, 0o600)
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._allocated = False

    def write(self, offset: int, data: bytes | memoryview) -> None:
        """Write ``data`` at ``offset`` (OSError, e.g. ENOSPC, reaches the caller)."""
        if offset < 0 or offset + len(data) > self.size:
            raise ValueError(f"write [{offset}, {offset + len(data)}) outside the file")
        fd = self._open()
        if not self._allocated:
            self._allocate(fd)
        view = memoryview(data)
        if self.hook is not None and len(view) > 1:
            half = len(view) // 2
            self._pwrite_all(fd, view[:half], offset)
            self.hook("write")
            self._pwrite_all(fd, view[half:], offset + half)
        else:
            self._pwrite_all(fd, view, offset)
        self._prefix.written(offset, view)

    def _allocate(self, fd: int) -> None:
        """Reserve the whole file's blocks before its first write, once per open file.

        A file system that allocates blocks as writes arrive does that work for every write
        and again when the data is synced; with the extents reserved up front a GiB is
        written with about a quarter less CPU (docs/transfer.md, item 24).  The data file
        then has its full size at once, the unwritten parts reading as zeros (only DONE
        chunks are ever read back as data).  Best effort: where the space is missing or the
        file system cannot reserve, writes go on as before, and a full disk is still met by
        the write that finds it."""
        self._allocated = True
        if self.size > 0:
            _reserve_blocks(fd, self.size)

    @staticmethod
    def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
        while view:
            n = os.pwrite(fd, view, offset)
            view, offset = view[n:], offset + n

    def read(self, offset: int, length: int) -> bytes:
        fd = self._open()
        return os.pread(fd, length, offset)

    def chunk_sha1(self, index: int) -> bytes:
        offset, length = self.chunks.chunk_range(index)
        return hashlib.sha1(self.read(offset, length)).digest()

    def file_sha1(self) -> bytes:
        """SHA-1 of the whole data file (blocking: call it off the reactor thread).  Only the
        part past the finished prefix `hash_prefix` already folded in is read."""
        return self._prefix.digest(self.read)

    def hash_prefix(self) -> None:
        """Fold the DONE chunks from the start of the file, up to the first one not DONE,
        into the running SHA-1 (blocking: the service calls it on its sync thread after each
        commit, so the final check has little left to read)."""
        done, first = self._state.done, self._done_run
        while first in done:
            first += 1
        self._done_run = first
        self._prefix.advance(self.read, first * CHUNK_SIZE)

    # --- durable progress ------------------------------------------------------------------

    def commit(self, done: Iterable[int]) -> None:
        """Record chunks ``done`` as DONE, durably: data fsynced before the state names them."""
        new = frozenset(done) - self._state.done
        if not new:
            return
        os.fdatasync(self._open())
        self._state.add_done(new)
        self._write_state()
        self.hash_prefix()

    def uncommit(self, chunks: Iterable[int]) -> None:
        """Chunks found bad: no longer DONE (persisted)."""
        bad = frozenset(chunks) & self._state.done
        if bad:
            self._state.remove_done(bad)
            self._done_run = min(self._done_run, min(bad))
            self._write_state()

    def mark_verified(self) -> None:
        """The whole file hashed right: record it before any final name is made."""
        os.fdatasync(self._open())
        self._state.add_done(range(self.chunks.count))
        self._state.verified = True
        self._write_state()

    def _write_state(self) -> None:
        hook = self.hook
        atomic_write(self.state_path,
                     json.dumps(self._state.to_json(), sort_keys=True).encode(),
                     before_replace=None if hook is None else lambda: hook("commit"))

    # --- completion ------------------------------------------------------------------------

    def finish(self, incoming: str | os.PathLike[str]) -> Path:
        """Move a verified partial into ``incoming`` under its (sanitised, de-clashed) name.

        Raises `PartialStateError` if the file was not verified, and OSError (EROFS, EACCES,
        ENOSPC...) if the incoming folder refuses it; the partial is then intact.
        """
        if not self._state.verified:
            raise PartialStateError("not verified: the final name is made only after that")
        self.close()
        incoming_path = Path(incoming)
        incoming_path.mkdir(parents=True, exist_ok=True)
        path = self._already_placed(incoming_path) or self._place(incoming_path)
        if self.hook is not None:
            self.hook("rename")
        for p in (self.data_path, self.state_path):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        fsync_dir(self.folder)
        return Path(path)

    def _already_placed(self, incoming: Path) -> str | None:
        """The final name a killed `finish` already linked, if any (same inode as ours)."""
        if not self.data_path.exists():
            return None
        for candidate in candidates(self.name):
            path = incoming / candidate
            if not os.path.lexists(path):
                return None
            if not path.is_symlink() and os.path.samefile(path, self.data_path):
                return str(path)
        return None

    def _place(self, incoming: Path) -> str:
        try:
            path = link_into(incoming, self.name, lambda p: os.link(self.data_path, p))
        except OSError as e:
            if e.errno != errno.EXDEV:
                raise
            path = self._copy_into(incoming)
        fsync_dir(incoming)
        return path

    def _copy_into(self, incoming: Path) -> str:
        tmp = incoming / f".rsproto-{self.file_hash.to_hex()}{_TMP_SUFFIX}"
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                      0o644)
        try:
            offset = 0
            while offset < self.size:
                block = self.read(offset, 4 * CHUNK_SIZE)
                self._pwrite_all(out, memoryview(block), offset)
                offset += len(block)
            os.fsync(out)
        except OSError:
            os.unlink(tmp)
            raise
        finally:
            os.close(out)
            self.close()
        try:
            return link_into(incoming, self.name, lambda p: os.link(tmp, p))
        finally:
            os.unlink(tmp)

    def remove(self) -> None:
        """Forget the download: delete the partial and its state."""
        self.close()
        for p in (self.data_path, self.state_path,
                  self.state_path.with_name(self.state_path.name + _TMP_SUFFIX)):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
