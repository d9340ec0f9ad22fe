# -*- test-case-name: tests.test_filelists -*-
"""A friend's shared tree as far as we have synced it, browsable and searchable.

Directories are known by the hashes the friend gave them; the root is the all-zero hash.  A
directory's content arrives in a sync response and replaces what we held: subdirectories
still listed keep their content but become *stale* (asked again, with the recursive time we
hold, so an unchanged one costs an "up to date" answer), those no longer listed are dropped
with everything below.  A friend cannot make the tree loop (a subdirectory hash already used
elsewhere is ignored) nor grow without bound (``max_entries``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Final

from pqi.wire.fields import Sha1Hash, SslId

from .dirlist import DirContent, RemoteFile

__all__ = ["RemoteDir", "RemoteTree", "TreeFullError", "UnknownPathError",
           "MAX_REMOTE_ENTRIES"]

#: Most directories plus files we keep of one friend's tree.
MAX_REMOTE_ENTRIES: Final = 1_000_000


class TreeFullError(Exception):
    """The friend's tree would exceed ``max_entries``: the directory content was refused."""


class UnknownPathError(KeyError):
    """No directory with that path in the friend's tree (not shared, or not synced yet)."""


@dataclasses.dataclass
class RemoteDir:
    """One directory of a friend's tree; ``update_time`` 0 means "ask again"."""

    hash: Sha1Hash
    parent: Sha1Hash | None
    name: str = ""
    recurs_modif_ts: int = 0
    modif_ts: int = 0
    subdirs: list[Sha1Hash] = dataclasses.field(default_factory=list)
    files: tuple[RemoteFile, ...] = ()
    update_time: float = 0.0
    synced: bool = False


class RemoteTree:
    """The synced part of friend ``ssl_id``'s shared tree."""

    def __init__(self, ssl_id: SslId, max_entries: int = MAX_REMOTE_ENTRIES) -> None:
        self.ssl_id = ssl_id
        self.max_entries = max_entries
        self.root = RemoteDir(Sha1Hash.null(), None)
        self.dirs: dict[Sha1Hash, RemoteDir] = {self.root.hash: self.root}
        self._entries = 1
        self._stale: set[Sha1Hash] = {self.root.hash}
        #: Subdirectory entries ignored because they would have made the tree loop.
        self.refused_subdirs = 0

    # --- updates -----------------------------------------------------------------------------

    def apply(self, hash_: Sha1Hash, content: DirContent, now: float) -> list[Sha1Hash]:
        """Replace directory ``hash_``'s content; returns its subdirectories (all stale)."""
        d = self.dirs.get(hash_)
        if d is None:
            raise KeyError(hash_)
        old_children = set(d.subdirs)
        subdirs: list[Sha1Hash] = []
        for h in content.subdirs:
            if (h == self.root.hash or h == d.hash or h in subdirs
                    or (h in self.dirs and h not in old_children)):
                self.refused_subdirs += 1
                continue
            subdirs.append(h)
        new = [h for h in subdirs if h not in self.dirs]
        growth = len(new) + len(content.files) - len(d.files)
        gone = old_children - set(subdirs)
        growth -= sum(self._count(h) for h in gone)
        if self._entries + growth > self.max_entries:
            raise TreeFullError(f"{self.ssl_id}: tree would hold {self._entries + growth} "
                                f"entries (max {self.max_entries})")
        for h in gone:
            self._drop(h)
        for h in new:
            self.dirs[h] = RemoteDir(h, d.hash)
        self._entries += len(new) + len(content.files) - len(d.files)
        for h in subdirs:
            self.dirs[h].update_time = 0.0
        self._stale.update(subdirs)
        self._stale.discard(d.hash)
        d.name = content.name if d is not self.root else ""
        d.recurs_modif_ts = content.recurs_modif_ts
        d.modif_ts = content.modif_ts
        d.subdirs = subdirs
        d.files = content.files
        d.update_time = now
        d.synced = True
        return subdirs

    def up_to_date(self, hash_: Sha1Hash, now: float) -> None:
        """The friend said our copy of ``hash_`` is current."""
        d = self.dirs.get(hash_)
        if d is not None:
            d.update_time = now
            self._stale.discard(hash_)

    def mark_stale(self, hash_: Sha1Hash) -> None:
        """Ask for ``hash_`` again at the next sweep."""
        d = self.dirs.get(hash_)
        if d is not None:
            d.update_time = 0.0
            self._stale.add(hash_)

    def removed(self, hash_: Sha1Hash, now: float) -> None:
        """The friend says ``hash_`` is gone (or hidden from us now)."""
        d = self.dirs.get(hash_)
        if d is None:
            return
        if d is self.root:
            for h in list(d.subdirs):
                self._drop(h)
            self._entries -= len(d.files)
            d.subdirs, d.files, d.update_time, d.synced = [], (), now, True
            self._stale.discard(d.hash)
            return
        parent = self.dirs.get(d.parent) if d.parent is not None else None
        if parent is not None and hash_ in parent.subdirs:
            parent.subdirs.remove(hash_)
        self._drop(hash_)

    def _count(self, h: Sha1Hash) -> int:
        d = self.dirs.get(h)
        return 0 if d is None else 1 + len(d.files) + sum(self._count(s) for s in d.subdirs)

    def _drop(self, h: Sha1Hash) -> None:
        stack = [h]
        while stack:
            d = self.dirs.pop(stack.pop(), None)
            if d is None:
                continue
            self._stale.discard(d.hash)
            self._entries -= 1 + len(d.files)
            stack.extend(d.subdirs)

    # --- queries -------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Directories (root included) plus files held."""
        return self._entries

    def stale(self) -> list[RemoteDir]:
        """Directories to ask for (never synced, or their parent changed)."""
        return [self.dirs[h] for h in self._stale]

    def path_of(self, hash_: Sha1Hash) -> str:
        """``share/sub/dir`` path of a directory ("" for the root)."""
        parts = []
        d = self.dirs.get(hash_)
        while d is not None and d is not self.root:
            parts.append(d.name)
            d = self.dirs.get(d.parent) if d.parent is not None else None
        return "/".join(reversed(parts))

    def find(self, path: str) -> RemoteDir:
        """The directory at ``path`` (names separated by ``/``; "" is the root)."""
        d = self.root
        for part in (p for p in path.split("/") if p):
            for h in d.subdirs:
                sub = self.dirs.get(h)
                if sub is not None and sub.name == part:
                    d = sub
                    break
            else:
                raise UnknownPathError(path)
        return d

    def children(self, d: RemoteDir) -> list[RemoteDir]:
        return [self.dirs[h] for h in d.subdirs if h in self.dirs]

    def walk(self) -> Iterator[tuple[str, RemoteFile]]:
        """(path of the file's directory, file) for every file held."""
        stack: list[tuple[RemoteDir, str]] = [(self.root, "")]
        while stack:
            d, path = stack.pop()
            for f in d.files:
                yield path, f
            for sub in self.children(d):
                stack.append((sub, f"{path}/{sub.name}" if path else sub.name))

    def to_json(self, d: RemoteDir | None = None, depth: int = 64,
                hidden: Callable[[bytes], bool] | None = None) -> dict[str, object]:
        """A JSON-able tree below ``d`` (the root by default), ``depth`` levels deep, without
        the files ``hidden`` says are banned."""
        d = self.root if d is None else d
        return {
            "name": d.name, "hash": d.hash.to_hex(), "synced": d.synced,
            "recurs_modif_ts": d.recurs_modif_ts,
            "files": [{"name": f.name, "size": f.size, "hash": f.hash.to_hex(),
                       "modif_ts": f.modif_ts} for f in d.files
                      if hidden is None or not hidden(f.hash)],
            "dirs": [self.to_json(s, depth - 1, hidden) if depth > 0 else
                     {"name": s.name, "hash": s.hash.to_hex(), "synced": s.synced}
                     for s in self.children(d)],
        }
