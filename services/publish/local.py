# -*- test-case-name: tests.test_publish_service -*-
"""What a node keeps about channels, forums and boards beside what travels.

In the service's GXS sqlite file (`services.gxs.store.GxsStore`), next to the groups and
messages: which messages we read (RetroShare's ``GXS_MSG_STATUS_GUI_UNREAD`` cleared),
per-group settings (a channel's auto-download), and the files we attached to our channel
posts (path, hash, size), so they are served again after a restart.  Every write is one
sqlite transaction.  Bounds: read marks exist only for stored messages (the store bounds
those); `MAX_SETTINGS` settings; `MAX_SHARED_FILES` attached files.
"""

from __future__ import annotations

from typing import Final

from pqi.wire.fields import GxsId, GxsMessageId, Sha1Hash
from services.gxs.store import GxsStore, StoreFullError

__all__ = ["LocalState", "MAX_SETTINGS", "MAX_SHARED_FILES"]

#: Most per-group settings kept.
MAX_SETTINGS: Final = 10_000
#: Most files of our own posts we serve.
MAX_SHARED_FILES: Final = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS msg_read (msg_id BLOB PRIMARY KEY);
CREATE TABLE IF NOT EXISTS grp_settings (
    grp_id BLOB, name TEXT, value INTEGER NOT NULL, PRIMARY KEY (grp_id, name));
CREATE TABLE IF NOT EXISTS shared_files (
    hash BLOB PRIMARY KEY, path TEXT NOT NULL, size INTEGER NOT NULL, grp_id BLOB);
"""


class LocalState:
    """Read marks, group settings and our attached files, in ``store``'s database."""

    def __init__(self, store: GxsStore) -> None:
        self.db = store.db
        self.store = store
        self.db.executescript(_SCHEMA)

    def set_read(self, msg_id: GxsMessageId, read: bool) -> None:
        if not self.store.has_message(msg_id):
            raise KeyError(f"no message {msg_id}")
        with self.db:
            if read:
                self.db.execute("INSERT OR IGNORE INTO msg_read VALUES (?)", (bytes(msg_id),))
            else:
                self.db.execute("DELETE FROM msg_read WHERE msg_id=?", (bytes(msg_id),))

    def is_read(self, msg_id: GxsMessageId) -> bool:
        return self.db.execute("SELECT 1 FROM msg_read WHERE msg_id=?",
                               (bytes(msg_id),)).fetchone() is not None

    def setting(self, grp_id: GxsId, name: str, default: int) -> int:
        row = self.db.execute("SELECT value FROM grp_settings WHERE grp_id=? AND name=?",
                              (bytes(grp_id), name)).fetchone()
        return default if row is None else int(row[0])

    def set_setting(self, grp_id: GxsId, name: str, value: int) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            (count,) = self.db.execute("SELECT COUNT(*) FROM grp_settings").fetchone()
            if count >= MAX_SETTINGS and self.db.execute(
                    "SELECT 1 FROM grp_settings WHERE grp_id=? AND name=?",
                    (bytes(grp_id), name)).fetchone() is None:
                raise StoreFullError(f"MAX_SETTINGS ({MAX_SETTINGS}) settings kept")
            self.db.execute("INSERT OR REPLACE INTO grp_settings VALUES (?,?,?)",
                            (bytes(grp_id), name, int(value)))

    def add_shared_file(self, file_hash: Sha1Hash, path: str, size: int, grp_id: GxsId) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            (count,) = self.db.execute("SELECT COUNT(*) FROM shared_files").fetchone()
            if count >= MAX_SHARED_FILES and self.db.execute(
                    "SELECT 1 FROM shared_files WHERE hash=?", (bytes(file_hash),)
            ).fetchone() is None:
                raise StoreFullError(f"MAX_SHARED_FILES ({MAX_SHARED_FILES}) files served")
            self.db.execute("INSERT OR REPLACE INTO shared_files VALUES (?,?,?,?)",
                            (bytes(file_hash), path, size, bytes(grp_id)))

    def shared_files(self) -> list[tuple[Sha1Hash, str, int]]:
        """(hash, path, size) of every file attached to one of our posts."""
        return [(Sha1Hash(r[0]), r[1], r[2]) for r in self.db.execute(
            "SELECT hash, path, size FROM shared_files ORDER BY hash")]
