# -*- test-case-name: tests.test_chat_store -*-
"""Chat history and the offline queue, in one sqlite file per account.

History keeps every private and broadcast message we sent or received, with its plain-text
view beside the body so that search finds words, not markup.  The queue keeps private messages
for friends that are offline, in the order they were written, until they were handed to the
friend's link: RetroShare keeps its equivalent (``privateOutgoingMap``) in its config files.

Commits use WAL with ``synchronous=NORMAL``: a committed row survives the process being killed
(only a power cut can lose the last commits), and a chat flood costs no fsync per message.
History rows added with ``commit=False`` wait in memory (at most `MAX_PENDING_ROWS`) and go
to the database in one ``executemany`` with the next `ChatStore.commit`: a flood's batch costs
one statement, not one per message.  Their ids are given here (the store is the file's one
writer), so a caller gets each message's history id at once.

With ``writer_thread`` (a node's store) every write runs on one thread of the store's own,
with a connection of its own: `ChatStore.commit` hands the waiting rows over and returns, so
the reactor thread never waits for sqlite's statements or the file system (a write to the WAL
can stall for milliseconds while the disk is busy; sqlite releases the GIL meanwhile).  Reads
and queue changes first wait for what was handed over; the thread joins the batches that
wait (at most `MAX_WRITES_WAITING`) into one transaction; at most as many more wait meanwhile
(a further commit waits for room).  A write that fails there is raised on the next call, as
`HistoryWriteError`.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import sqlite3
import threading
from collections.abc import Sequence
from typing import Final, TypeAlias

from pqi.storage import private_database
from pqi.wire.fields import SslId

__all__ = ["ChatStore", "HistoryEntry", "HistoryWriteError", "QueuedMessage", "CHAT_FILE",
           "MAX_PAGE", "MAX_PENDING_ROWS", "MAX_WRITES_WAITING", "WRITER_CLOSE_TIMEOUT"]

#: The store's file in the account directory.
CHAT_FILE: Final = "chat.sqlite"
#: Largest page `ChatStore.history` and `ChatStore.search` return.
MAX_PAGE: Final = 1000
#: History rows that wait in memory for the next commit; one more writes them at once.
MAX_PENDING_ROWS: Final = 1000
#: Batches waiting for the writer thread (and most it joins in one transaction); a further
#: one waits for room.
MAX_WRITES_WAITING: Final = 64
#: Longest wait (seconds) for the writer thread to finish its last batches on `ChatStore.close`.
WRITER_CLOSE_TIMEOUT: Final = 30.0

_INSERT_HISTORY: Final = ("INSERT INTO history (id, peer, incoming, public, send_time, recv_time,"
                          " body, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")

#: One write: statements run with ``executemany`` in one transaction.
_Statements: TypeAlias = Sequence[tuple[str, Sequence[tuple[object, ...]]]]

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


class HistoryWriteError(Exception):
    """The writer thread could not write a batch (the disk is full, the file went bad...)."""


class _Writer:
    """The thread that owns the store's writing connection (see the module docstring)."""

    def __init__(self, path: str) -> None:
        self.path = path
        #: A batch of statements and the event set once it is written (None: stop).
        self._jobs: queue.Queue[tuple[_Statements, threading.Event | None] | None] = \
            queue.Queue(maxsize=MAX_WRITES_WAITING)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="rsproto-chat-store",
                                        daemon=True)
        self._thread.start()

    def submit(self, statements: _Statements, *, wait: bool) -> None:
        """Hand a batch over (waiting for room); with ``wait``, until it is committed."""
        self.check()
        done = threading.Event() if wait else None
        self._jobs.put((statements, done))
        if done is not None:
            done.wait()
            self.check()

    def sync(self) -> None:
        """Wait until every batch handed over is committed."""
        self.submit((), wait=True)

    def check(self) -> None:
        if self.error is not None:
            raise HistoryWriteError(f"chat store {self.path}: {self.error}") from self.error

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(WRITER_CLOSE_TIMEOUT)
        self.check()

    def _run(self) -> None:
        db = sqlite3.connect(self.path)
        db.execute("PRAGMA synchronous=NORMAL")
        try:
            stop = False
            while not stop:
                jobs = [self._jobs.get()]
                while len(jobs) < MAX_WRITES_WAITING:
                    try:
                        jobs.append(self._jobs.get_nowait())
                    except queue.Empty:
                        break
                try:
                    for job in jobs:
                        if job is None:
                            stop = True
                            break
                        if self.error is None:
                            for sql, rows in job[0]:
                                db.executemany(sql, rows)
                    db.commit()
                except Exception as e:  # noqa: BLE001  (raised on the reactor thread)
                    db.rollback()
                    self.error = e
                for job in jobs:
                    if job is not None and job[1] is not None:
                        job[1].set()
        finally:
            db.close()


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class ChatStore:
    """History (paged per friend, searchable) and the persistent offline queue."""

    def __init__(self, path: str | os.PathLike[str], *, writer_thread: bool = False) -> None:
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
        #: Every write goes through it, when the store has a writer thread (a file's store:
        #: an in-memory or temporary database is the one connection's own).
        self._writer = (_Writer(self.path) if writer_thread and self.path not in ("", ":memory:")
                        else None)

    def close(self) -> None:
        try:
            self.commit()
            if self._writer is not None:
                writer, self._writer = self._writer, None
                writer.close()
        finally:
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
        a flood then costs one commit per batch instead of one per message.  With a writer
        thread, committing means handing over (the next read waits for it)."""
        history_id = self._next_id
        self._next_id += 1
        self._pending.append((history_id, peer.to_hex() if peer is not None else _BROADCAST,
                              int(incoming), int(public), send_time, recv_time, body, text))
        if commit or len(self._pending) >= MAX_PENDING_ROWS:
            self.commit()
        return history_id

    def commit(self) -> None:
        """Write the waiting history rows and commit (with a writer thread: hand them over)."""
        if self._writer is not None:
            if self._pending:
                rows, self._pending = self._pending, []
                self._writer.submit([(_INSERT_HISTORY, rows)], wait=False)
            return
        self._write_pending()
        self.db.commit()

    def _write_pending(self) -> None:
        """Before any read: hand the waiting rows to sqlite (in the open transaction), or with
        a writer thread, wait until it committed everything (rows waiting included)."""
        if self._writer is not None:
            self.commit()
            self._writer.sync()
        elif self._pending:
            rows, self._pending = self._pending, []
            self.db.executemany(_INSERT_HISTORY, rows)

    def _write(self, statements: _Statements) -> None:
        """Run a queue change and commit it, with the history rows waiting before it."""
        if self._writer is not None:
            rows, self._pending = self._pending, []
            self._writer.submit([(_INSERT_HISTORY, rows), *statements] if rows
                                else statements, wait=True)
            return
        self._write_pending()
        with self.db:
            for sql, rows in statements:
                self.db.executemany(sql, rows)

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
        self._write([("INSERT INTO queue (peer, flags, send_time, body) VALUES (?, ?, ?, ?)",
                      [(peer.to_hex(), f, t, b) for f, t, b in pieces])])

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
        self._write([("DELETE FROM queue WHERE id = ?", [(i,) for i in queue_ids])])
