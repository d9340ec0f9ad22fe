# -*- test-case-name: tests.test_filelists -*-
"""Friends' file lists kept across restarts, in sqlite.

Each synced directory of each friend is stored as the directory content it came in (the
0x0019 format) with its parent's hash.  On load the trees are rebuilt from the root down; the
root is marked stale, so the first sync after a restart is one request per friend, answered
"up to date" when nothing changed.  Rows that do not decode or do not hang from the root are
skipped.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Final

from pqi.storage import private_database
from pqi.wire.errors import DecodeError
from pqi.wire.fields import Sha1Hash, SslId

from .dirlist import DirContent, decode_dir, encode_dir
from .remote import MAX_REMOTE_ENTRIES, RemoteTree, TreeFullError

__all__ = ["RemoteTreeStore", "FRIEND_LISTS_FILE"]

#: The friends' file lists' sqlite file in the account directory.
FRIEND_LISTS_FILE: Final = "friend_lists.sqlite"


class RemoteTreeStore:
    """Saves and loads `RemoteTree` objects (one transaction per friend)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._db = sqlite3.connect(private_database(path))
        with self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS dirs (friend BLOB NOT NULL, hash BLOB NOT NULL,"
                " content BLOB NOT NULL, PRIMARY KEY (friend, hash))")

    def save(self, tree: RemoteTree) -> None:
        """Replace what is stored of ``tree``'s friend with the synced part of ``tree``."""
        rows = [(bytes(tree.ssl_id), bytes(d.hash), encode_dir(DirContent(
                    d.name, d.recurs_modif_ts, d.modif_ts, tuple(d.subdirs), d.files)))
                for d in tree.dirs.values() if d.synced]
        with self._db:
            self._db.execute("DELETE FROM dirs WHERE friend = ?", (bytes(tree.ssl_id),))
            self._db.executemany("INSERT INTO dirs VALUES (?, ?, ?)", rows)

    def load(self, max_entries: int = MAX_REMOTE_ENTRIES) -> dict[SslId, RemoteTree]:
        """Every stored friend's tree, root stale, the rest as last synced."""
        contents: dict[bytes, dict[bytes, bytes]] = {}
        for friend, h, content in self._db.execute("SELECT friend, hash, content FROM dirs"):
            if len(friend) == SslId.LENGTH and len(h) == Sha1Hash.LENGTH:
                contents.setdefault(friend, {})[h] = content
        trees = {}
        for friend, dirs in contents.items():
            tree = RemoteTree(SslId(friend), max_entries)
            todo = [tree.root.hash]
            while todo:
                h = todo.pop()
                raw = dirs.get(bytes(h))
                if raw is None or h not in tree.dirs:
                    continue
                try:
                    subdirs = tree.apply(h, decode_dir(raw), 1.0)
                except (DecodeError, TreeFullError):
                    continue
                todo.extend(subdirs)
            for d in tree.dirs.values():
                if d.synced and d is not tree.root:
                    tree.up_to_date(d.hash, 1.0)
            tree.root.update_time = 0.0
            tree.mark_stale(tree.root.hash)
            trees[tree.ssl_id] = tree
        return trees

    def forget(self, ssl_id: SslId) -> None:
        with self._db:
            self._db.execute("DELETE FROM dirs WHERE friend = ?", (bytes(ssl_id),))

    def close(self) -> None:
        self._db.close()
