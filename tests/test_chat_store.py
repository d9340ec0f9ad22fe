"""Chat store: history pages per friend, search by words, the offline queue, on real sqlite."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pqi.wire.fields import SslId
from services.chat.store import (
    MAX_PAGE,
    MAX_PENDING_ROWS,
    MAX_WRITES_WAITING,
    SCHEMA_VERSION,
    ChatStore,
    ChatStoreVersionError,
    HistoryEntry,
    HistoryWriteError,
)

A, B = SslId(b"\x0a" * 16), SslId(b"\x0b" * 16)


def test_pages_walk_one_friend_backwards(tmp_path) -> None:
    """Pages come oldest-first, each older than the last one's first id; other friends'
    messages never appear."""
    store = ChatStore(tmp_path / "c.sqlite")
    for n in range(25):
        store.add(A if n % 2 == 0 else B, incoming=True, public=False, send_time=n,
                  recv_time=n, body=f"m{n}", text=f"m{n}")
    pages, before = [], None
    while page := store.history(A, limit=5, before=before):
        pages.append([e.body for e in page])
        before = page[0].id
    assert pages == [[f"m{n}" for n in range(16, 25, 2)], [f"m{n}" for n in range(6, 15, 2)],
                     ["m0", "m2", "m4"]]
    assert [e.body for e in store.history(after=store.history(limit=1, before=3)[0].id,
                                          limit=2)] == ["m2", "m3"]


def test_search_matches_plain_text_and_escapes_wildcards(tmp_path) -> None:
    """Search looks at the plain text (not markup), ignores ASCII case, and treats % and _
    literally."""
    store = ChatStore(tmp_path / "c.sqlite")
    store.add(A, incoming=True, public=False, send_time=1, recv_time=1,
              body="<b>Hello</b> World", text="Hello World")
    store.add(B, incoming=False, public=False, send_time=2, recv_time=2, body="100% sure",
              text="100% sure")
    store.add(B, incoming=False, public=False, send_time=3, recv_time=3, body="100 x",
              text="100 x")
    assert [e.body for e in store.search("hello world")] == ["<b>Hello</b> World"]
    assert store.search("<b>") == []
    assert [e.body for e in store.search("0%")] == ["100% sure"]
    assert store.search("hello", peer=B) == []


def test_queue_keeps_order_and_survives_reopen(tmp_path) -> None:
    """Queued items come back in the order written, per friend, after the file is reopened;
    dequeued ones are gone."""
    store = ChatStore(tmp_path / "c.sqlite")
    store.enqueue(A, [(1, 10, "a1"), (0x101, 11, "a2")])
    store.enqueue(B, [(1, 12, "b1")])
    store.enqueue(A, [(1, 13, "a3")])
    store.close()
    store = ChatStore(tmp_path / "c.sqlite")
    queued = store.queued(A)
    assert [(q.flags, q.send_time, q.body) for q in queued] == [(1, 10, "a1"), (0x101, 11, "a2"),
                                                                  (1, 13, "a3")]
    store.dequeue([queued[0].id])
    assert [q.body for q in store.queued()] == ["a2", "b1", "a3"]
    assert store.has_queued(B) and not store.has_queued(SslId(b"\x0c" * 16))


@pytest.mark.slow
@settings(max_examples=25)
@given(st.lists(st.tuples(st.booleans(), st.text(max_size=20)), max_size=40),
       st.integers(1, 7))
def test_paging_sees_every_message_once(tmp_path_factory, rows, page) -> None:
    """Whatever the page size, walking back through a friend's history yields each of its
    messages exactly once, in order."""
    store = ChatStore(tmp_path_factory.mktemp("s") / "c.sqlite")
    for to_a, body in rows:
        store.add(A if to_a else B, incoming=True, public=False, send_time=0, recv_time=0,
                  body=body, text=body)
    seen, before = [], None
    while chunk := store.history(A, limit=page, before=before):
        seen = [e.body for e in chunk] + seen
        before = chunk[0].id
    assert seen == [body for to_a, body in rows if to_a]
    store.close()


def test_uncommitted_rows_are_bounded_and_written_in_order(tmp_path) -> None:
    """Rows added with commit=False wait in memory with the ids they are returned with; at
    MAX_PENDING_ROWS the store writes them, and a read sees the ones still waiting."""
    store = ChatStore(tmp_path / "c.sqlite")
    ids = [store.add(A, incoming=True, public=False, send_time=n, recv_time=n, body=f"m{n}",
                     text=f"m{n}", commit=False) for n in range(MAX_PENDING_ROWS - 1)]
    assert store.pending_rows == MAX_PENDING_ROWS - 1
    ids.append(store.add(A, incoming=True, public=False, send_time=0, recv_time=0, body="last",
                         text="last", commit=False))
    assert store.pending_rows == 0
    assert ids == list(range(1, MAX_PENDING_ROWS + 1))
    late = store.add(B, incoming=False, public=False, send_time=1, recv_time=1, body="late",
                     text="late", commit=False)
    assert [(e.id, e.body) for e in store.history(B)] == [(late, "late")]
    assert store.last_id() == late


def test_ids_continue_after_reopen_and_never_reuse_a_deleted_id(tmp_path) -> None:
    """Ids given before writing continue from the file's mark: after a reopen, and even when
    the newest messages were deleted, no id is given twice."""
    store = ChatStore(tmp_path / "c.sqlite")
    for n in range(5):
        store.add(A, incoming=True, public=False, send_time=n, recv_time=n, body=f"m{n}",
                  text=f"m{n}")
    store.close()
    store = ChatStore(tmp_path / "c.sqlite")
    store.db.execute("DELETE FROM blocks WHERE first > 3")
    store.db.commit()
    store.close()
    store = ChatStore(tmp_path / "c.sqlite")
    new = store.add(A, incoming=True, public=False, send_time=9, recv_time=9, body="new",
                    text="new", commit=False)
    assert new == 6
    assert [e.id for e in store.history(A)] == [1, 2, 3, 6]


def test_queue_change_commits_waiting_history(tmp_path) -> None:
    """A queue change commits the history rows that waited for it (they survive a crash
    that never reaches commit or close)."""
    store = ChatStore(tmp_path / "c.sqlite")
    store.add(A, incoming=False, public=False, send_time=1, recv_time=1, body="hi", text="hi",
              commit=False)
    store.enqueue(B, [(1, 1, "later")])
    other = ChatStore(tmp_path / "c.sqlite")  # a second reader sees only what was committed
    assert [e.body for e in other.history(A)] == ["hi"]


# --- the writer thread (a node's store) --------------------------------------------------------

def test_writer_thread_commits_what_it_is_handed(tmp_path) -> None:
    """With a writer thread, rows handed over by commit reach the file (another connection
    sees them once a read of ours returned), reads see rows still waiting, and queue changes
    are committed before they return."""
    store = ChatStore(tmp_path / "c.sqlite", writer_thread=True)
    other = ChatStore(tmp_path / "c.sqlite")
    try:
        ids = [store.add(A, incoming=True, public=False, send_time=n, recv_time=n,
                         body=f"m{n}", text=f"m{n}", commit=False) for n in range(3)]
        store.commit()
        late = store.add(B, incoming=False, public=False, send_time=9, recv_time=9,
                         body="late", text="late", commit=False)
        assert [e.id for e in store.history()] == [*ids, late]
        assert [e.body for e in other.history()] == ["m0", "m1", "m2", "late"]
        store.enqueue(B, [(1, 10, "q1"), (1, 11, "q2")])
        assert [q.body for q in other.queued(B)] == ["q1", "q2"]
        store.dequeue([other.queued(B)[0].id])
        assert [q.body for q in other.queued(B)] == ["q2"]
        store.add(A, incoming=True, public=False, send_time=1, recv_time=1, body="end",
                  text="end", commit=False)
        store.close()
        assert [e.body for e in other.history(A)][-1] == "end"
    finally:
        other.close()


def test_writer_thread_failure_is_raised_on_the_next_call(tmp_path) -> None:
    """A batch the writer thread cannot write (here: its table is gone) surfaces as
    HistoryWriteError on the next read or queue change, not as a silent loss."""
    store = ChatStore(tmp_path / "c.sqlite", writer_thread=True)
    other = ChatStore(tmp_path / "c.sqlite")
    other.db.execute("DROP TABLE blocks")
    other.db.commit()
    other.close()
    store.add(A, incoming=True, public=False, send_time=1, recv_time=1, body="x", text="x")
    with pytest.raises(HistoryWriteError, match="blocks"):
        store.last_id()
    with pytest.raises(HistoryWriteError):
        store.enqueue(A, [(1, 1, "q")])
    with pytest.raises(HistoryWriteError):
        store.close()


def test_writer_thread_waiting_batches_are_bounded(tmp_path) -> None:
    """While the file is locked by another writer, at most MAX_WRITES_WAITING batches wait
    for the writer thread (besides the at most as many its blocked transaction holds): a
    further commit waits for room, and all are written once the lock goes."""
    store = ChatStore(tmp_path / "c.sqlite", writer_thread=True)
    locker = sqlite3.connect(tmp_path / "c.sqlite", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # the writer thread's first transaction waits on it
    total = 2 * MAX_WRITES_WAITING + 3
    handed: list[int] = []

    def commit_many() -> None:
        for n in range(total):
            store.add(A, incoming=True, public=False, send_time=n, recv_time=n,
                      body=f"m{n}", text=f"m{n}", commit=False)
            store.commit()
            handed.append(n)

    helper = threading.Thread(target=commit_many, daemon=True)
    try:
        helper.start()
        seen = -1
        for _ in range(100):  # until the helper stops handing batches over
            time.sleep(0.02)
            if len(handed) == seen:
                break
            seen = len(handed)
        assert helper.is_alive()
        assert MAX_WRITES_WAITING < len(handed) <= 2 * MAX_WRITES_WAITING
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        helper.join(30)
    assert len(handed) == total
    assert len(store.history(A, limit=1000)) == total
    store.close()


def test_in_memory_store_keeps_its_one_connection(tmp_path) -> None:
    """An in-memory store asked for a writer thread keeps writing on its own connection (a
    second connection would open another, empty database) and still reads its rows."""
    store = ChatStore(":memory:", writer_thread=True)
    store.add(A, incoming=True, public=False, send_time=1, recv_time=1, body="x", text="x",
              commit=False)
    store.commit()
    store.enqueue(B, [(1, 2, "q")])
    assert [e.body for e in store.history(A)] == ["x"]
    assert [q.body for q in store.queued(B)] == ["q"]
    store.close()


# --- bytes that are not UTF-8, the layout version, the bound -----------------------------------

#: A body as the wire decoder gives it when a friend sent bytes that are not UTF-8.
JUNK = b"caf\xe9 \xff\xfe ok".decode("utf-8", "surrogateescape")


@pytest.mark.parametrize("writer", [False, True])
def test_bodies_that_are_not_utf8_round_trip(tmp_path, writer) -> None:
    """A body keeping bytes that are not UTF-8 (as lone surrogates) is stored, paged, searched
    and queued, and comes back identical; the rows after it are written too (sqlite alone
    cannot bind such a string: the first layout lost the whole batch, and with a writer thread
    every later call failed)."""
    store = ChatStore(tmp_path / "c.sqlite", writer_thread=writer)
    store.add(A, incoming=True, public=False, send_time=1, recv_time=1, body=JUNK, text=JUNK,
              commit=False)
    store.add(A, incoming=True, public=False, send_time=2, recv_time=2, body="<b>x</b>",
              text=JUNK + "x", commit=False)
    store.add(B, incoming=True, public=False, send_time=3, recv_time=3, body="after",
              text="after", commit=False)
    store.enqueue(B, [(1, 4, JUNK)])
    assert [(e.body, e.text) for e in store.history()] == [
        (JUNK, JUNK), ("<b>x</b>", JUNK + "x"), ("after", "after")]
    assert [e.body for e in store.search("\xff".encode("latin-1").decode(
        "utf-8", "surrogateescape"))] == [JUNK, "<b>x</b>"]
    assert [q.body for q in store.queued(B)] == [JUNK]
    store.close()
    again = ChatStore(tmp_path / "c.sqlite")
    assert [e.text for e in again.history(A)] == [JUNK, JUNK + "x"]
    again.close()


def test_plain_text_equal_to_the_body_is_stored_once(tmp_path) -> None:
    """A block keeps only the plain texts that differ from their body; one that is its body
    comes back as the body."""
    store = ChatStore(tmp_path / "c.sqlite")
    for body, text in (("same", "same"), ("<i>y</i>", "y"), ("<b>same</b>", "<b>same</b>")):
        store.add(A, incoming=True, public=False, send_time=1, recv_time=1, body=body,
                  text=text, commit=False)
    store.commit()
    assert store.db.execute("SELECT bodies, texts FROM blocks").fetchall() == [
        ("same<i>y</i><b>same</b>", "y")]
    assert [(e.body, e.text) for e in store.history(A)] == [
        ("same", "same"), ("<i>y</i>", "y"), ("<b>same</b>", "<b>same</b>")]


def test_a_receive_time_that_is_not_a_number_is_refused(tmp_path) -> None:
    """A NaN or infinite receive time raises ValueError at once and takes no id; the rows
    around it are written."""
    store = ChatStore(tmp_path / "c.sqlite")
    first = store.add(A, incoming=True, public=False, send_time=1, recv_time=1, body="a",
                      text="a", commit=False)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="not a finite number"):
            store.add(A, incoming=True, public=False, send_time=1, recv_time=bad, body="b",
                      text="b", commit=False)
    last = store.add(A, incoming=True, public=False, send_time=1, recv_time=2, body="c",
                     text="c")
    assert (first, last) == (1, 2)
    assert [e.body for e in store.history(A)] == ["a", "c"]


#: The first layout (version 0), as rsproto wrote it before the layout had a version.
_LAYOUT_0 = """
CREATE TABLE history (id INTEGER PRIMARY KEY AUTOINCREMENT, peer TEXT NOT NULL,
    incoming INTEGER NOT NULL, public INTEGER NOT NULL, send_time INTEGER NOT NULL,
    recv_time REAL NOT NULL, body TEXT NOT NULL, text TEXT NOT NULL);
CREATE INDEX history_peer ON history(peer, id);
CREATE TABLE queue (id INTEGER PRIMARY KEY AUTOINCREMENT, peer TEXT NOT NULL,
    flags INTEGER NOT NULL, send_time INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX queue_peer ON queue(peer, id);
"""


def test_a_file_in_the_first_layout_is_converted(tmp_path) -> None:
    """A store written before the layout had a version opens with every entry, search and
    queued item as they were; ids continue after the old sequence (even past deleted rows);
    the file says version 1 after, and opening it again changes nothing."""
    path = tmp_path / "c.sqlite"
    old = sqlite3.connect(path)
    old.executescript(_LAYOUT_0)
    rows = [(A.to_hex(), 1, 0, 10, 10.5, "<b>hi</b>", "hi"), ("", 0, 1, 11, 11.5, "all", "all"),
            (B.to_hex(), 1, 0, 12, 12.5, "b1", "b1"), (A.to_hex(), 0, 0, 13, 13.5, "a2", "a2"),
            (A.to_hex(), 1, 0, 14, 14.5, "gone", "gone")]
    old.executemany("INSERT INTO history (peer, incoming, public, send_time, recv_time, body,"
                    " text) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    old.execute("DELETE FROM history WHERE id = 5")
    old.executemany("INSERT INTO queue (peer, flags, send_time, body) VALUES (?, ?, ?, ?)",
                    [(B.to_hex(), 1, 20, "q1"), (B.to_hex(), 0x101, 21, "q2")])
    old.commit()
    old.close()
    expected = [(1, A, True, False, 10, 10.5, "<b>hi</b>", "hi"),
                (2, None, False, True, 11, 11.5, "all", "all"),
                (3, B, True, False, 12, 12.5, "b1", "b1"),
                (4, A, False, False, 13, 13.5, "a2", "a2")]

    def entries(store: ChatStore) -> list[tuple]:
        return [(e.id, e.peer, e.incoming, e.public, e.send_time, e.recv_time, e.body, e.text)
                for e in store.history()]

    store = ChatStore(path)
    assert entries(store) == expected
    assert [e.body for e in store.history(A)] == ["<b>hi</b>", "a2"]
    assert [e.body for e in store.search("HI")] == ["<b>hi</b>"]
    assert [(q.flags, q.body) for q in store.queued(B)] == [(1, "q1"), (0x101, "q2")]
    assert store.db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    new = store.add(B, incoming=True, public=False, send_time=30, recv_time=30, body="new",
                    text="new")
    assert new == 6
    store.close()
    store = ChatStore(path)
    assert entries(store)[:4] == expected and store.last_id() == 6
    store.close()


def test_a_file_from_a_newer_version_is_refused(tmp_path) -> None:
    """A layout newer than this code knows is refused with a database error naming both
    versions (rsnode reports database errors in one line), and the file is left as it was."""
    path = tmp_path / "c.sqlite"
    ChatStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(ChatStoreVersionError, match=f"layout {SCHEMA_VERSION + 1}.*up to "
                       f"{SCHEMA_VERSION}") as failure:
        ChatStore(path)
    assert isinstance(failure.value, sqlite3.DatabaseError)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION + 1,)
    db.close()


@pytest.mark.parametrize("writer", [False, True])
def test_history_keeps_at_most_max_rows(tmp_path, writer) -> None:
    """Each write drops the oldest messages beyond ``max_rows``: the history never shows more,
    no block wholly below the newest ``max_rows`` stays in the file, the newest are kept, and
    ids go on growing."""
    store = ChatStore(tmp_path / "c.sqlite", writer_thread=writer, max_rows=5)
    for n in range(12):
        store.add(A if n % 3 else B, incoming=True, public=False, send_time=n, recv_time=n,
                  body=f"m{n}", text=f"m{n}", commit=n % 4 == 0)
        store.commit()
        assert len(store.history(limit=MAX_PAGE)) <= 5
        old = store.db.execute("SELECT COUNT(*) FROM blocks WHERE last <= ?",
                               (store.last_id() - 5,)).fetchone()
        assert old == (0,)
    assert [e.body for e in store.history(limit=MAX_PAGE)] == [f"m{n}" for n in range(7, 12)]
    assert [e.id for e in store.history(limit=MAX_PAGE)] == list(range(8, 13))
    store.close()


def test_a_lower_bound_and_forgotten_peers_are_applied_on_open(tmp_path) -> None:
    """Opened with a smaller ``max_rows``, a store drops the oldest rows at once, and the
    peers no row names any more leave the peers table."""
    path = tmp_path / "c.sqlite"
    store = ChatStore(path)
    store.add(B, incoming=True, public=False, send_time=0, recv_time=0, body="b", text="b")
    for n in range(6):
        store.add(A, incoming=True, public=False, send_time=n, recv_time=n, body=f"a{n}",
                  text=f"a{n}")
    store.close()
    store = ChatStore(path, max_rows=3)
    assert [e.body for e in store.history()] == ["a3", "a4", "a5"]
    assert store.history(B) == []
    assert store.db.execute("SELECT ssl FROM peers").fetchall() == [(A.to_hex(),)]
    store.add(B, incoming=True, public=False, send_time=9, recv_time=9, body="b2", text="b2")
    assert [e.body for e in store.history(B)] == ["b2"]
    store.close()


@settings(max_examples=40)
@given(st.lists(st.tuples(st.binary(max_size=60), st.binary(max_size=20)), min_size=1,
                max_size=8))
def test_any_bytes_come_back_as_they_were(tmp_path_factory, pairs) -> None:
    """Whatever bytes a body and its plain text were decoded from (UTF-8 or not, NULs
    included), the entry read back is the same string."""
    store = ChatStore(tmp_path_factory.mktemp("b") / "c.sqlite")
    texts = [(b.decode("utf-8", "surrogateescape"), t.decode("utf-8", "surrogateescape"))
             for b, t in pairs]
    for body, text in texts:
        store.add(A, incoming=True, public=False, send_time=0, recv_time=0, body=body,
                  text=text, commit=False)
    assert [(e.body, e.text) for e in store.history(A, limit=MAX_PAGE)] == texts
    store.close()


def test_writer_keeps_a_batch_all_or_nothing(tmp_path) -> None:
    """A batch the writer thread writes is one transaction: here its second block collides
    with a block another connection wrote, and the batch's first block is not kept either."""
    path = tmp_path / "c.sqlite"
    store = ChatStore(path, writer_thread=True)
    store.add(A, incoming=True, public=False, send_time=0, recv_time=0, body="first",
              text="first")
    store.last_id()
    clash = 70
    other = sqlite3.connect(path)
    other.execute("INSERT INTO blocks (first, last, peer, count, meta, bodies, texts)"
                  " VALUES (?, ?, 1, 1, x'00', 'other', '')", (clash, clash))
    other.commit()
    for n in range(96):  # ids 2 to 97: A's block first, then B's from the clashing id on
        store.add(A if n < clash - 2 else B, incoming=True, public=False, send_time=n,
                  recv_time=n, body=f"m{n}", text=f"m{n}", commit=False)
    store.commit()
    with pytest.raises(HistoryWriteError, match="UNIQUE"):
        store.last_id()
    assert other.execute("SELECT first, bodies FROM blocks ORDER BY first").fetchall() == [
        (1, "first"), (clash, "other")]
    other.close()
    with pytest.raises(HistoryWriteError):
        store.close()


def test_writer_writes_a_long_batch_whole_and_in_order(tmp_path) -> None:
    """A long batch (163 rows, two peers) reaches the file whole, in the order the rows were
    added."""
    store = ChatStore(tmp_path / "c.sqlite", writer_thread=True)
    count = 163
    for n in range(count):
        store.add(B if n % 7 else A, incoming=True, public=False, send_time=n, recv_time=n,
                  body=f"m{n}", text=f"m{n}", commit=False)
    store.commit()
    assert [e.body for e in store.history(limit=MAX_PAGE)] == [f"m{n}" for n in range(count)]
    store.close()


C = SslId(b"\x0c" * 16)


@st.composite
def histories(draw) -> list[tuple[SslId | None, str, str, bool]]:
    """Messages of three friends and our broadcasts, each with whether a commit follows: a
    commit's blocks (one per peer) overlap in ids."""
    return draw(st.lists(st.tuples(st.sampled_from([A, B, C, None]),
                                   st.sampled_from(["hi", "Hello", "<b>HI</b>", "bye", "x\x00hi"]),
                                   st.sampled_from(["same", "hi", "HELLO", "a\x00b"]),
                                   st.booleans()), max_size=60))


@settings(max_examples=60)
@given(histories(), st.integers(1, 9), st.integers(0, 70), st.sampled_from([A, C, None]),
       st.sampled_from(["hi", "ell", "\x00", "<b>", "zz"]))
def test_pages_and_search_match_a_list_of_messages(tmp_path_factory, rows, limit, cut, peer,
                                                   words) -> None:
    """Whatever commits cut the messages into blocks, every page (newest before an id,
    oldest after one, of a friend or of all) and every search is what a plain list of the
    messages gives: the messages of a commit's other blocks neither hide nor repeat any."""
    store = ChatStore(tmp_path_factory.mktemp("p") / "c.sqlite")
    model = []
    for who, body, text, commit in rows:
        plain = body if text == "same" else text
        hid = store.add(who, incoming=True, public=who is None, send_time=0, recv_time=0,
                        body=body, text=plain, commit=commit)
        model.append((hid, who, body, plain))
    mine = [m for m in model if peer is None or m[1] == peer]

    def got(entries: list[HistoryEntry]) -> list[tuple]:
        return [(e.id, e.peer, e.body, e.text) for e in entries]

    assert got(store.history(peer, limit=limit, before=cut or None)) == \
        [m for m in mine if not cut or m[0] < cut][-limit:]
    assert got(store.history(peer, limit=limit, after=cut)) == [m for m in mine
                                                                if m[0] > cut][:limit]
    assert got(store.history(peer, limit=limit, after=cut // 2, before=cut)) == \
        [m for m in mine if cut // 2 < m[0] < cut][:limit]
    folded = words.lower()
    assert got(store.search(words, peer, limit=limit)) == \
        [m for m in mine if folded in m[3].lower()][-limit:]
    store.close()


def test_search_folds_ascii_only_and_sees_past_a_nul(tmp_path) -> None:
    """As sqlite's LIKE did: ASCII letters match either case, others only themselves; words
    after a NUL are found (LIKE stopped there); markup is never a match."""
    store = ChatStore(tmp_path / "c.sqlite")
    for body, text in (("ÉCOLE", "ÉCOLE"), ("école", "école"), ("a\x00Needle", "a\x00Needle"),
                       ("<needle>x</needle>", "x")):
        store.add(A, incoming=True, public=False, send_time=0, recv_time=0, body=body,
                  text=text, commit=False)
    assert [e.body for e in store.search("cole")] == ["ÉCOLE", "école"]
    assert [e.body for e in store.search("école")] == ["école"]
    assert [e.body for e in store.search("NEEDLE")] == ["a\x00Needle"]
    store.close()


def test_a_send_time_beyond_32_bits_is_refused(tmp_path) -> None:
    store = ChatStore(tmp_path / "c.sqlite")
    with pytest.raises(ValueError, match="32-bit"):
        store.add(A, incoming=True, public=False, send_time=2**32, recv_time=0, body="b",
                  text="b")
    assert store.add(A, incoming=True, public=False, send_time=0, recv_time=0, body="a",
                     text="a") == 1
    store.close()


def test_pruned_messages_stay_gone_when_the_bound_is_raised(tmp_path) -> None:
    """The floor below which messages are gone is kept in the file: a block that straddled
    it keeps its old messages hidden after a reopen with a larger ``max_rows``."""
    path = tmp_path / "c.sqlite"
    store = ChatStore(path, max_rows=3)
    for n in range(6):
        store.add(A, incoming=True, public=False, send_time=n, recv_time=n, body=f"a{n}",
                  text=f"a{n}", commit=False)
    store.commit()  # one block of six, three of them below the floor
    assert [e.body for e in store.history()] == ["a3", "a4", "a5"]
    assert store.db.execute("SELECT COUNT(*) FROM blocks").fetchone() == (1,)
    store.close()
    store = ChatStore(path, max_rows=100)
    assert [e.body for e in store.history()] == ["a3", "a4", "a5"]
    assert [e.body for e in store.search("a")] == ["a3", "a4", "a5"]
    store.close()


def test_a_damaged_block_is_a_decode_error(tmp_path) -> None:
    """A block whose bytes no longer fit its layout (a damaged file) fails the read with
    BlockDecodeError, a DecodeError, and leaves the file as it was."""
    from pqi.wire.errors import DecodeError
    from services.chat.blocks import BlockDecodeError

    path = tmp_path / "c.sqlite"
    store = ChatStore(path)
    store.add(A, incoming=True, public=False, send_time=0, recv_time=0, body="ok", text="ok")
    store.db.execute("UPDATE blocks SET bodies = 'not ok'")
    store.db.commit()
    with pytest.raises(BlockDecodeError) as failure:
        store.history(A)
    assert isinstance(failure.value, DecodeError)
    assert store.db.execute("SELECT bodies FROM blocks").fetchall() == [("not ok",)]
    store.close()


#: The second layout (version 1), as rsproto wrote it: a row per message.
_LAYOUT_1 = """
CREATE TABLE peers (key INTEGER PRIMARY KEY, ssl TEXT NOT NULL UNIQUE);
CREATE TABLE history (id INTEGER PRIMARY KEY AUTOINCREMENT, peer INTEGER NOT NULL,
    incoming INTEGER NOT NULL, public INTEGER NOT NULL, send_time INTEGER NOT NULL,
    recv_time REAL NOT NULL, body TEXT NOT NULL, text TEXT);
CREATE INDEX history_peer ON history(peer, id);
CREATE TABLE queue (id INTEGER PRIMARY KEY AUTOINCREMENT, peer TEXT NOT NULL,
    flags INTEGER NOT NULL, send_time INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX queue_peer ON queue(peer, id);
PRAGMA user_version = 1;
"""


def test_a_file_in_the_second_layout_is_converted_to_blocks(tmp_path) -> None:
    """A version 1 file (a row per message) opens with every message as it was, bodies that
    are not UTF-8 and plain texts stored once included; no block spans more than BLOCK_SPAN
    ids; ids continue after the old sequence; the queue is untouched; the history table is
    gone and the file says version 2."""
    from services.chat.blocks import BLOCK_SPAN

    path = tmp_path / "c.sqlite"
    old = sqlite3.connect(path)
    old.executescript(_LAYOUT_1)
    old.executemany("INSERT INTO peers (key, ssl) VALUES (?, ?)",
                    [(1, A.to_hex()), (2, ""), (3, B.to_hex())])
    count = 2 * BLOCK_SPAN + 7
    junk = b"\xff\x00x"
    rows = [(n + 1, 1 + n % 3, n % 2, int(n % 3 == 1), n, n + 0.5,
             junk if n == 5 else f"<i>m{n}</i>", None if n % 4 else f"m{n}")
            for n in range(count)]
    old.executemany("INSERT INTO history (id, peer, incoming, public, send_time, recv_time,"
                    " body, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    old.execute("DELETE FROM history WHERE id = ?", (count,))  # the sequence stays
    old.execute("INSERT INTO queue (peer, flags, send_time, body) VALUES (?, 1, 5, 'q')",
                (B.to_hex(),))
    old.commit()
    old.close()
    peers = {1: A, 2: None, 3: B}

    def expected(n: int) -> tuple:
        body = junk.decode("utf-8", "surrogateescape") if n == 5 else f"<i>m{n}</i>"
        return (n + 1, peers[1 + n % 3], bool(n % 2), n % 3 == 1, n, n + 0.5, body,
                body if n % 4 else f"m{n}")

    store = ChatStore(path)
    got = []
    before = None
    while page := store.history(limit=MAX_PAGE, before=before):
        got = page + got
        before = page[0].id
    assert [(e.id, e.peer, e.incoming, e.public, e.send_time, e.recv_time, e.body, e.text)
            for e in got] == [expected(n) for n in range(count - 1)]
    assert [e.id for e in store.search("m1003")] == [1004]
    assert store.db.execute("SELECT MAX(last - first) FROM blocks").fetchone()[0] < BLOCK_SPAN
    assert store.db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'history'"
                            ).fetchone() == (0,)
    assert store.db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (2,)
    assert [q.body for q in store.queued(B)] == ["q"]
    assert store.add(A, incoming=True, public=False, send_time=0, recv_time=0, body="new",
                     text="new") == count + 1
    store.close()


def test_a_conversion_that_fails_leaves_the_file_in_its_layout(tmp_path) -> None:
    """A version 1 file that cannot be converted (here a table of the new layout's name is
    in the way, without its columns) raises a database error, and the file keeps version 1
    with every row: the conversion is one transaction."""
    path = tmp_path / "c.sqlite"
    old = sqlite3.connect(path)
    old.executescript(_LAYOUT_1)
    old.execute("CREATE TABLE blocks (first INTEGER PRIMARY KEY)")
    old.execute("INSERT INTO peers (key, ssl) VALUES (1, ?)", (A.to_hex(),))
    old.executemany("INSERT INTO history (id, peer, incoming, public, send_time, recv_time,"
                    " body, text) VALUES (?, 1, 1, 0, 0, 0, ?, NULL)", [(1, "a"), (2, "b")])
    old.commit()
    old.close()
    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        ChatStore(path)
    old = sqlite3.connect(path)
    assert old.execute("PRAGMA user_version").fetchone() == (1,)
    assert old.execute("SELECT id, body FROM history ORDER BY id").fetchall() == [(1, "a"),
                                                                                  (2, "b")]
    assert old.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
                       ).fetchall() == [("blocks",), ("history",), ("peers",), ("queue",),
                                        ("sqlite_sequence",)]
    old.close()


@pytest.mark.parametrize("seed", range(3))
def test_pages_across_many_blocks_match_a_list_of_messages(tmp_path, seed) -> None:
    """Over ids far more than BLOCK_SPAN apart, where a page walk stops early, pages and
    search still give exactly what a plain list of the messages gives."""
    import random

    rnd = random.Random(seed)
    store = ChatStore(tmp_path / "c.sqlite")
    model = []
    for n in range(4000):
        who = rnd.choice([A, A, A, B, C, None])
        body = f"m{n}" + (" needle" if rnd.random() < 0.01 else "")
        hid = store.add(who, incoming=True, public=False, send_time=0, recv_time=0, body=body,
                        text=body, commit=rnd.random() < 0.002)
        model.append((hid, who, body))
    store.commit()
    for peer in (A, B, None):
        mine = [m for m in model if peer is None or m[1] == peer]
        for cut in (1, 999, 1000, 1001, 2500, 3999, 4000, 4001):
            for limit in (1, 7, 1000):
                older = store.history(peer, limit=limit, before=cut)
                assert [(e.id, e.peer, e.body) for e in older] == \
                    [m for m in mine if m[0] < cut][-limit:]
                newer = store.history(peer, limit=limit, after=cut)
                assert [(e.id, e.peer, e.body) for e in newer] == \
                    [m for m in mine if m[0] > cut][:limit]
        for limit in (1, 5, 1000):
            assert [(e.id, e.peer, e.body) for e in store.search("NEEDLE", peer, limit=limit)] \
                == [m for m in mine if "needle" in m[2]][-limit:]
    store.close()


def _fill(store: ChatStore, batches: int, size: int = 2000) -> None:
    for n in range(batches):
        for m in range(10):
            store.add(A, incoming=True, public=False, send_time=n, recv_time=n,
                      body=f"{n}.{m} " + "x" * size, text=f"{n}.{m}", commit=False)
        store.commit()
    store.last_id()  # every batch committed


def _wait_for(predicate, seconds: float = 10.0) -> bool:
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_writer_copies_the_wal_into_the_file_once_idle(tmp_path) -> None:
    """sqlite's own checkpoints (a burst of copying every 4 MB, in the middle of a flood) are
    off: the writer copies the WAL when no batch came for ``checkpoint_idle`` seconds."""
    path = tmp_path / "c.sqlite"
    store = ChatStore(path, writer_thread=True, checkpoint_idle=0.1, wal_bytes=2**30)
    empty = path.stat().st_size
    _fill(store, 10)
    assert _wait_for(lambda: path.stat().st_size > empty + 100_000)
    store.close()


def test_writer_leaves_the_wal_alone_while_busy_and_under_the_bound(tmp_path) -> None:
    """No idle time and a WAL under ``wal_bytes``: nothing is copied into the file yet, also
    past the 1000 pages where sqlite would have copied it."""
    path = tmp_path / "c.sqlite"
    store = ChatStore(path, writer_thread=True, checkpoint_idle=3600, wal_bytes=2**30)
    empty = path.stat().st_size
    _fill(store, 250)  # 5 MB
    time.sleep(0.3)
    assert path.stat().st_size == empty
    assert Path(f"{path}-wal").stat().st_size > 5_000_000
    assert len(store.history(A, limit=MAX_PAGE)) == MAX_PAGE
    store.close()


def test_writer_copies_the_wal_past_its_bound_even_while_busy(tmp_path) -> None:
    """Batches that keep coming never let the WAL grow far beyond ``wal_bytes``: past it the
    writer copies it into the file without waiting for idle time, and the WAL file is cut
    back to that size."""
    path = tmp_path / "c.sqlite"
    bound = 64 * 1024
    store = ChatStore(path, writer_thread=True, checkpoint_idle=3600, wal_bytes=bound)
    empty = path.stat().st_size
    _fill(store, 20)  # about 400 kB
    assert _wait_for(lambda: path.stat().st_size > empty + 200_000)
    _fill(store, 2)
    assert Path(f"{path}-wal").stat().st_size <= bound + 100_000
    assert len(store.history(A, limit=MAX_PAGE)) == 220
    store.close()


def test_a_checkpoint_that_fails_is_raised_on_the_next_call(tmp_path) -> None:
    """A checkpoint the writer thread cannot make (here: its connection is unusable) loses
    nothing it was handed and surfaces as HistoryWriteError on the next call, as a failed
    write does."""
    store = ChatStore(tmp_path / "c.sqlite", writer_thread=True)
    writer = store._writer
    assert writer is not None
    broken = sqlite3.connect(":memory:")
    broken.close()
    assert writer._checkpoint(broken, 1234) == 1234
    with pytest.raises(HistoryWriteError, match="closed database"):
        store.last_id()
    with pytest.raises(HistoryWriteError):
        store.close()
