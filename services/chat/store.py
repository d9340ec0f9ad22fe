# -*- test-case-name: tests.test_chat_store -*-
"""Chat history and the offline queue, in one sqlite file per account.

History keeps every private and broadcast message we sent or received, with its plain-text
view beside the body so that search finds words, not markup.  The queue keeps private messages
for friends that are offline, in the order they were written, until they were handed to the
friend's link: RetroShare keeps its equivalent (``privateOutgoingMap``) in its config files.

Commits use WAL with ``synchronous=NORMAL``: a committed row survives the process being killed
(only a power cut can lose the last commits), and a chat flood costs no fsync per message.
History rows added with ``commit=False`` wait in memory (at most `MAX_PENDING_ROWS`) and go
to the database in one ``executemany`` with the next `ChatStore.commit`: a flood's turn costs
one statement, not one per message.  Their ids are given here (the store is the file's one
writer), so a caller gets each message's history id at once.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from typing import Final

from pqi.storage import private_database
from pqi.wire.fields import SslId

__all__ = ["ChatStore", "HistoryEntry", "QueuedMessage", "CHAT_FILE", "MAX_PAGE",
           "MAX_PENDING_ROWS"]

#: The store's file in the account directory.
CHAT_FILE: Final = "chat.sqlite"
#: Largest page `ChatStore.history` and `ChatStore.search` return.
MAX_PAGE: Final = 1000
#: History rows that wait in memory for the next commit; one more writes them at once.
MAX_PENDING_ROWS: Final = 1000

#: Peer column value of broadcast messages we sent (they have no single peer).
_BROADCAST = ""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    peer TEXT NOT NULL,
    incoming INTEGER NOT NULL,
    public INTEGER NOT NULL,
    send_time INTEGER NOT NULL,
    recv_time REAL NOT NULL,
    body TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_peer ON history(peer, id);
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    peer TEXT NOT NULL,
    flags INTEGER NOT NULL,
    send_time INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_peer ON queue(peer, id);
"""


@dataclasses.dataclass(frozen=True)
class HistoryEntry:
    """One message as the history holds it (``peer`` is None for our own broadcasts)."""

    id: int
    peer: SslId | None
    incoming: bool
    public: bool
    send_time: int
    recv_time: float
    body: str
    text: str


@dataclasses.dataclass(frozen=True)
class QueuedMessage:
    """A private message item waiting for its friend to connect (a piece of a long message
    keeps its PARTIAL_MESSAGE flag, so the pieces go out exactly as they were cut)."""

    id: int
    peer: SslId
    flags: int
    send_time: int
    body: str


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class ChatStore:
    """History (paged per friend, searchable) and the persistent offline queue."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.db = sqlite3.connect(private_database(self.path))
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self.db.commit()
        #: History rows not yet written (``commit=False``), with the ids they will have.
        self._pending: list[tuple[int, str, int, int, int, float, str, str]] = []
        row = self.db.execute("SELECT MAX(id) FROM history").fetchone()
        seq = self.db.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'history'").fetchone()
        #: The id the next history row gets (AUTOINCREMENT never reuses an id).
        self._next_id = max(int(row[0] or 0), int(seq[0]) if seq else 0) + 1

    def close(self) -> None:
        self.commit()
        self.db.close()

    @property
    def pending_rows(self) -> int:
        """History rows waiting for the next commit."""
        return len(self._pending)

    # --- history ---------------------------------------------------------------------------

    def add(self, peer: SslId | None, *, incoming: bool, public: bool, send_time: int,
            recv_time: float, body: str, text: str, commit: bool = True) -> int:
        """Record a message; returns its history id (ids grow with arrival order).

        ``commit=False`` leaves the row to the next `commit` (or queue change, or `close`):
        a flood then costs one commit per batch instead of one per message."""
        history_id = self._next_id
        self._next_id += 1
        self._pending.append((history_id, peer.to_hex() if peer is not None else _BROADCAST,
                              int(incoming), int(public), send_time, recv_time, body, text))
        if commit or len(self._pending) >= MAX_PENDING_ROWS:
            self.commit()
        return history_id

    def commit(self) -> None:
        """Write the waiting history rows and commit."""
        self._write_pending()
        self.db.commit()

    def _write_pending(self) -> None:
        """Hand the waiting rows to sqlite (in the open transaction), before any read."""
        if self._pending:
            rows, self._pending = self._pending, []
            self.db.executemany(
                "INSERT INTO history (id, peer, incoming, public, send_time, recv_time, body,"
                " text) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def history(self, peer: SslId | None = None, *, limit: int = 50,
                before: int | None = None, after: int | None = None) -> list[HistoryEntry]:
        """A page of history, oldest first: the ``limit`` newest entries older than ``before``
        (or, with ``after``, the oldest ones newer than it: how followers page forward).
        ``peer`` None means every conversation."""
        self._write_pending()
        limit = max(1, min(limit, MAX_PAGE))
        where, args = [], []
        if peer is not None:
            where.append("peer = ?")
            args.append(peer.to_hex())
        if before is not None:
            where.append("id < ?")
            args.append(before)
        if after is not None:
            where.append("id > ?")
            args.append(after)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        order = "ASC" if after is not None else "DESC"
        rows = self.db.execute(
            f"SELECT id, peer, incoming, public, send_time, recv_time, body, text FROM history "
            f"{clause} ORDER BY id {order} LIMIT ?", (*args, limit)).fetchall()
        entries = [self._entry(r) for r in rows]
        return entries if after is not None else entries[::-1]

    def search(self, words: str, peer: SslId | None = None, *,
               limit: int = 50) -> list[HistoryEntry]:
        """Messages whose plain text contains ``words`` (case-insensitive for ASCII), newest
        last."""
        self._write_pending()
        limit = max(1, min(limit, MAX_PAGE))
        sql = ("SELECT id, peer, incoming, public, send_time, recv_time, body, text FROM history"
               " WHERE text LIKE ? ESCAPE '\\'")
        args: list[object] = [f"%{_escape_like(words)}%"]
        if peer is not None:
            sql += " AND peer = ?"
            args.append(peer.to_hex())
        rows = self.db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [self._entry(r) for r in rows][::-1]

    def last_id(self) -> int:
        self._write_pending()
        row = self.db.execute("SELECT MAX(id) FROM history").fetchone()
        return int(row[0] or 0)

    @staticmethod
    def _entry(row: tuple) -> HistoryEntry:
        peer = SslId.from_hex(row[1]) if row[1] != _BROADCAST else None
        return HistoryEntry(int(row[0]), peer, bool(row[2]), bool(row[3]), int(row[4]),
                            float(row[5]), row[6], row[7])

    # --- offline queue -----------------------------------------------------------------------

    def enqueue(self, peer: SslId, pieces: list[tuple[int, int, str]]) -> None:
        """Keep message items ``(flags, send_time, body)`` until ``peer`` connects, in order
        (committed before returning, with any history rows waiting)."""
        self._write_pending()
        with self.db:
            self.db.executemany(
                "INSERT INTO queue (peer, flags, send_time, body) VALUES (?, ?, ?, ?)",
                [(peer.to_hex(), f, t, b) for f, t, b in pieces])

    def queued(self, peer: SslId | None = None, limit: int = MAX_PAGE) -> list[QueuedMessage]:
        """Waiting messages in the order they were written (of one friend, or all)."""
        if peer is None:
            rows = self.db.execute("SELECT id, peer, flags, send_time, body FROM queue "
                                   "ORDER BY id LIMIT ?", (limit,)).fetchall()
        else:
            rows = self.db.execute("SELECT id, peer, flags, send_time, body FROM queue "
                                   "WHERE peer = ? ORDER BY id LIMIT ?",
                                   (peer.to_hex(), limit)).fetchall()
        return [QueuedMessage(int(r[0]), SslId.from_hex(r[1]), int(r[2]), int(r[3]), r[4])
                for r in rows]

    def has_queued(self, peer: SslId) -> bool:
        return self.db.execute("SELECT 1 FROM queue WHERE peer = ? LIMIT 1",
                               (peer.to_hex(),)).fetchone() is not None

    def dequeue(self, queue_ids: list[int]) -> None:
        """Those items were handed to the friend's link (committed with any history rows
        waiting)."""
        self._write_pending()
        with self.db:
            self.db.executemany("DELETE FROM queue WHERE id = ?", [(i,) for i in queue_ids])
