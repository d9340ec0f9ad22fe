"""Chat service: what it sends is RetroShare's bytes, what it receives it judges as RetroShare
does, long messages split and join, the offline queue keeps order across restarts.

Captured items are from ``tests/vectors/retroshare``: ``captures/`` (file:line).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.testing import MemoryReactorClock

import pqi
from pqi.items.chat import MAX_AVATAR_SIZE, ChatAvatarItem, ChatFlags, ChatMsgItem, ChatStatusItem
from pqi.wire.fields import SslId
from services.chat.service import (
    HISTORY_COMMIT_DELAY,
    MAX_PIECE_BYTES,
    RETRY_PERIOD,
    AvatarReceived,
    AvatarTooLargeError,
    ChatMessage,
    ChatService,
    ChatStatusReceived,
    MessageReceived,
    MessageTooLongError,
    Reassembler,
    flags_acceptable,
    html_to_text,
    split_message,
    text_to_html,
)
from services.chat.store import ChatStore
from tests.service_fakes import RecordingSender, peer


def captured(captures, name: str, line: int) -> bytes:
    with open(captures / f"{name}.items.jsonl") as f:
        for n, text in enumerate(f, 1):
            if n == line:
                return bytes.fromhex(json.loads(text)["hex"])
    raise AssertionError(f"{name}:{line} missing")


def make(tmp_path, now: float = 0x6B06DF5C, name: str = "chat"):
    clock = MemoryReactorClock()
    clock.advance(now)
    sender = RecordingSender()
    events: list = []
    store = ChatStore(tmp_path / f"{name}.sqlite")
    svc = ChatService(sender, clock, store, events.append)
    svc.start()
    return svc, sender, events, clock


def wire(sender: RecordingSender) -> list[bytes]:
    out = [pqi.encode(i) for _, i in sender.sent]
    sender.sent.clear()
    return out


def connect(svc: ChatService, who=None):
    who = who or peer(2)
    svc.peer_connected(who)
    svc.sender.sent.clear()
    return who


# --- our bytes are RetroShare's -------------------------------------------------------------

def test_private_message_is_retroshares_framing(tmp_path, captures) -> None:
    """alice:219 and :220: the same text at the same second gives the same 68-byte message,
    followed (first message to that friend) by the 18-byte custom state item, flags 0x10."""
    svc, sender, _, _ = make(tmp_path)
    bob = connect(svc)
    svc.send_private(bob.ssl_id, "Hello Bob! Plain ASCII chat from alice, 1 2 3.")
    assert wire(sender) == [captured(captures, "alice", 219), captured(captures, "alice", 220)]


def test_long_message_split_as_retroshare(tmp_path, captures) -> None:
    """alice:237/238: 20000 characters leave as a 15000-byte piece (PRIVATE|PARTIAL) and a
    5000-byte one (PRIVATE), byte for byte."""
    svc, sender, _, clock = make(tmp_path, now=0x6B06DF64)
    bob = connect(svc)
    svc.send_private(bob.ssl_id, "warm-up")
    sender.sent.clear()
    first = pqi.decode(captured(captures, "alice", 237))
    second = pqi.decode(captured(captures, "alice", 238))
    svc.send_private(bob.ssl_id, first.message + second.message)
    assert wire(sender) == [captured(captures, "alice", 237), captured(captures, "alice", 238)]


def test_one_piece_up_to_the_piece_limit_in_bytes_not_characters(tmp_path) -> None:
    """A body goes in one piece while its UTF-8 is at most `MAX_PIECE_BYTES`, whatever its
    length in characters; one byte more and it is cut (the sender skips the encode only for
    bodies too short in characters to pass the limit)."""
    svc, sender, _, _ = make(tmp_path)
    bob = connect(svc)
    svc.send_private(bob.ssl_id, "warm-up")
    sender.sent.clear()
    fits = ["a" * MAX_PIECE_BYTES, "é" * (MAX_PIECE_BYTES // 2), "€" * (MAX_PIECE_BYTES // 3)]
    cut = ["a" * (MAX_PIECE_BYTES + 1), "é" * (MAX_PIECE_BYTES // 2) + "a"]
    for body in fits + cut:
        message = svc.send_private(bob.ssl_id, body)
        pieces = [item for _, item in sender.sent]
        sender.sent.clear()
        assert "".join(p.message for p in pieces) == body == message.body
        assert len(pieces) == (1 if body in fits else 2)
        assert all(len(p.message.encode()) <= MAX_PIECE_BYTES for p in pieces)
        assert [bool(p.flags & ChatFlags.PARTIAL_MESSAGE) for p in pieces] == \
            [True] * (len(pieces) - 1) + [False]


def test_chat_message_is_a_frozen_value() -> None:
    """`ChatMessage` (its own ``__init__``, for speed) behaves as the frozen dataclass it
    declares: positional or keyword fields, ``queued`` False by default, immutable, equal
    and hashed by value, `dataclasses.replace` works."""
    import dataclasses

    who = peer(3).ssl_id
    m = ChatMessage(who, True, False, 7, 1.5, "hi", 42)
    assert m == ChatMessage(peer=who, incoming=True, public=False, send_time=7,
                            recv_time=1.5, body="hi", history_id=42, queued=False)
    assert (m.peer, m.incoming, m.public, m.send_time, m.recv_time, m.body, m.history_id,
            m.queued) == (who, True, False, 7, 1.5, "hi", 42, False)
    assert hash(m) == hash(ChatMessage(who, True, False, 7, 1.5, "hi", 42))
    assert m != ChatMessage(who, True, False, 7, 1.5, "hi", 43)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.body = "changed"  # type: ignore[misc]
    queued = dataclasses.replace(m, queued=True)
    assert queued.queued and queued.body == "hi" and not m.queued
    assert [f.name for f in dataclasses.fields(ChatMessage)] == [
        "peer", "incoming", "public", "send_time", "recv_time", "body", "history_id", "queued"]
    with pytest.raises(TypeError):
        ChatMessage(who, True, False, 7, 1.5, "hi")  # type: ignore[call-arg]


def test_typing_notice_bytes(tmp_path, captures) -> None:
    """alice:235: "is typing..." with flags PRIVATE."""
    svc, sender, _, _ = make(tmp_path)
    bob = connect(svc)
    assert svc.send_typing(bob.ssl_id)
    assert wire(sender) == [captured(captures, "alice", 235)]


def test_avatar_request_on_connect(tmp_path, captures) -> None:
    """alice:11: on connect, a friend whose avatar we lack is asked for it (flags 0x03, empty
    text, our time)."""
    svc, sender, _, _ = make(tmp_path, now=0x6B06DED5)
    svc.peer_connected(peer(2))
    assert wire(sender) == [captured(captures, "alice", 11)]


def test_custom_state_exchange(tmp_path, captures) -> None:
    """alice:246-248: alice announces a custom state (0x80), bob asks (0x41), alice answers
    (0x10 with the string); bob reports it as a chat status event."""
    alice, a_sent, _, _ = make(tmp_path, name="alice")
    bob, b_sent, b_events, _ = make(tmp_path, name="bob")
    pa, pb = peer(1), peer(2)
    connect(alice, pb)
    connect(bob, pa)
    alice.set_custom_state("capturing wire vectors ☕")
    (announce,) = wire(a_sent)
    assert announce == captured(captures, "alice", 246)
    bob.receive(pa, pqi.decode(announce))
    (ask,) = wire(b_sent)
    assert ask == captured(captures, "alice", 247)
    alice.receive(pb, pqi.decode(ask))
    (answer,) = wire(a_sent)
    assert answer == captured(captures, "alice", 248)
    bob.receive(pa, pqi.decode(answer))
    (event,) = b_events
    assert isinstance(event, ChatStatusReceived) and event.status.kind == "custom_state"
    assert event.status.text == "capturing wire vectors ☕"
    assert bob.custom_states[pa.ssl_id] == event.status.text


# --- receiving captured items ----------------------------------------------------------------

def test_captured_20000_characters_reassemble(tmp_path, captures) -> None:
    """bob:237+238 through the service: one message, the 20000 characters the README
    describes (numbered fox lines, cut at 20000)."""
    svc, _, events, _ = make(tmp_path)
    alice = connect(svc, peer(1))
    for line in (237, 238):
        svc.receive(alice, pqi.decode(captured(captures, "bob", line)))
    expected = "".join(f"{i:05d}:The quick brown fox jumps over the lazy dog.\n"
                       for i in range(500))[:20000]
    (event,) = events
    assert isinstance(event, MessageReceived)
    message = event.message
    assert message.body == expected and len(message.body) == 20000
    assert not message.public and message.incoming and message.send_time == 0x6B06DF64
    assert svc.reassembler.pending_bytes == 0


def test_captured_non_ascii_message(tmp_path, captures) -> None:
    """alice:225 (bob's message) decodes to the recorded text and lands in the history."""
    svc, _, events, _ = make(tmp_path)
    bob = connect(svc)
    svc.receive(bob, pqi.decode(captured(captures, "alice", 225)))
    text = ("Grüße aus Köln, café crème, naïve façade; emoji 😀🚀👍🏽; Hebrew שלום עולם; "
            "Arabic مرحبا بالعالم; CJK 你好世界")
    assert events[0].message.body == text and events[0].message.text == text
    assert [e.body for e in svc.store.history(bob.ssl_id)] == [text]
    assert [e.body for e in svc.store.search("Köln")] == [text]


def test_a_message_that_is_not_utf8_is_kept_and_chat_goes_on(tmp_path) -> None:
    """A friend's message with bytes that are not UTF-8 reaches the event and the history as
    it came (the writer thread of a node's store included), and later messages are recorded
    too: one friend's junk bytes never stop the history for everybody."""
    clock = MemoryReactorClock()
    store = ChatStore(tmp_path / "chat.sqlite", writer_thread=True)
    events: list = []
    svc = ChatService(RecordingSender(), clock, store, events.append)
    svc.start()
    bob = connect(svc)
    raw = b"caf\xe9 \xff<b>bold</b>"
    junk = raw.decode("utf-8", "surrogateescape")
    wire_bytes = pqi.encode(ChatMsgItem(flags=ChatFlags.PRIVATE, send_time=1, message=junk))
    assert raw in wire_bytes
    svc.receive(bob, pqi.decode(wire_bytes))
    clock.advance(HISTORY_COMMIT_DELAY)
    svc.receive(bob, ChatMsgItem(flags=ChatFlags.PRIVATE, send_time=2, message="next"))
    assert [e.message.body for e in events] == [junk, "next"]
    assert [(e.body, e.text) for e in store.history(bob.ssl_id)] == [
        (junk, junk.replace("<b>", "").replace("</b>", "")), ("next", "next")]
    svc.stop()
    store.close()


def test_receiver_flag_checks(tmp_path) -> None:
    """As RetroShare: kind bits PRIVATE|PUBLIC, LOBBY alone or PRIVATE|LOBBY on a plain message
    are dropped; no kind bit at all is accepted (as broadcast)."""
    svc, _, events, _ = make(tmp_path)
    bob = connect(svc)
    for flags in (ChatFlags.PRIVATE | ChatFlags.PUBLIC, ChatFlags.LOBBY,
                  ChatFlags.PRIVATE | ChatFlags.LOBBY):
        svc.receive(bob, ChatMsgItem(flags=flags, send_time=1, message="x"))
    assert events == [] and svc.dropped_flags == 3
    svc.receive(bob, ChatMsgItem(flags=ChatFlags(0), send_time=1, message="zero"))
    svc.receive(bob, ChatMsgItem(flags=ChatFlags.PUBLIC, send_time=1, message="pub"))
    assert [(e.message.body, e.message.public) for e in events] == [("zero", True), ("pub", True)]
    assert not flags_acceptable(0x21) and flags_acceptable(0x1) and flags_acceptable(0)


def test_typing_and_plain_status_events(tmp_path) -> None:
    """Status strings without custom-state bits are events: typing, or any other string."""
    svc, _, events, _ = make(tmp_path)
    bob = connect(svc)
    svc.receive(bob, ChatStatusItem(flags=ChatFlags.PRIVATE, status="is typing..."))
    svc.receive(bob, ChatStatusItem(flags=ChatFlags.PUBLIC, status="away for lunch"))
    assert [(e.status.kind, e.status.text, e.status.public) for e in events] == [
        ("typing", "is typing...", False), ("status", "away for lunch", True)]


# --- avatars ---------------------------------------------------------------------------------

def test_avatar_requests_answered_and_capped(tmp_path) -> None:
    """A request (PRIVATE|REQUESTS_AVATAR) is answered with our image and is not a message;
    images over 32767 bytes are refused; a received avatar is kept and reported."""
    svc, sender, events, _ = make(tmp_path)
    bob = connect(svc)
    with pytest.raises(AvatarTooLargeError):
        svc.set_avatar(b"x" * (MAX_AVATAR_SIZE + 1))
    svc.set_avatar(b"\xff\xd8jpeg")
    svc.receive(bob, ChatMsgItem(flags=ChatFlags.PRIVATE | ChatFlags.REQUESTS_AVATAR,
                                 send_time=1, message=""))
    assert [i for _, i in sender.sent] == [ChatAvatarItem(image=b"\xff\xd8jpeg")]
    assert events == []
    svc.receive(bob, ChatAvatarItem(image=b"theirs"))
    assert svc.avatars[bob.ssl_id] == b"theirs"
    assert events == [AvatarReceived(bob.ssl_id, b"theirs")]


def test_avatar_available_flag_both_ways(tmp_path) -> None:
    """Our first message after setting an avatar says AVATAR_AVAILABLE; a message saying so
    makes us ask for the friend's avatar."""
    svc, sender, events, _ = make(tmp_path)
    bob = connect(svc)
    svc.set_avatar(b"img")
    svc.send_private(bob.ssl_id, "one")
    svc.send_private(bob.ssl_id, "two")
    flags = [i.flags for _, i in sender.sent if isinstance(i, ChatMsgItem)]
    assert flags == [ChatFlags.PRIVATE | ChatFlags.AVATAR_AVAILABLE, ChatFlags.PRIVATE]
    sender.sent.clear()
    svc.receive(bob, ChatMsgItem(flags=ChatFlags.PRIVATE | ChatFlags.AVATAR_AVAILABLE,
                                 send_time=1, message="hi"))
    assert [i.flags for _, i in sender.sent] == [ChatFlags.PRIVATE | ChatFlags.REQUESTS_AVATAR]
    assert events[0].message.body == "hi"


# --- reassembly ------------------------------------------------------------------------------

def test_reassembly_is_per_friend_and_capped() -> None:
    """Pieces of two friends interleave without mixing; a friend whose pending pieces pass the
    cap loses them (counted) and the other friend's message still completes."""
    r = Reassembler(cap=100)
    a, b = SslId(b"\x01" * 16), SslId(b"\x02" * 16)
    partial = ChatFlags.PRIVATE | ChatFlags.PARTIAL_MESSAGE
    assert r.feed(a, partial, "a" * 60) is None
    assert r.feed(b, partial, "b1") is None
    assert r.feed(a, partial, "a" * 60) is None  # 120 > 100: dropped
    assert r.overflows == 1 and r.pending_bytes == 2
    assert r.feed(b, ChatFlags.PRIVATE, "b2") == (ChatFlags.PRIVATE, "b1b2")
    assert r.feed(a, ChatFlags.PRIVATE, "fresh") == (ChatFlags.PRIVATE, "fresh")
    assert r.pending_bytes == 0


def test_whole_message_over_the_cap_is_dropped() -> None:
    """A one-piece message is checked against the cap by its UTF-8 size too: one that fits by
    characters but not by bytes is dropped and counted, one that fits passes unchanged."""
    r = Reassembler(cap=100)
    a = SslId(b"\x01" * 16)
    assert r.feed(a, ChatFlags.PRIVATE, "é" * 50) == (ChatFlags.PRIVATE, "é" * 50)
    assert r.feed(a, ChatFlags.PRIVATE, "é" * 51) is None  # 102 bytes
    assert r.feed(a, ChatFlags.PRIVATE, "a" * 100) == (ChatFlags.PRIVATE, "a" * 100)
    assert r.overflows == 1 and r.pending_bytes == 0


def test_multibyte_piece_cut_by_retroshare_joins() -> None:
    """RetroShare cuts at 15000 bytes even inside a character; the joined text is whole."""
    text = "é" * 8000  # 16000 bytes
    raw = text.encode()
    pieces = [raw[:15000], raw[15000:]]
    r = Reassembler()
    a = SslId(b"\x01" * 16)
    items = [pqi.decode(pqi.encode(ChatMsgItem(
        flags=ChatFlags.PRIVATE | (ChatFlags.PARTIAL_MESSAGE if i == 0 else 0), send_time=1,
        message=p.decode("utf-8", "surrogateescape")))) for i, p in enumerate(pieces)]
    assert r.feed(a, items[0].flags, items[0].message) is None
    assert r.feed(a, items[1].flags, items[1].message) == (ChatFlags.PRIVATE, text)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40000))
def test_split_then_join_round_trip(text: str) -> None:
    """Any text: pieces of at most 15000 bytes, through the wire codec and the reassembler,
    come back as the text."""
    pieces = split_message(text)
    assert all(len(p.encode()) <= MAX_PIECE_BYTES for p in pieces)
    r = Reassembler()
    a = SslId(b"\x01" * 16)
    out = None
    for i, p in enumerate(pieces):
        flags = ChatFlags.PUBLIC | (ChatFlags.PARTIAL_MESSAGE if i < len(pieces) - 1 else 0)
        item = pqi.decode(pqi.encode(ChatMsgItem(flags=flags, send_time=7, message=p)))
        out = r.feed(a, item.flags, item.message)
    assert out == (ChatFlags.PUBLIC, text)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r"),
               max_size=200).filter(lambda t: t == t.strip("\n")))
def test_plain_text_view_of_escaped_text(text: str) -> None:
    """Text made GUI-safe with text_to_html reads back unchanged through html_to_text."""
    assert html_to_text(text_to_html(text)) == text


def test_plain_text_view_of_captured_mail_body() -> None:
    """The captured HTML mail body (alice:262) reads as two lines of plain text."""
    body = ('<html><body><p>Hello <b>Bob</b>,</p><p>this is an <i>HTML</i> mail body with a '
            '<a href="retroshare://file?name=x">link</a> and UTF-8: Grüße ✓.</p></body></html>')
    assert html_to_text(body) == ("Hello Bob,\nthis is an HTML mail body with a link and "
                                  "UTF-8: Grüße ✓.")


# --- offline queue ---------------------------------------------------------------------------

def test_offline_messages_wait_survive_restart_and_leave_in_order(tmp_path) -> None:
    """Messages to an offline friend are queued on disk; a new service on the same store (a
    restarted node) sends them, in order and with their original send time, on connect."""
    svc, sender, _, clock = make(tmp_path)
    bob = peer(2)
    first = svc.send_private(bob.ssl_id, "one")
    clock.advance(5)
    svc.send_private(bob.ssl_id, "two" * 6000)  # two pieces
    assert first.queued and svc.queued(bob.ssl_id) == 3 and sender.sent == []
    svc.stop()
    svc.store.close()
    again, sender2, _, _ = make(tmp_path, now=0x6B06DF5C + 100)
    again.peer_connected(bob)
    msgs = [i for _, i in sender2.sent if isinstance(i, ChatMsgItem) and i.message]
    assert [(m.message[:5], m.send_time, bool(m.flags & ChatFlags.PARTIAL_MESSAGE))
            for m in msgs] == [("one", 0x6B06DF5C, False), ("twotw", 0x6B06DF61, True),
                               (msgs[2].message[:5], 0x6B06DF61, False)]
    assert "".join(m.message for m in msgs[1:]) == "two" * 6000
    assert again.queued() == 0


def test_full_link_queue_defers_the_rest_in_order(tmp_path) -> None:
    """When the link refuses (its queue is full), the rest of the messages wait and leave in
    order once it takes them again; later messages never pass queued ones."""
    svc, sender, _, clock = make(tmp_path)
    bob = connect(svc)
    real_send = sender.send
    refuse_once = {"m1"}

    def send(p, item) -> bool:
        if isinstance(item, ChatMsgItem) and item.message in refuse_once:
            refuse_once.discard(item.message)
            return False
        return real_send(p, item)

    sender.send = send  # type: ignore[method-assign]
    for n in range(4):
        svc.send_private(bob.ssl_id, f"m{n}")
    assert svc.queued(bob.ssl_id) == 3
    clock.advance(RETRY_PERIOD)
    bodies = [i.message for _, i in sender.sent if isinstance(i, ChatMsgItem)]
    assert bodies == ["m0", "m1", "m2", "m3"] and svc.queued() == 0


def test_too_long_message_refused(tmp_path) -> None:
    """Over 1 MiB a message is refused before anything is sent or stored."""
    svc, sender, _, _ = make(tmp_path)
    bob = connect(svc)
    with pytest.raises(MessageTooLongError):
        svc.send_private(bob.ssl_id, "x" * (1024 * 1024 + 1))
    assert sender.sent == [] and svc.store.history() == []


def test_broadcast_reaches_connected_friends(tmp_path) -> None:
    """A broadcast goes PUBLIC to each connected friend and is recorded once."""
    svc, sender, _, _ = make(tmp_path)
    a, b = connect(svc, peer(2)), connect(svc, peer(3))
    reached = svc.send_broadcast("hello all")
    assert sorted(reached) == sorted([a.ssl_id, b.ssl_id])
    assert sorted((p, i.flags, i.message) for p, i in sender.sent) == sorted(
        [(a.ssl_id, ChatFlags.PUBLIC, "hello all"), (b.ssl_id, ChatFlags.PUBLIC, "hello all")])
    (entry,) = svc.store.history()
    assert entry.peer is None and entry.public and not entry.incoming


def test_history_committed_together_after_the_commit_delay(tmp_path) -> None:
    """History rows written within HISTORY_COMMIT_DELAY reach the file together once it
    passed (another connection sees none before, all after); queued messages are committed
    at once."""
    import sqlite3
    svc, _, _, clock = make(tmp_path)
    bob = connect(svc)
    reader = sqlite3.connect(tmp_path / "chat.sqlite")
    svc.send_private(bob.ssl_id, "m0")
    clock.advance(HISTORY_COMMIT_DELAY / 2)
    for n in range(1, 3):
        svc.send_private(bob.ssl_id, f"m{n}")
    messages = "SELECT COALESCE(SUM(count), 0) FROM blocks"
    assert reader.execute(messages).fetchone() == (0,)
    clock.advance(HISTORY_COMMIT_DELAY / 2)
    assert reader.execute(messages).fetchone() == (3,)
    svc.send_private(peer(9).ssl_id, "to an offline friend")
    assert reader.execute("SELECT COUNT(*) FROM queue").fetchone() == (1,)
    reader.close()


def test_avatar_item_bytes(tmp_path) -> None:
    """Our avatar answer is RsChatAvatarItem: header, u32 length, the image bytes."""
    svc, sender, _, _ = make(tmp_path)
    bob = connect(svc)
    svc.set_avatar(b"\xff\xd8\xff\xd9")
    svc.receive(bob, ChatMsgItem(flags=ChatFlags.PRIVATE | ChatFlags.REQUESTS_AVATAR,
                                 send_time=1, message=""))
    assert wire(sender) == [bytes.fromhex("0200120300000010" "00000004" "ffd8ffd9")]
