"""Mail receipts between rsproto nodes (issue 14, "delivery known, not guessed"): a copy
leaves the outbox when the receiver committed it; a RetroShare peer (which never negotiates
the receipt service) never sees a receipt and keeps the settle rule."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from twisted.internet.testing import MemoryReactorClock

from pqi.items.ids import SERVICE_MAIL_RECEIPT
from pqi.items.msg import MsgItem
from pqi.wire.item import decode, encode
from services.mail.receipt import MAX_UNACKNOWLEDGED, RECEIPT_TIMEOUT, receipt_key
from services.mail.service import SETTLE_DELAY
from tests.mail_pair import BOB, MailPair

#: Steps a test drives at most.
MAX_STEPS = 400
#: Bytes moved per step (more than one mail).
CHUNK = 1 << 16


def _clock() -> MemoryReactorClock:
    clock = MemoryReactorClock()
    clock.advance(1_700_000_000)
    return clock


def test_receipt_key_is_the_same_on_both_ends(tmp_path: Path) -> None:
    """The key alice computes from her outbox copy is the one bob computes from the item he
    decoded; another subject or send time gives another key."""
    pair = MailPair(tmp_path, _clock(), receipts=True)
    pair.alice.send_mail([BOB.ssl_id], "hello", "<p>body</p>")
    (entry,) = pair.alice.store.pending(BOB.ssl_id)
    ours = decode(entry.item)
    assert isinstance(ours, MsgItem)
    theirs = decode(encode(ours))
    assert receipt_key(ours) == receipt_key(theirs)  # type: ignore[arg-type]
    assert receipt_key(ours) != receipt_key(dataclasses.replace(ours, subject="hello!"))
    assert receipt_key(ours) != receipt_key(dataclasses.replace(ours, send_time=ours.send_time + 1))
    pair.close()


def test_copy_leaves_the_outbox_only_when_bob_committed_it(tmp_path: Path) -> None:
    """With receipts, a copy written to the link long ago but still in bob's socket buffer
    stays in the outbox (no MailDelivered); once bob read it and his receipt came back it is
    delivered, once."""
    clock = _clock()
    pair = MailPair(tmp_path, clock, receipts=True)
    mail_id = pair.alice.send_mail([BOB.ssl_id], "s", "b")
    pair.carry(CHUNK, CHUNK)
    clock.advance(10 * SETTLE_DELAY)
    assert pair.bob_buffer and pair.delivered == []
    assert pair.alice.outbox() == [(mail_id, BOB.ssl_id)]
    pair.process_bob(CHUNK)
    assert pair.received == ["s"] and pair.delivered == []  # the receipt is on its way
    pair.carry(CHUNK, CHUNK)
    assert pair.delivered == [mail_id] and pair.alice.outbox() == []
    assert SERVICE_MAIL_RECEIPT in pair.bob_sender.services
    pair.close()


def test_retroshare_peer_gets_no_receipt_and_the_settle_rule_holds(tmp_path: Path) -> None:
    """Without the receipt service negotiated (a RetroShare peer), bob sends no receipt item
    and alice marks the copy delivered `SETTLE_DELAY` after its last byte was written."""
    clock = _clock()
    pair = MailPair(tmp_path, clock, receipts=False)
    mail_id = pair.alice.send_mail([BOB.ssl_id], "s", "b")
    pair.carry(CHUNK, CHUNK)
    pair.process_bob(CHUNK)
    assert pair.received == ["s"] and pair.delivered == []
    clock.advance(SETTLE_DELAY + 0.1)
    assert pair.delivered == [mail_id] and pair.alice.outbox() == []
    assert SERVICE_MAIL_RECEIPT not in pair.bob_sender.services
    pair.close()


def test_unacknowledged_copy_goes_again_and_is_stored_once(tmp_path: Path) -> None:
    """A copy bob never read (lost on a link that stayed up) goes again `RECEIPT_TIMEOUT` s
    after it was written; bob stores the mail once, acknowledges, and it is delivered."""
    clock = _clock()
    pair = MailPair(tmp_path, clock, receipts=True)
    mail_id = pair.alice.send_mail([BOB.ssl_id], "s", "b")
    pair.carry(CHUNK, CHUNK)
    pair.bob_buffer = b""  # the copy vanished without the link noticing
    clock.advance(RECEIPT_TIMEOUT + 0.1)
    assert pair.delivered == []
    for _ in range(MAX_STEPS):
        pair.carry(CHUNK, CHUNK)
        pair.process_bob(CHUNK)
        clock.advance(0.1)
        if pair.delivered:
            break
    assert pair.delivered == [mail_id] and pair.received == ["s"]
    assert [m.subject for m in pair.bob.inbox()] == ["s"]
    pair.close()


def test_unacknowledged_copies_are_bounded(tmp_path: Path) -> None:
    """Alice sends at most MAX_UNACKNOWLEDGED copies bob has not acknowledged; the rest wait
    in the outbox and go as receipts come back, until all arrived."""
    clock = _clock()
    pair = MailPair(tmp_path, clock, receipts=True)
    total = MAX_UNACKNOWLEDGED + 100
    for n in range(total):
        pair.alice.send_mail([BOB.ssl_id], f"m{n}", "x")
    for _ in range(MAX_STEPS):
        pair.carry(CHUNK, 0)
    assert len(pair.alice._in_flight[BOB.ssl_id]) == MAX_UNACKNOWLEDGED
    for _ in range(MAX_STEPS):
        pair.carry(CHUNK, CHUNK)
        pair.process_bob(CHUNK)
        assert len(pair.alice._in_flight.get(BOB.ssl_id, ())) <= MAX_UNACKNOWLEDGED
        if len(pair.delivered) == total:
            break
    assert len(pair.delivered) == total and pair.alice.outbox() == []
    pair.close()
