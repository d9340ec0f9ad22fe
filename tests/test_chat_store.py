"""Chat store: history pages per friend, search by words, the offline queue, on real sqlite."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pqi.wire.fields import SslId
from services.chat.store import MAX_PENDING_ROWS, MAX_WRITES_WAITING, ChatStore, HistoryWriteError

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
    """Ids given before writing continue from the file's AUTOINCREMENT sequence: after a
    reopen, and even when the newest rows were deleted, no id is given twice."""
    store = ChatStore(tmp_path / "c.sqlite")
    for n in range(5):
        store.add(A, incoming=True, public=False, send_time=n, recv_time=n, body=f"m{n}",
                  text=f"m{n}", commit=False)
    store.close()
    store = ChatStore(tmp_path / "c.sqlite")
    store.db.execute("DELETE FROM history WHERE id > 3")
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
    other.db.execute("DROP TABLE history")
    other.db.commit()
    other.close()
    store.add(A, incoming=True, public=False, send_time=1, recv_time=1, body="x", text="x")
    with pytest.raises(HistoryWriteError, match="history"):
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
