"""Chat store: history pages per friend, search by words, the offline queue, on real sqlite."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pqi.wire.fields import SslId
from services.chat.store import ChatStore

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
