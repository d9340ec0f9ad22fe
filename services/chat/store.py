# -*- test-case-name: tests.test_chat_store -*-
"""Chat history and the offline queue, in one sqlite file per account.

History keeps every private and broadcast message we sent or received, with its plain-text
view beside the body so that search finds words, not markup.  The queue keeps private messages
for friends that are offline, in the order they were written, until they were handed to the
friend's link: RetroShare keeps its equivalent (``privateOutgoingMap``) in its config files.

Commits use WAL with ``synchronous=NORMAL``: a committed row survives the process being killed
(only a power cut can lose the last commits), and a chat flood costs no fsync per message.
Messages added with ``commit=False`` wait in memory (at most `MAX_PENDING_ROWS`) and go
to the database with the next `ChatStore.commit`.  Their ids are given here (the store is the
file's one writer), so a caller gets each message's history id at once.  The history keeps at
most ``max_rows`` messages (`MAX_HISTORY_ROWS`): each write drops the oldest beyond it.

History is kept in blocks (`services.chat.blocks`): the messages of one friend that one
commit writes share one row, packed on the reactor thread while they arrive.  A row and an
index entry per message cost the writer about 6 µs each, with the GIL held for every row it
bound, and a flood's history writes were what delayed other friends' messages most
(docs/benchmarks.md, "Issue 21, item 3").  Reads walk the blocks newest (or oldest) first and
stop once no further block can hold an id of the page.  Search lets sqlite pick the blocks
that contain the words (ASCII letters folded, as ``LIKE`` does) and checks each message.

With ``writer_thread`` (a node's store) every write runs on one thread of the store's own,
with a connection of its own: `ChatStore.commit` hands the waiting blocks over and returns, so
the reactor thread never waits for sqlite's statements or the file system (a write to the WAL
can stall for milliseconds while the disk is busy).  Reads and queue changes first wait for
what was handed over; the thread joins the batches that wait (at most `MAX_WRITES_WAITING`)
into one transaction; at most as many more wait meanwhile (a further commit waits for room).
A write that fails there is raised on the next call, as `HistoryWriteError`.  The writer
also decides when the WAL is copied into the database: sqlite's own checkpoint, every 1000
pages, was a burst of copying and syncing in the middle of a flood (a core the reactors
wanted); the writer does it once no batch came for `CHECKPOINT_IDLE` seconds, or at once past
`MAX_WAL_BYTES` (so the WAL, and the file it is truncated back to, stays bounded).

Text goes through `pqi.storage.to_stored` and comes back through ``from_stored``: bytes from
the wire that are not UTF-8 are kept as they came (one such message used to fail the writer's
batch and every later call).  Friends are numbered in the ``peers`` table (our own broadcasts
are the empty name).  The ``marks`` table keeps the id the next message gets (no id is ever
given twice) and the id up to which messages are gone.

The layout has a version (``PRAGMA user_version``, `SCHEMA_VERSION`).  Older files are
converted when opened, one step per version, each in one transaction: version 0 (hex peers
and text bodies in every row) to 1 (numbered peers, a row per message), 1 to 2 (blocks).  A
file from a newer rsproto is refused (`ChatStoreVersionError`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Final, TypeAlias

from pqi.storage import from_stored, private_database, to_stored
from pqi.wire.fields import SslId
from services.chat.blocks import BLOCK_SPAN, BlockBuilder, Message, check, unpack

__all__ = ["ChatStore", "ChatStoreVersionError", "HistoryEntry", "HistoryWriteError",
           "QueuedMessage", "CHAT_FILE", "CHECKPOINT_IDLE", "MAX_HISTORY_ROWS", "MAX_PAGE",
           "MAX_PENDING_ROWS", "MAX_WAL_BYTES", "MAX_WRITES_WAITING", "SCHEMA_VERSION",
           "WRITER_CLOSE_TIMEOUT"]

#: The store's file in the account directory.
CHAT_FILE: Final = "chat.sqlite"
#: The layout this code writes (``PRAGMA user_version``); older ones are converted on open.
SCHEMA_VERSION: Final = 2
#: Largest page `ChatStore.history` and `ChatStore.search` return.
MAX_PAGE: Final = 1000
#: Messages that wait in memory for the next commit; one more writes them at once.  At most
#: `services.chat.blocks.BLOCK_SPAN`: the ids of one commit's blocks span no more.
MAX_PENDING_ROWS: Final = 1000
#: Messages a store keeps by default (``max_rows``); the oldest go beyond it.
MAX_HISTORY_ROWS: Final = 1_000_000
#: Batches waiting for the writer thread (and most it joins in one transaction); a further
#: one waits for room.
MAX_WRITES_WAITING: Final = 64
#: Longest wait (seconds) for the writer thread to finish its last batches on `ChatStore.close`.
WRITER_CLOSE_TIMEOUT: Final = 30.0
#: Seconds without a batch after which the writer thread copies the WAL into the database.
CHECKPOINT_IDLE: Final = 1.0
#: Bytes the WAL may hold before the writer thread copies it into the database even while
#: batches keep coming (and the size sqlite truncates the WAL file back to).
MAX_WAL_BYTES: Final = 32 * 1024 * 1024

_INSERT_BLOCK: Final = ("INSERT INTO blocks (first, last, peer, count, meta, bodies, texts)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)")
_INSERT_PEER: Final = "INSERT INTO peers (key, ssl) VALUES (?, ?)"
_SET_MARK: Final = "INSERT OR REPLACE INTO marks (name, value) VALUES (?, ?)"
#: Whole blocks at or below the floor go (a block across it stays; reads skip its old part).
_PRUNE: Final = "DELETE FROM blocks WHERE first <= ?1 AND last <= ?1"
_SELECT_BLOCKS: Final = ("SELECT b.first, b.last, b.count, b.meta, b.bodies, b.texts, p.ssl"
                         " FROM blocks b JOIN peers p ON p.key = b.peer")
_PEER_IS: Final = "b.peer = (SELECT key FROM peers WHERE ssl = ?)"
#: Blocks that may hold ``?`` (ASCII letters folded; the bytes compared, NULs included).
_MAY_HOLD: Final = ("(instr(CAST(lower(b.bodies) AS BLOB), CAST(? AS BLOB)) > 0"
                    " OR instr(CAST(lower(b.texts) AS BLOB), CAST(? AS BLOB)) > 0)")
#: The ``marks`` rows: the id the next message gets, and the id up to which messages are gone.
_NEXT_ID: Final = "next_id"
_PRUNED: Final = "pruned"

#: One write: statements run with ``executemany`` in one transaction.
_Statements: TypeAlias = Sequence[tuple[str, Sequence[tuple[object, ...]]]]

#: Peer name of broadcast messages we sent (they have no single peer).
_BROADCAST = ""
#: ASCII capitals to small letters, as sqlite's ``lower`` and ``LIKE`` fold them.
_FOLD: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS peers (
    key INTEGER PRIMARY KEY,
    ssl TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS blocks (
    first INTEGER PRIMARY KEY,
    last INTEGER NOT NULL,
    peer INTEGER NOT NULL,
    count INTEGER NOT NULL,
    meta BLOB NOT NULL,
    bodies TEXT NOT NULL,
    texts TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS blocks_peer_first ON blocks(peer, first);
CREATE INDEX IF NOT EXISTS blocks_peer_last ON blocks(peer, last);
CREATE INDEX IF NOT EXISTS blocks_last ON blocks(last);
CREATE TABLE IF NOT EXISTS marks (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
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
#: so that no id is ever given twice).  Version 1's tables as they were.
_MIGRATE_0_TO_1 = """
BEGIN IMMEDIATE;
CREATE TABLE peers (key INTEGER PRIMARY KEY, ssl TEXT NOT NULL UNIQUE);
INSERT INTO peers (ssl) SELECT DISTINCT peer FROM history ORDER BY peer;
DROP INDEX IF EXISTS history_peer;
ALTER TABLE history RENAME TO history_v0;
DROP INDEX IF EXISTS queue_peer;
ALTER TABLE queue RENAME TO queue_v0;
CREATE TABLE history (id INTEGER PRIMARY KEY AUTOINCREMENT, peer INTEGER NOT NULL,
    incoming INTEGER NOT NULL, public INTEGER NOT NULL, send_time INTEGER NOT NULL,
    recv_time REAL NOT NULL, body TEXT NOT NULL, text TEXT);
CREATE INDEX history_peer ON history(peer, id);
CREATE TABLE queue (id INTEGER PRIMARY KEY AUTOINCREMENT, peer TEXT NOT NULL,
    flags INTEGER NOT NULL, send_time INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX queue_peer ON queue(peer, id);
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
#: Rows of version 1 read per step while converting to blocks.
_MIGRATE_STEP: Final = 4096


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

    def __init__(self, path: str, *, checkpoint_idle: float, wal_bytes: int) -> None:
        self.path = path
        self.checkpoint_idle = checkpoint_idle
        self.wal_bytes = wal_bytes
        #: A batch of statements, the event set once it is written (None: no one waits) and
        #: about how many bytes it writes; None: stop.
        self._jobs: queue.Queue[tuple[_Statements, threading.Event | None, int] | None] = \
            queue.Queue(maxsize=MAX_WRITES_WAITING)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="rsproto-chat-store",
                                        daemon=True)
        self._thread.start()

    def submit(self, statements: _Statements, *, wait: bool, size: int = 0) -> None:
        """Hand a batch over (waiting for room); with ``wait``, until it is committed."""
        self.check()
        done = threading.Event() if wait else None
        self._jobs.put((statements, done, size))
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
        db.execute("PRAGMA wal_autocheckpoint=0")
        db.execute(f"PRAGMA journal_size_limit={int(self.wal_bytes)}")
        #: Bytes committed since the last whole checkpoint, and the mark that forces one.
        unsaved, force_at = 0, self.wal_bytes
        try:
            stop = False
            while not stop:
                try:
                    first = self._jobs.get(timeout=self.checkpoint_idle if unsaved else None)
                except queue.Empty:
                    unsaved = self._checkpoint(db, unsaved)
                    force_at = unsaved + self.wal_bytes
                    continue
                jobs = [first]
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
                            unsaved += job[2]
                    db.commit()
                except Exception as e:  # noqa: BLE001  (raised on the reactor thread)
                    db.rollback()
                    self.error = e
                for job in jobs:
                    if job is not None and job[1] is not None:
                        job[1].set()
                if unsaved >= force_at and not stop:
                    unsaved = self._checkpoint(db, unsaved)
                    force_at = unsaved + (self.wal_bytes if not unsaved else self.wal_bytes // 4)
        finally:
            db.close()

    def _checkpoint(self, db: sqlite3.Connection, unsaved: int) -> int:
        """Copy the WAL into the database (without waiting for readers); what is left unsaved:
        0, or ``unsaved`` when a reader kept part of it."""
        try:
            _, frames, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as e:
            self.error = e
            return unsaved
        return 0 if frames == copied else unsaved


def _rows(db: sqlite3.Connection, sql: str, params: Sequence[object]) -> Iterator[tuple]:
    """A query's rows one by one; the statement is reset however the caller stops."""
    cursor = db.execute(sql, params)
    try:
        yield from cursor
    finally:
        cursor.close()


def _block_rows(builders: dict[int, BlockBuilder]) -> tuple[list[tuple[object, ...]], int]:
    """The ``blocks`` rows of each peer's builder, and about how many bytes they hold
    (characters of text count one)."""
    rows: list[tuple[object, ...]] = []
    size = 0
    for key, builder in builders.items():
        b = builder.pack()
        rows.append((b.first, b.last, key, b.count, b.meta, b.bodies, b.texts))
        size += len(b.meta) + len(b.bodies) + len(b.texts)
    return rows, size


def _message_id(found: tuple[Message, str]) -> int:
    return found[0][0]


def _entry(m: Message, ssl: str) -> HistoryEntry:
    return HistoryEntry(m[0], SslId.from_hex(ssl) if ssl != _BROADCAST else None, *m[1:])


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    """Version 1 (a row per message) to 2 (blocks), in one transaction.  Messages are cut
    into blocks of one peer within each run of `BLOCK_SPAN` ids.  Times a block cannot hold
    (a receive time that is not a number, which version 0 took; a send time beyond 32 bits)
    become 0."""
    seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'history'").fetchone()
    top = db.execute("SELECT MAX(id) FROM history").fetchone()
    next_id = max(int(seq[0]) if seq else 0, int(top[0] or 0)) + 1
    isolation, db.isolation_level = db.isolation_level, None
    try:
        db.execute("BEGIN IMMEDIATE")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        window, builders = -1, dict[int, BlockBuilder]()

        def flush() -> None:
            db.executemany(_INSERT_BLOCK, _block_rows(builders)[0])
            builders.clear()

        cursor = db.execute("SELECT id, peer, incoming, public, send_time, recv_time, body,"
                            " text FROM history ORDER BY id")
        while rows := cursor.fetchmany(_MIGRATE_STEP):
            for hid, key, incoming, public, send_time, recv_time, body, text in rows:
                if (hid - 1) // BLOCK_SPAN != window:
                    flush()
                    window = (hid - 1) // BLOCK_SPAN
                if not math.isfinite(recv_time):
                    recv_time = 0.0
                if not 0 <= send_time <= 0xFFFFFFFF:
                    send_time = 0
                builder = builders.get(key)
                if builder is None:
                    builder = builders[key] = BlockBuilder(hid)
                plain = from_stored(body)
                builder.add(hid, bool(incoming), bool(public), send_time, float(recv_time),
                            plain, plain if text is None else from_stored(text))
        flush()
        db.execute("DROP TABLE history")
        db.execute(_SET_MARK, (_NEXT_ID, next_id))
        db.execute("PRAGMA user_version = 2")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    finally:
        db.isolation_level = isolation


class ChatStore:
    """History (paged per friend, searchable) and the persistent offline queue."""

    def __init__(self, path: str | os.PathLike[str], *, writer_thread: bool = False,
                 max_rows: int = MAX_HISTORY_ROWS, checkpoint_idle: float = CHECKPOINT_IDLE,
                 wal_bytes: int = MAX_WAL_BYTES) -> None:
        self.path = os.fspath(path)
        self.max_rows = max_rows
        self.db = sqlite3.connect(private_database(self.path))
        try:
            self._open()
        except BaseException:
            self.db.close()
            raise
        #: Messages not yet written (``commit=False``), in one block per peer, and the peers
        #: they are the first messages of.
        self._pending: dict[int, BlockBuilder] = {}
        self._pending_count = 0
        self._new_peers: list[tuple[int, str]] = []
        marks = dict(self.db.execute("SELECT name, value FROM marks").fetchall())
        row = self.db.execute("SELECT MAX(last) FROM blocks").fetchone()
        #: The id the next message gets (none is given twice, even after pruning).
        self._next_id = max(int(row[0] or 0) + 1, int(marks.get(_NEXT_ID, 1)))
        #: Messages up to this id are gone (each write that passes ``max_rows`` drops more).
        self._pruned = int(marks.get(_PRUNED, 0))
        self._prune_on_open()
        #: Each peer's number in the ``peers`` table (None: our broadcasts).
        self._keys: dict[SslId | None, int] = {
            (SslId.from_hex(ssl) if ssl != _BROADCAST else None): key
            for key, ssl in self.db.execute("SELECT key, ssl FROM peers")}
        self._next_key = max(self._keys.values(), default=0) + 1
        #: Every write goes through it, when the store has a writer thread (a file's store:
        #: an in-memory or temporary database is the one connection's own).
        self._writer = (_Writer(self.path, checkpoint_idle=checkpoint_idle, wal_bytes=wal_bytes)
                        if writer_thread and self.path not in ("", ":memory:") else None)

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
                self.db.executescript(_MIGRATE_0_TO_1.format(seq=int(seq[0]) if seq else 0))
            except BaseException:
                self.db.rollback()
                raise
            version = 1
        if version == 1:
            _migrate_1_to_2(self.db)
        self.db.executescript(_SCHEMA)
        self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self.db.commit()

    def _prune_on_open(self) -> None:
        """Keep ``max_rows`` (the bound may have been lowered) and only the peers still named."""
        floor = max(self._pruned, self._next_id - 1 - self.max_rows)
        with self.db:
            if floor > self._pruned:
                self.db.execute(_PRUNE, (floor,))
                self.db.execute(_SET_MARK, (_PRUNED, floor))
            self.db.execute("DELETE FROM peers WHERE NOT EXISTS"
                            " (SELECT 1 FROM blocks WHERE blocks.peer = peers.key)")
        self._pruned = floor

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
        """Messages waiting for the next commit."""
        return self._pending_count

    # --- history ---------------------------------------------------------------------------

    def add(self, peer: SslId | None, *, incoming: bool, public: bool, send_time: int,
            recv_time: float, body: str, text: str, commit: bool = True) -> int:
        """Record a message; returns its history id (ids grow with arrival order).

        ``commit=False`` leaves the message to the next `commit` (or queue change, or
        `close`): a flood then costs one commit per batch instead of one per message.  With a
        writer thread, committing means handing over (the next read waits for it).  A receive
        time that is not a finite number, a send time that is not a 32-bit unsigned number
        (the wire's) or a text longer than `services.chat.blocks.MAX_PIECE_CHARS` raises
        `ValueError` here, not in the batch it would spoil."""
        check(send_time, recv_time, body, text)
        history_id = self._next_id
        self._next_id += 1
        key = self._keys.get(peer)
        if key is None:
            key = self._keys[peer] = self._next_key
            self._next_key += 1
            self._new_peers.append((key, peer.to_hex() if peer is not None else _BROADCAST))
        block = self._pending.get(key)
        if block is None:
            block = self._pending[key] = BlockBuilder(history_id)
        block.add(history_id, incoming, public, send_time, recv_time, body, text)
        self._pending_count += 1
        if commit or self._pending_count >= MAX_PENDING_ROWS:
            self.commit()
        return history_id

    def _batch(self) -> tuple[list[tuple[str, Sequence[tuple[object, ...]]]], int]:
        """The waiting messages as statements (new peers first, the oldest messages beyond
        ``max_rows`` dropped after, the marks last), taken out of memory, and about how many
        bytes they write (characters of text count one)."""
        if not self._pending:
            return [], 0
        blocks, size = _block_rows(self._pending)
        statements: list[tuple[str, Sequence[tuple[object, ...]]]] = [
            (_INSERT_PEER, self._new_peers), (_INSERT_BLOCK, blocks)]
        self._pending, self._new_peers, self._pending_count = {}, [], 0
        marks: list[tuple[object, ...]] = [(_NEXT_ID, self._next_id)]
        floor = self._next_id - 1 - self.max_rows
        if floor > self._pruned:
            self._pruned = floor
            statements.append((_PRUNE, [(floor,)]))
            marks.append((_PRUNED, floor))
        statements.append((_SET_MARK, marks))
        return statements, size

    def commit(self) -> None:
        """Write the waiting messages and commit (with a writer thread: hand them over)."""
        if self._writer is not None:
            if self._pending:
                statements, size = self._batch()
                self._writer.submit(statements, wait=False, size=size)
            return
        self._write_pending()
        self.db.commit()

    def _write_pending(self) -> None:
        """Before any read: hand the waiting messages to sqlite (in the open transaction), or
        with a writer thread, wait until it committed everything (messages waiting included)."""
        if self._writer is not None:
            self.commit()
            self._writer.sync()
            return
        for sql, rows in self._batch()[0]:
            self.db.executemany(sql, rows)

    def _write(self, statements: _Statements) -> None:
        """Run a queue change and commit it, with the history messages waiting before it."""
        if self._writer is not None:
            batch, size = self._batch()
            self._writer.submit([*batch, *statements], wait=True, size=size)
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
        clauses, args = ([_PEER_IS], [peer.to_hex()]) if peer is not None else ([], [])
        return self._page(clauses, args, limit=limit, before=before, after=after)

    def search(self, words: str, peer: SslId | None = None, *,
               limit: int = 50) -> list[HistoryEntry]:
        """Messages whose plain text contains ``words`` (case-insensitive for ASCII), newest
        last."""
        self._write_pending()
        needle = words.translate(_FOLD)
        clauses, args = [_MAY_HOLD], [to_stored(needle)] * 2
        if peer is not None:
            clauses.append(_PEER_IS)
            args.append(peer.to_hex())
        return self._page(clauses, args, limit=limit,
                          keep=lambda m: needle in m[6].translate(_FOLD))

    def _page(self, clauses: list[str], args: list[object], *, limit: int,
              before: int | None = None, after: int | None = None,
              keep: Callable[[Message], bool] | None = None) -> list[HistoryEntry]:
        """The ``limit`` newest messages below ``before`` (or, with ``after``, the oldest
        above it) of the blocks ``clauses`` pick that ``keep`` accepts, oldest first.

        Walking down, blocks come by their last id, so no block still to come holds an id
        above the last id of the block at hand; walking up, they come by their first id, and
        none still to come holds an id below that: once a full page is past that point, the
        walk stops.  A block's ids span less than `BLOCK_SPAN`, which bounds the ids the query
        must look at on either side of ``before`` and ``after``."""
        limit = max(1, min(limit, MAX_PAGE))
        low = self._pruned if after is None else max(after, self._pruned)
        where, params = ["b.last > ?", *clauses], [low, *args]
        if after is not None:
            where.append("b.first > ?")
            params.append(after - BLOCK_SPAN)
        if before is not None:
            where += ["b.first < ?", "b.last < ?"]
            params += [before, before + BLOCK_SPAN]
        upward = after is not None
        sql = (f"{_SELECT_BLOCKS} WHERE {' AND '.join(where)}"
               f" ORDER BY {'b.first ASC' if upward else 'b.last DESC'}")
        found: list[tuple[Message, str]] = []
        for row in _rows(self.db, sql, params):
            first, last = row[0], row[1]
            if len(found) == limit and (found[-1][0][0] < first if upward
                                        else found[-1][0][0] > last):
                break
            for m in unpack(first, last, row[2], row[3], row[4], row[5]):
                if low < m[0] and (before is None or m[0] < before) and (
                        keep is None or keep(m)):
                    found.append((m, row[6]))
            found.sort(key=_message_id, reverse=not upward)
            del found[limit:]
        if not upward:
            found.reverse()
        return [_entry(m, ssl) for m, ssl in found]

    def last_id(self) -> int:
        self._write_pending()
        row = self.db.execute("SELECT MAX(last) FROM blocks").fetchone()
        return int(row[0] or 0)

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
