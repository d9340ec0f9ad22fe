"""Mail service: RetroShare's bytes, an outbox that lets a copy go only once it was written to
a live link, an inbox that never shows a mail twice.

Links here are real `PQIStreamer` objects over Twisted's `StringTransport`, on a
`MemoryReactorClock`; stores are real sqlite files.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from hypothesis import given, settings
from twisted.internet.testing import MemoryReactorClock, StringTransport

import pqi
from pqi.interfaces import DisconnectReason, PeerIdentity
from pqi.items.msg import MsgFlags, MsgItem
from pqi.wire.fields import Sha1Hash, SslId
from pqi.wire.framing import Deframer, ItemReceived
from pqi.wire.streamer import PQIStreamer
from pqi.wire.tlvvalues import FileItem, FileSet
from services.mail.service import (
    SETTLE_DELAY,
    MailDelivered,
    MailReceived,
    MailService,
    MailTooLargeError,
    NoRecipientError,
    UnknownMailError,
)
from services.mail.store import MailStore, mail_key
from tests.service_fakes import peer
from tests.strategies_items import items

ALICE = SslId.from_hex("86192d6a6926c8af956f3601f1a77d19")
BOB = SslId.from_hex("4ea22c330cebe3bec367aef3aaf496b6")


def captured(captures, name: str, line: int) -> bytes:
    with open(captures / f"{name}.items.jsonl") as f:
        for n, text in enumerate(f, 1):
            if n == line:
                return bytes.fromhex(json.loads(text)["hex"])
    raise AssertionError(f"{name}:{line} missing")


class Links:
    """An IItemSender over one real streamer per connected peer."""

    def __init__(self, clock: MemoryReactorClock) -> None:
        self.clock = clock
        self.links: dict[SslId, tuple[PQIStreamer, StringTransport]] = {}

    def up(self, ssl_id: SslId) -> tuple[PQIStreamer, StringTransport]:
        s = PQIStreamer(self.clock)
        t = StringTransport()
        s.makeConnection(t)
        self.links[ssl_id] = (s, t)
        return s, t

    def down(self, ssl_id: SslId) -> None:
        s, t = self.links.pop(ssl_id)
        s.connectionLost()

    def send(self, ssl_id: SslId, item: object):
        """As the node's sender: the link's Sent handle, False without a link."""
        link = self.links.get(ssl_id)
        if link is None:
            return False
        return link[0].send(item)  # type: ignore[arg-type]

    def connected_peers(self) -> list:
        return []

    def link_of(self, ssl_id: SslId):
        link = self.links.get(ssl_id)
        return None if link is None else link[0]

    def items(self, ssl_id: SslId) -> list:
        """Items written so far to ``ssl_id``'s transport (probes dropped)."""
        data = self.links[ssl_id][1].value()
        return [pqi.decode(e.data) for e in Deframer().feed(data) if isinstance(e, ItemReceived)]


def make(tmp_path, name: str = "mail", now: float = 0x6B06DF72):
    clock = MemoryReactorClock()
    clock.advance(now)
    links = Links(clock)
    events: list = []
    svc = MailService(links, clock, MailStore(tmp_path / f"{name}.sqlite"), links.link_of,
                      events.append)
    return svc, links, events, clock


def connect(svc: MailService, links: Links, who):
    links.up(who.ssl_id)
    svc.peer_connected(who)


# --- bytes -----------------------------------------------------------------------------------

def test_copy_is_retroshares_mail(tmp_path, captures) -> None:
    """alice:262: the same subject, HTML body and recipient at the same second give the
    captured 278-byte RsMsgItem (flags OUTGOING|PENDING, receive time = send time)."""
    svc, links, _, _ = make(tmp_path)
    connect(svc, links, PeerIdentity(BOB, peer(2).pgp_id, "bob"))
    body = ('<html><body><p>Hello <b>Bob</b>,</p><p>this is an <i>HTML</i> mail body with a '
            '<a href="retroshare://file?name=x">link</a> and UTF-8: Grüße ✓.</p></body></html>')
    svc.send_mail([BOB], "Test mail from alice ✉", body)
    assert [pqi.encode(i) for i in links.items(BOB)] == [captured(captures, "alice", 262)]


def test_copy_with_attachment_is_retroshares(tmp_path, captures) -> None:
    """bob:1204: a reply with one attached file (name, size, SHA-1) is byte-identical."""
    svc, links, _, _ = make(tmp_path, now=0x6B06E145)
    connect(svc, links, PeerIdentity(ALICE, peer(1).pgp_id, "alice"))
    svc.send_mail([ALICE], "Re: Test mail from alice ✉ (with attachment)",
                  "<html><body><p>Hi alice, here is the reply <b>with</b> a file attached: "
                  "hello-from-bob.txt.</p></body></html>",
                  attachments=[FileItem(115, Sha1Hash.from_hex(
                      "4c229910f03cc27e474fd07a113237a6c90f6da0"), "hello-from-bob.txt")])
    assert [pqi.encode(i) for i in links.items(ALICE)] == [captured(captures, "bob", 1204)]


def test_bcc_recipients_stay_hidden(tmp_path) -> None:
    """Each bcc recipient sees itself alone in the bcc set; to and cc see no bcc at all."""
    svc, links, _, _ = make(tmp_path)
    a, b, c = peer(2), peer(3), peer(4)
    for p in (a, b, c):
        connect(svc, links, p)
    svc.send_mail([a.ssl_id], "s", "b", cc=[b.ssl_id], bcc=[c.ssl_id])
    (ia,), (ib,), (ic,) = links.items(a.ssl_id), links.items(b.ssl_id), links.items(c.ssl_id)
    assert ia.bcc_peers == ib.bcc_peers == frozenset()
    assert ic.bcc_peers == {c.ssl_id}
    assert ia.to_peers == ic.to_peers == {a.ssl_id} and ia.cc_peers == {b.ssl_id}


# --- outbox ----------------------------------------------------------------------------------

def test_copy_delivered_only_after_write_and_settle(tmp_path) -> None:
    """A copy is pending while its link holds it back (transport paused), still pending right
    after the write, and delivered once the link stayed up for the settle delay."""
    svc, links, events, clock = make(tmp_path)
    bob = peer(2)
    connect(svc, links, bob)
    streamer, _ = links.links[bob.ssl_id]
    streamer.pauseProducing()
    mail_id = svc.send_mail([bob.ssl_id], "hi", "body")
    clock.advance(SETTLE_DELAY * 3)
    assert svc.outbox() == [(mail_id, bob.ssl_id)] and links.items(bob.ssl_id) == []
    streamer.resumeProducing()
    assert [i.subject for i in links.items(bob.ssl_id)] == ["hi"]
    assert svc.outbox() == [(mail_id, bob.ssl_id)]
    clock.advance(SETTLE_DELAY)
    assert svc.outbox() == [] and events == [MailDelivered(mail_id, bob.ssl_id)]


def test_link_lost_before_settle_keeps_copy_for_next_link(tmp_path) -> None:
    """Written, but the link died within the settle delay: the copy stays and goes again on
    the next link (the receiver drops the duplicate)."""
    svc, links, events, clock = make(tmp_path)
    bob = peer(2)
    connect(svc, links, bob)
    mail_id = svc.send_mail([bob.ssl_id], "hi", "body")
    links.down(bob.ssl_id)
    svc.peer_disconnected(bob, DisconnectReason.CLOSED)
    clock.advance(SETTLE_DELAY)
    assert svc.outbox() == [(mail_id, bob.ssl_id)] and events == []
    connect(svc, links, bob)
    assert [i.subject for i in links.items(bob.ssl_id)] == ["hi"]
    clock.advance(SETTLE_DELAY)
    assert svc.outbox() == []


def test_sliced_copy_seen_through_its_last_slice(tmp_path) -> None:
    """A copy bigger than one slice (slicing on) counts as written when its last slice is."""
    svc, links, events, clock = make(tmp_path)
    bob = peer(2)
    connect(svc, links, bob)
    links.links[bob.ssl_id][0].enframer.enable_slicing()
    svc.send_mail([bob.ssl_id], "big", "x" * 5000)
    assert [len(i.message) for i in links.items(bob.ssl_id)] == [5000]
    clock.advance(SETTLE_DELAY)
    assert svc.outbox() == [] and len(events) == 1


def test_offline_recipient_and_restart(tmp_path) -> None:
    """Mail to an offline friend is on disk when send_mail returns; a new service on the same
    file (the sender restarted) delivers it when the friend connects; the online recipient of
    the same mail got it at once."""
    svc, links, _, clock = make(tmp_path)
    online, offline = peer(2), peer(3)
    connect(svc, links, online)
    mail_id = svc.send_mail([online.ssl_id, offline.ssl_id], "both", "b")
    clock.advance(SETTLE_DELAY)
    assert svc.outbox() == [(mail_id, offline.ssl_id)]
    svc.stop()
    svc.store.close()
    again, links2, _, clock2 = make(tmp_path)
    connect(again, links2, offline)
    assert [i.subject for i in links2.items(offline.ssl_id)] == ["both"]
    clock2.advance(SETTLE_DELAY)
    assert again.outbox() == []
    assert [r for _, _, _, r in again.store.sent()][0][online.ssl_id.to_hex()] is not None


def test_full_link_retries_in_order(tmp_path) -> None:
    """A link that refuses a copy gets it (and those after it) again shortly, in order."""
    svc, links, _, clock = make(tmp_path)
    bob = peer(2)
    connect(svc, links, bob)
    refused = []
    real = links.send

    def send(ssl_id, item) -> bool:
        if item.subject == "m1" and not refused:
            refused.append(item)
            return False
        return real(ssl_id, item)

    links.send = send  # type: ignore[method-assign]
    for n in range(3):
        svc.send_mail([bob.ssl_id], f"m{n}", "b")
    clock.advance(1)
    assert [i.subject for i in links.items(bob.ssl_id)] == ["m0", "m1", "m2"]
    clock.advance(SETTLE_DELAY)
    assert svc.outbox() == []


def test_compose_errors(tmp_path) -> None:
    """No recipient, or more than one item can carry: refused, nothing stored."""
    svc, _, _, _ = make(tmp_path)
    with pytest.raises(NoRecipientError):
        svc.send_mail([], "s", "b")
    with pytest.raises(MailTooLargeError):
        svc.send_mail([peer(2).ssl_id], "s", "x" * 300000)
    assert svc.store.sent() == []


def test_same_content_same_second_gets_distinct_send_times(tmp_path) -> None:
    """Two identical mails in one second get send times one apart, so receivers keep both."""
    svc, links, _, clock = make(tmp_path)
    bob = peer(2)
    connect(svc, links, bob)
    svc.send_mail([bob.ssl_id], "same", "same")
    svc.send_mail([bob.ssl_id], "same", "same")
    clock.advance(0)  # the turn's second send leaves at the turn's end
    first, second = links.items(bob.ssl_id)
    assert second.send_time == first.send_time + 1
    assert mail_key(ALICE, first) != mail_key(ALICE, second)


# --- inbox -----------------------------------------------------------------------------------

def mail(n: int = 0, **kw) -> MsgItem:
    base = dict(flags=MsgFlags.OUTGOING | MsgFlags.PENDING, send_time=100 + n,
                recv_time=100 + n, subject=f"subject {n}", message=f"<p>body {n}</p>",
                to_peers=frozenset({BOB}))
    base.update(kw)
    return MsgItem(**base)


def test_duplicate_copies_never_show_twice(tmp_path) -> None:
    """The same mail arriving again (even with other flags or receive time, even after it was
    deleted) is dropped and counted; the first arrival is reported once."""
    svc, _, events, _ = make(tmp_path)
    alice = peer(1)
    svc.receive(alice, mail(1))
    svc.receive(alice, mail(1, flags=MsgFlags.NEW, recv_time=5))
    assert len(svc.inbox()) == 1 and svc.duplicates == 1
    (only,) = [e for e in events if isinstance(e, MailReceived)]
    svc.delete(only.mail.id)
    svc.receive(alice, mail(1))
    assert svc.inbox() == [] and svc.duplicates == 2
    svc.receive(peer(3), mail(1))  # same content from another friend: another mail
    assert len(svc.inbox()) == 1


def test_inbox_read_tags_delete(tmp_path) -> None:
    """Mails start unread; read, tags and delete change what the inbox lists."""
    svc, _, _, _ = make(tmp_path)
    alice = peer(1)
    for n in range(3):
        svc.receive(alice, mail(n))
    ids = [m.id for m in svc.inbox()]
    svc.mark_read(ids[0])
    svc.tag(ids[1], "work")
    svc.tag(ids[1], "urgent")
    svc.untag(ids[1], "urgent")
    svc.delete(ids[2])
    assert [m.id for m in svc.inbox(unread_only=True)] == [ids[1]]
    assert [m.id for m in svc.inbox(tag="work")] == [ids[1]]
    assert svc.mail(ids[1]).tags == ("work",) and svc.mail(ids[0]).read
    assert svc.mail(ids[0]).text == "body 0"
    with pytest.raises(UnknownMailError):
        svc.mail(ids[2])
    with pytest.raises(UnknownMailError):
        svc.mark_read(999)


def test_reply_and_forward_drafts(tmp_path) -> None:
    """Reply goes to the sender (reply-all adds the others but not us) with "Re:"; forward
    keeps the attachments with "Fwd:"; both quote the original."""
    svc, _, _, _ = make(tmp_path)
    alice, carol = peer(1), peer(3)
    att = FileItem(3, Sha1Hash(b"\x01" * 20), "f.txt")
    svc.receive(alice, mail(0, cc_peers=frozenset({carol.ssl_id}),
                            attachment=FileSet(items=(att,))))
    (m,) = svc.inbox()
    reply = svc.reply(m.id, "thanks", reply_all=True, own=BOB)
    assert reply.to == (alice.ssl_id,) and reply.cc == (carol.ssl_id,)
    assert reply.subject == "Re: subject 0" and "body 0" in reply.body
    assert reply.body.startswith("thanks")
    fwd = svc.forward(m.id, [carol.ssl_id], "fyi")
    assert fwd.subject == "Fwd: subject 0" and fwd.attachments == (att,)
    assert fwd.to == (carol.ssl_id,)


@pytest.mark.slow
@settings(max_examples=50)
@given(items(MsgItem))
def test_any_mail_round_trips_through_the_inbox(tmp_path_factory, item) -> None:
    """Any RsMsgItem stored in the inbox comes back equal, and its key ignores flags and
    receive time."""
    store = MailStore(tmp_path_factory.mktemp("m") / "m.sqlite")
    mail_id = store.add_incoming(ALICE, item, 1.0)
    assert mail_id is not None and store.get(mail_id).item == item
    changed = MsgItem(**{**{f: getattr(item, f) for f in (
        "subject", "message", "to_peers", "cc_peers", "bcc_peers", "to_ids", "cc_ids",
        "bcc_ids", "attachment", "send_time")}, "flags": MsgFlags.NEW, "recv_time": 0})
    assert store.add_incoming(ALICE, changed, 2.0) is None
    store.close()


def test_link_replaced_before_settle_resends_on_new_link(tmp_path) -> None:
    """Written on a link that another link replaced (no disconnect in between, as after a
    simultaneous-connect tie-break): at settle time the copy goes again on the new link."""
    svc, links, events, clock = make(tmp_path)
    bob = peer(2)
    connect(svc, links, bob)
    mail_id = svc.send_mail([bob.ssl_id], "hi", "body")
    links.up(bob.ssl_id)  # the new link replaces the old one
    clock.advance(SETTLE_DELAY)
    assert [i.subject for i in links.items(bob.ssl_id)] == ["hi"] and events == []
    clock.advance(SETTLE_DELAY)
    assert svc.outbox() == [] and events == [MailDelivered(mail_id, bob.ssl_id)]


#: What a wire decoder makes of "café" in Latin-1 followed by a stray byte.
JUNK = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")


def test_mail_not_utf8_is_received_replied_to_and_kept(tmp_path) -> None:
    """A friend's mail whose subject and body are not UTF-8 is listed; the reply quoting them
    is stored (it used to fail: sqlite cannot bind a lone surrogate), leaves with the friend's
    exact bytes, and is read back identical; later mails are still stored."""
    svc, links, _, _ = make(tmp_path)
    alice = peer(1)
    connect(svc, links, alice)
    svc.receive(alice, mail(0, subject=JUNK, message=JUNK))
    (m,) = svc.inbox()
    assert m.subject == JUNK
    reply = svc.reply(m.id, "ok", own=BOB)
    mail_id = svc.send_draft(reply)
    (copy,) = links.items(alice.ssl_id)
    assert copy.subject.encode("utf-8", "surrogateescape") == b"Re: caf\xe9 \xff"
    assert [s[2] for s in svc.store.sent()] == ["Re: " + JUNK]
    assert svc.store.sent_body(mail_id) == reply.body and JUNK in reply.body
    assert svc.store.latest_send_time("Re: " + JUNK, reply.body) == copy.send_time
    svc.send_mail([alice.ssl_id], "next", "fine")
    assert [s[2] for s in svc.store.sent()] == ["Re: " + JUNK, "next"]


def test_sent_rows_of_the_old_layout_still_read(tmp_path) -> None:
    """A database written before (subjects and bodies as TEXT) reads as it did: same subject,
    same body, the send-time lookup still finds the row."""
    path = tmp_path / "old.sqlite"
    MailStore(path).close()
    db = sqlite3.connect(path)
    with db:
        db.execute("INSERT INTO sent (send_time, subject, body, created) VALUES "
                   "(7, 'héllo', 'wörld', 1.0)")
    db.close()
    store = MailStore(path)
    assert [(s[1], s[2]) for s in store.sent()] == [(7, "héllo")]
    assert store.sent_body(1) == "wörld"
    assert store.latest_send_time("héllo", "wörld") == 7
    store.close()


def test_json_api_lists_a_mail_not_utf8_as_valid_utf8(tmp_path) -> None:
    """Over the JSON API, a received mail and a sent reply whose subject and body are not
    UTF-8 are listed and shown: each answer is valid UTF-8 JSON, each bad byte a U+FFFD."""
    import types

    from services.jsonapi import rs_mail
    from services.jsonapi.api import ApiContext
    from services.jsonapi.encoding import Params, pretty
    svc, links, _, clock = make(tmp_path)
    alice = peer(1)
    connect(svc, links, alice)
    svc.receive(alice, mail(0, subject=JUNK, message=JUNK))
    (m,) = svc.inbox()
    sent_id = svc.send_draft(svc.reply(m.id, "ok", own=BOB))
    ctx = ApiContext(types.SimpleNamespace(mail=svc, ssl_id=BOB), clock)

    def call(handler, **params) -> dict:
        return json.loads(pretty(handler(ctx, Params(params))).decode("utf-8"))

    shown = "caf\ufffd \ufffd"
    listed = call(rs_mail.get_message_summaries, box=rs_mail.Box.ALL)["msgList"]
    assert [r["title"] for r in listed] == [shown, "Re: " + shown]
    got = call(rs_mail.get_message, msgId=str(m.id))["msg"]
    assert (got["title"], got["msg"]) == (shown, shown)
    reply = call(rs_mail.get_message, msgId=str(rs_mail.SENT_BASE + sent_id))["msg"]
    assert reply["title"] == "Re: " + shown and shown in reply["msg"]
