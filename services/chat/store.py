# -*- test-case-name: tests.test_chat_store -*-
"""Chat history and the offline queue, in one sqlite file per account.

History keeps every private and broadcast message we sent or received, with its plain-text
view beside the body so that search finds words, not markup.  The queue keeps private messages
for friends that are offline, in the order they were written, until they were handed to the
friend's link: RetroShare keeps its equivalent (``privateOutgoingMap``) in its config files.

Commits use WAL with ``synchronous=NORMAL``: a committed row survives the process being killed
(only a power cut can lose the last commits), and a chat flood costs no fsync per message.
History rows added with ``commit=False`` wait in memory (at most `MAX_PENDING_ROWS`) and go
to the database with the next `ChatStore.commit`.  Their ids are given here (the store is the
file's one writer), so a caller gets each message's history id at once.  The history keeps at
most ``max_rows`` rows (`MAX_HISTORY_ROWS`): each write drops the oldest beyond it.

With ``writer_thread`` (a node's store) every write runs on one thread of the store's own,
with a connection of its own: `ChatStore.commit` hands the waiting rows over and returns, so
the reactor thread never waits for sqlite's statements or the file system (a write to the WAL
can stall for milliseconds while the disk is busy).  Reads and queue changes first wait for
what was handed over; the thread joins the batches that wait (at most `MAX_WRITES_WAITING`)
into one transaction; at most as many more wait meanwhile (a further commit waits for room).
A write that fails there is raised on the next call, as `HistoryWriteError`.

Bodies and plain text go through `pqi.storage.to_stored` and come back through
``from_stored``: bytes from the wire that are not UTF-8 are kept as they came (sqlite cannot
bind such a string; one such message used to fail the writer's batch and every later call).
The plain text is NULL where it equals the body.  Friends are numbered in the ``peers`` table
(our own broadcasts are the empty name), so a row and the per-friend index hold a small
number, not 32 hex digits: the index is what most of an insert costs (docs/benchmarks.md,
"The history's share").

The layout has a version (``PRAGMA user_version``, `SCHEMA_VERSION`): a file in the first
layout (version 0: hex peers and text bodies in every row) is converted when opened, in one
transaction; a file from a newer rsproto is refused (`ChatStoreVersionError`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import queue
import sqlite3
import threading
from collections.abc import Sequence
from typing import Final, TypeAlias

from pqi.storage import from_stored, private_database, to_stored
from pqi.wire.fields import SslId

__all__ = ["ChatStore", "ChatStoreVersionError", "HistoryEntry", "HistoryWriteError",
           "QueuedMessage", "CHAT_FILE", "MAX_HISTORY_ROWS", "MAX_PAGE", "MAX_PENDING_ROWS",
           "MAX_WRITES_WAITING", "SCHEMA_VERSION", "WRITER_CLOSE_TIMEOUT"]

#: The store's file in the account directory.
CHAT_FILE: Final = "chat.sqlite"
#: The layout this code writes (``PRAGMA user_version``); older ones are converted on open.
SCHEMA_VERSION: Final = 1
#: Largest page `ChatStore.history` and `ChatStore.search` return.
MAX_PAGE: Final = 1000
#: History rows that wait in memory for the next commit; one more writes them at once.
MAX_PENDING_ROWS: Final = 1000
#: History rows a store keeps by default (``max_rows``); the oldest go beyond it.
MAX_HISTORY_ROWS: Final = 1_000_000
#: Batches waiting for the writer thread (and most it joins in one transaction); a further
#: one waits for room.
MAX_WRITES_WAITING: Final = 64
#: Longest wait (seconds) for the writer thread to finish its last batches on `ChatStore.close`.
WRITER_CLOSE_TIMEOUT: Final = 30.0

_INSERT_HISTORY: Final = ("INSERT INTO history (id, peer, incoming, public, send_time, recv_time,"
                          " body, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_PEER: Final = "INSERT INTO peers (key, ssl) VALUES (?, ?)"
_PRUNE: Final = "DELETE FROM history WHERE id <= ?"
_SELECT_HISTORY: Final = ("SELECT h.id, p.ssl, h.incoming, h.public, h.send_time, h.recv_time,"
                          " h.body, h.text FROM history h JOIN peers p ON p.key = h.peer")
_PEER_IS: Final = "h.peer = (SELECT key FROM peers WHERE ssl = ?)"

#: Text as `pqi.storage.to_stored` gives it to sqlite.
_Stored: TypeAlias = str | bytes
#: One write: statements run with ``executemany`` in one transaction.
_Statements: TypeAlias = Sequence[tuple[str, Sequence[tuple[object, ...]]]]

#: Peer name of broadcast messages we sent (they have no single peer).
_BROADCAST = ""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS peers (
    key INTEGER PRIMARY KEY,
    ssl TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    peer INTEGER NOT NULL,
    incoming INTEGER NOT NULL,
    public INTEGER NOT NULL,
    send_time INTEGER NOT NULL,
    recv_time REAL NOT NULL,
    body TEXT NOT NULL,
    text TEXT
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

#: Version 0 to 1, in one transaction (``{seq}``: the old history's AUTOINCREMENT mark, kept
#: so that no id is ever given twice).
_MIGRATE_0_TO_1 = """
BEGIN IMMEDIATE;
CREATE TABLE peers (key INTEGER PRIMARY KEY, ssl TEXT NOT NULL UNIQUE);
INSERT INTO peers (ssl) SELECT DISTINCT peer FROM history ORDER BY peer;
DROP INDEX IF EXISTS history_peer;
ALTER TABLE history RENAME TO history_v0;
DROP INDEX IF EXISTS queue_peer;
ALTER TABLE queue RENAME TO queue_v0;
{schema}
INSERT INTO history (id, peer, incoming, public, send_time, recv_time, body, text)
SELECT h.id, p.key, h.incoming, h.public, h.send_time, h.recv_time, h.body,
       CASE WHEN h.text = h.body THEN NULL ELSE h.text END
FROM history_v0 h JOIN peers p ON p.ssl = h.peer ORDER BY h.id;
INSERT INTO queue (id, peer, flags, send_time, body)
SELECT id, peer, flags, send_time, body FROM queue_v0 ORDER BY id;
DROP TABLE history_v0;
DROP TABLE queue_v0;
UPDATE sqlite_sequence SET seq = max(seq, {seq}) WHERE name = 'history';
INSERT INTO sqlite_sequence (name, seq) SELECT 'history', {seq}
    WHERE {seq} > 0 AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'history');
PRAGMA user_version = 1;
COMMIT;
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


class ChatStoreVersionError(sqlite3.DatabaseError):
    """The file has a layout newer than this code knows (written by a newer rsproto).  A
    database error, so `rsnode` reports it in one line as it does any unusable database."""


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

    def __init__(self, path: str | os.PathLike[str], *, writer_thread: bool = False,
                 max_rows: int = MAX_HISTORY_ROWS) -> None:
        self.path = os.fspath(path)
        self.max_rows = max_rows
        self.db = sqlite3.connect(private_database(self.path))
        try:
            self._open()
        except BaseException:
            self.db.close()
            raise
        #: History rows not yet written (``commit=False``), with the ids they will have, and
        #: the peers they are the first rows of.
        self._rows: list[tuple[int, int, int, int, int, float, _Stored, _Stored | None]] = []
        self._new_peers: list[tuple[int, str]] = []
        row = self.db.execute("SELECT MAX(id) FROM history").fetchone()
        seq = self.db.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'history'").fetchone()
        #: The id the next history row gets (AUTOINCREMENT never reuses an id).
        self._next_id = max(int(row[0] or 0), int(seq[0]) if seq else 0) + 1
        #: Rows up to this id are gone (each write that passes ``max_rows`` drops more).
        self._pruned = 0
        self._prune_on_open()
        #: Each peer's number in the ``peers`` table (None: our broadcasts).
        self._keys: dict[SslId | None, int] = {
            (SslId.from_hex(ssl) if ssl != _BROADCAST else None): key
            for key, ssl in self.db.execute("SELECT key, ssl FROM peers")}
        self._next_key = max(self._keys.values(), default=0) + 1
        #: Every write goes through it, when the store has a writer thread (a file's store:
        #: an in-memory or temporary database is the one connection's own).
        self._writer = (_Writer(self.path) if writer_thread and self.path not in ("", ":memory:")
                        else None)

    def _open(self) -> None:
        """Set the journal up and bring the layout to `SCHEMA_VERSION`."""
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise ChatStoreVersionError(
                f"chat store {self.path} has layout {version}; this rsproto reads up to "
                f"{SCHEMA_VERSION} (it was written by a newer version)")
        old = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'history'").fetchone()
        if version == 0 and old is not None:
            seq = self.db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'history'").fetchone()
            try:
                self.db.executescript(_MIGRATE_0_TO_1.format(
                    schema=_SCHEMA, seq=int(seq[0]) if seq else 0))
            except BaseException:
                self.db.rollback()
                raise
        self.db.executescript(_SCHEMA)
        self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self.db.commit()

    def _prune_on_open(self) -> None:
        """Keep ``max_rows`` (the bound may have been lowered) and only the peers still named."""
        self._pruned = max(0, self._next_id - 1 - self.max_rows)
        with self.db:
            if self._pruned:
                self.db.execute(_PRUNE, (self._pruned,))
            self.db.execute("DELETE FROM peers WHERE NOT EXISTS"
                            " (SELECT 1 FROM history WHERE history.peer = peers.key)")

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
        return len(self._rows)

    # --- history ---------------------------------------------------------------------------

    def add(self, peer: SslId | None, *, incoming: bool, public: bool, send_time: int,
            recv_time: float, body: str, text: str, commit: bool = True) -> int:
        """Record a message; returns its history id (ids grow with arrival order).

        ``commit=False`` leaves the row to the next `commit` (or queue change, or `close`):
        a flood then costs one commit per batch instead of one per message.  With a writer
        thread, committing means handing over (the next read waits for it).  A receive time
        that is not a finite number raises `ValueError` here, not in the batch it would
        spoil."""
        if not math.isfinite(recv_time):
            raise ValueError(f"receive time {recv_time!r} is not a finite number")
        history_id = self._next_id
        self._next_id += 1
        key = self._keys.get(peer)
        if key is None:
            key = self._keys[peer] = self._next_key
            self._next_key += 1
            self._new_peers.append((key, peer.to_hex() if peer is not None else _BROADCAST))
        self._rows.append((history_id, key, int(incoming), int(public), send_time, recv_time,
                           to_stored(body), None if text == body else to_stored(text)))
        if commit or len(self._rows) >= MAX_PENDING_ROWS:
            self.commit()
        return history_id

    def _batch(self) -> list[tuple[str, Sequence[tuple[object, ...]]]]:
        """The waiting rows as statements (new peers first, the oldest rows beyond
        ``max_rows`` dropped after), taken out of memory."""
        if not self._rows:
            return []
        statements: list[tuple[str, Sequence[tuple[object, ...]]]] = [
            (_INSERT_PEER, self._new_peers), (_INSERT_HISTORY, self._rows)]
        self._rows, self._new_peers = [], []
        floor = self._next_id - 1 - self.max_rows
        if floor > self._pruned:
            self._pruned = floor
            statements.append((_PRUNE, [(floor,)]))
        return statements

    def commit(self) -> None:
        """Write the waiting history rows and commit (with a writer thread: hand them over)."""
        if self._writer is not None:
            if self._rows:
                self._writer.submit(self._batch(), wait=False)
            return
        self._write_pending()
        self.db.commit()

    def _write_pending(self) -> None:
        """Before any read: hand the waiting rows to sqlite (in the open transaction), or with
        a writer thread, wait until it committed everything (rows waiting included)."""
        if self._writer is not None:
            self.commit()
            self._writer.sync()
            return
        for sql, rows in self._batch():
            self.db.executemany(sql, rows)

    def _write(self, statements: _Statements) -> None:
        """Run a queue change and commit it, with the history rows waiting before it."""
        if self._writer is not None:
            self._writer.submit([*self._batch(), *statements], wait=True)
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
            where.append(_PEER_IS)
            args.append(peer.to_hex())
        if before is not None:
            where.append("h.id < ?")
            args.append(before)
        if after is not None:
            where.append("h.id > ?")
            args.append(after)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        order = "ASC" if after is not None else "DESC"
        rows = self.db.execute(f"{_SELECT_HISTORY} {clause} ORDER BY h.id {order} LIMIT ?",
                               (*args, limit)).fetchall()
        entries = [self._entry(r) for r in rows]
        return entries if after is not None else entries[::-1]

    def search(self, words: str, peer: SslId | None = None, *,
               limit: int = 50) -> list[HistoryEntry]:
        """Messages whose plain text contains ``words`` (case-insensitive for ASCII), newest
        last."""
        self._write_pending()
        limit = max(1, min(limit, MAX_PAGE))
        sql = (f"{_SELECT_HISTORY} WHERE CAST(coalesce(h.text, h.body) AS TEXT)"
               " LIKE CAST(? AS TEXT) ESCAPE '\\'")
        args: list[object] = [to_stored(f"%{_escape_like(words)}%")]
        if peer is not None:
            sql += f" AND {_PEER_IS}"
            args.append(peer.to_hex())
        rows = self.db.execute(sql + " ORDER BY h.id DESC LIMIT ?", (*args, limit)).fetchall()
        return [self._entry(r) for r in rows][::-1]

    def last_id(self) -> int:
        self._write_pending()
        row = self.db.execute("SELECT MAX(id) FROM history").fetchone()
        return int(row[0] or 0)

    @staticmethod
    def _entry(row: tuple) -> HistoryEntry:
        peer = SslId.from_hex(row[1]) if row[1] != _BROADCAST else None
        body = from_stored(row[6])
        return HistoryEntry(int(row[0]), peer, bool(row[2]), bool(row[3]), int(row[4]),
                            float(row[5]), body, body if row[7] is None else from_stored(row[7]))

    # --- offline queue -----------------------------------------------------------------------

    def enqueue(self, peer: SslId, pieces: list[tuple[int, int, str]]) -> None:
        """Keep message items ``(flags, send_time, body)`` until ``peer`` connects, in order
        (committed before returning, with any history rows waiting)."""
        self._write([("INSERT INTO queue (peer, flags, send_time, body) VALUES (?, ?, ?, ?)",
                      [(peer.to_hex(), f, t, to_stored(b))
                       for f, t, b in pieces])])

    def queued(self, peer: SslId | None = None, limit: int = MAX_PAGE) -> list[QueuedMessage]:
        """Waiting messages in the order they were written (of one friend, or all)."""
        if peer is None:
            rows = self.db.execute("SELECT id, peer, flags, send_time, body FROM queue "
                                   "ORDER BY id LIMIT ?", (limit,)).fetchall()
        else:
            rows = self.db.execute("SELECT id, peer, flags, send_time, body FROM queue "
                                   "WHERE peer = ? ORDER BY id LIMIT ?",
                                   (peer.to_hex(), limit)).fetchall()
        return [QueuedMessage(int(r[0]), SslId.from_hex(r[1]), int(r[2]), int(r[3]),
                              from_stored(r[4]))
                for r in rows]

    def has_queued(self, peer: SslId) -> bool:
        return self.db.execute("SELECT 1 FROM queue WHERE peer = ? LIMIT 1",
                               (peer.to_hex(),)).fetchone() is not None

    def dequeue(self, queue_ids: list[int]) -> None:
        """Those items were handed to the friend's link (committed with any history rows
        waiting)."""
        self._write([("DELETE FROM queue WHERE id = ?", [(i,) for i in queue_ids])])
