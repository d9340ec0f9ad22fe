"""Distant mail's parts: the GXS trans data codecs against the captures, encryption to an
identity key, the outbox and its bounds, and the service's receiving rules (decrypt, once,
permission, receipt) on recording senders and a `Clock`."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock

import pqi
from pqi.items.gxs import decode_grp_meta, decode_msg_meta
from pqi.items.gxstrans import (
    ALL_RECIPIENTS,
    CryptoType,
    TransMail,
    TransReceipt,
    decode_trans_message,
    encode_trans_mail,
    encode_trans_receipt,
    is_trans_group,
    may_be_recipient,
)
from pqi.items.msg import MsgItem
from pqi.items.nxs import NxsGrpItem, NxsPullRequestItem
from pqi.wire.errors import DecodeError
from pqi.wire.fields import GxsId, PgpId, SslId
from services.distant_mail import store as store_module
from services.distant_mail.crypto import SealError, open_sealed, seal
from services.distant_mail.events import DistantMailReceipt, DistantMailReceived
from services.distant_mail.service import MAX_HELD_RECEIPTS, DistantMailService
from services.distant_mail.store import DistantMailStore, Status
from services.gxs.nxs_core import GroupStored, MessageStored
from services.gxs.policy import policy_for
from services.gxs.security import check_message
from services.gxstunnel.distant_chat import DistantChatPermission
from tests.captures2_items import items, raw
from tests.gxs_fixtures import identity_keys, key_pairs
from tests.service_fakes import RecordingSender, peer

CAROL = GxsId.from_hex("bc4cee70aa3d56696221859f5a6f6147")
ALICE = GxsId.from_hex("0ae352e5d8030e0f4f06c72924b8992b")


@pytest.mark.usefixtures("captures2")
def test_captured_mail_and_receipt() -> None:
    """Alice's mail (alice:442) and the receipt carol published (carol:614) decode and
    re-encode byte for byte; both are signed by alice's identity (the receipt was presigned
    by her); the hint admits carol and not alice; the payload is one sealed block to a
    2048-bit key (4 + 256 + 16 bytes of header, whole AES blocks)."""
    mail_item = pqi.decode(raw("alice", 442))
    receipt_item = pqi.decode(raw("carol", 614))
    mail = decode_trans_message(mail_item.msg)
    receipt = decode_trans_message(receipt_item.msg)
    assert isinstance(mail, TransMail) and isinstance(receipt, TransReceipt)
    assert encode_trans_mail(mail) == mail_item.msg
    assert encode_trans_receipt(receipt) == receipt_item.msg
    assert receipt.mail_id == mail.mail_id and mail.crypto_type == CryptoType.RSA
    assert may_be_recipient(mail.recipient_hint, CAROL)
    assert not may_be_recipient(mail.recipient_hint, ALICE)
    assert int.from_bytes(mail.payload[:4], "big") == 256
    assert (len(mail.payload) - 4 - 256 - 16) % 16 == 0
    groups = {g.grp_id: decode_grp_meta(g.meta) for _, _, b in items(frozenset({0x0230}))
              if isinstance(g := pqi.decode(b), NxsGrpItem)}
    for item in (mail_item, receipt_item):
        meta = decode_msg_meta(item.meta)
        assert meta.author_id == ALICE
        group = groups[meta.group_id]
        assert group.name == "Mail" and is_trans_group(
            next(pqi.decode(b).grp for _, _, b in items(frozenset({0x0230}))
                 if isinstance(pqi.decode(b), NxsGrpItem)))
        check_message(item.msg, meta, item.msg_id, group, policy_for(0x0230),
                      identity_keys().get)


def test_trans_data_refuses_garbage() -> None:
    """Wrong service, wrong subtype, short or trailing bytes: DecodeError."""
    good = encode_trans_mail(TransMail(1, CryptoType.RSA, ALL_RECIPIENTS, b"x" * 20))
    for bad in (good[:-1], good + b"\x00", good[:1] + b"\x02\x31" + good[3:],
                good[:3] + b"\x07" + good[4:], b""):
        with pytest.raises(DecodeError):
            decode_trans_message(bad)


@given(mail_id=st.integers(0, 2**64 - 1), crypto=st.integers(0, 255),
       hint=st.binary(min_size=16, max_size=16), payload=st.binary(max_size=200))
def test_trans_mail_round_trip(mail_id: int, crypto: int, hint: bytes, payload: bytes) -> None:
    """Any mail encodes and decodes back equal."""
    mail = TransMail(mail_id, crypto, GxsId(hint), payload)
    assert decode_trans_message(encode_trans_mail(mail)) == mail


@given(salt=st.binary(min_size=16, max_size=16))
def test_hint_always_admits_its_recipient(salt: bytes) -> None:
    """id | salt always admits id (the hint can never exclude the real recipient)."""
    hint = GxsId(bytes(a | b for a, b in zip(CAROL, salt, strict=True)))
    assert may_be_recipient(hint, CAROL) and may_be_recipient(ALL_RECIPIENTS, ALICE)


def test_seal_opens_only_for_its_key() -> None:
    """Sealed data opens with the recipient's private key only; damage is a SealError.

    The envelope is RetroShare's and carries no authentication: with another key, RSA's
    PKCS#1 v1.5 gives a random key back about once in 150 tries and the CBC padding then
    checks out about once in 256, so a wrong key fails with SealError all but about once in
    38,000 and never gives the plaintext (the layers above check what they decode)."""
    mine, other = key_pairs()[0], key_pairs()[1]
    body = b"distant body" * 20
    sealed = seal(body, mine.public)
    assert open_sealed(sealed, mine.private) == body
    for data in (sealed[:-1], b"\xff" * 3, b"\x00\x00\x10\x00"):
        with pytest.raises(SealError):
            open_sealed(data, mine.private)
    refused = 0
    for _ in range(8):
        try:
            opened = open_sealed(seal(body, mine.public), other.private)
        except SealError:
            refused += 1
        else:
            assert opened != body
    assert refused >= 7


def test_outbox_survives_reopen_and_stops_at_its_bound(tmp_path, monkeypatch) -> None:
    """A recorded mail is there after reopening the file; beyond MAX_OUTGOING open mails
    `add` refuses; received hashes stop at MAX_SEEN, oldest forgotten."""
    monkeypatch.setattr(store_module, "MAX_OUTGOING", 3)
    monkeypatch.setattr(store_module, "MAX_SEEN", 5)
    store = DistantMailStore(tmp_path / "d.sqlite")
    ids = [store.add(n, ALICE, CAROL, b"data", 1.0) for n in range(3)]
    with pytest.raises(OverflowError):
        store.add(99, ALICE, CAROL, b"data", 1.0)
    store.set_status(ids[0], Status.RECEIPT, 2.0)
    store.add(100, ALICE, CAROL, b"data", 1.0)
    for n in range(8):
        assert store.first_sight(f"h{n}", float(n))
    assert not store.first_sight("h7", 9.0)
    assert store.first_sight("h0", 10.0)  # forgotten: bounded
    store.close()
    again = DistantMailStore(tmp_path / "d.sqlite")
    assert [(o.mail_id, o.status) for o in again.outgoing()] == [
        (0, Status.RECEIPT), (1, Status.PENDING), (2, Status.PENDING), (100, Status.PENDING)]
    assert again.db.execute("SELECT COUNT(*) FROM seen").fetchone()[0] == 5
    again.close()


class FakeIdentities:
    """Our identities (key pairs) and the public keys we know."""

    def __init__(self, own: list, known: list) -> None:
        self.own = {k.key_id: k for k in own}
        self.known = {k.key_id: k.public for k in own + known}
        self.requested: list = []

    def own_ids(self) -> list[GxsId]:
        return list(self.own)

    def private_key(self, g: GxsId):
        k = self.own.get(g)
        return None if k is None else k.private

    def public_key(self, g: GxsId):
        return self.known.get(g)

    def request(self, g: GxsId, peer_id: SslId) -> None:
        self.requested.append((g, peer_id))

    def pgp_id_of(self, g: GxsId) -> PgpId | None:
        return None


def _service(tmp_path, name: str, own, known, events: list,
             permission=DistantChatPermission.EVERYONE) -> tuple[DistantMailService, Clock]:
    clock = Clock()
    clock.advance(1_800_000_000)
    (tmp_path / name).mkdir()
    service = DistantMailService(RecordingSender(), clock, tmp_path / name,
                                 FakeIdentities(own, known), events.append,
                                 permission=lambda: permission)
    return service, clock


def _copy_to(src: DistantMailService, dst: DistantMailService, sender: SslId) -> None:
    """Hand everything ``src`` stores to ``dst`` as if synced from ``sender``."""
    for grp_id, _, _ in src.gxs_store.groups():
        g = src.gxs_store.group(grp_id)
        if not dst.gxs_store.has_group(grp_id):
            dst.gxs_store.put_group(g.grp, g.meta_bytes, 0, subscribed=True)
            dst._event(GroupStored(0x0230, grp_id, sender))
        for msg_id, _ in src.gxs_store.message_ids(grp_id):
            if not dst.gxs_store.has_message(msg_id):
                m = src.gxs_store.message(msg_id)
                dst.gxs_store.put_message(m.msg, m.meta_bytes, 0)
                dst._event(MessageStored(0x0230, grp_id, msg_id, sender))


def test_mail_goes_once_and_the_receipt_comes_back(tmp_path) -> None:
    """Alice's mail to carol's identity: published signed by alice, readable only by carol,
    delivered once even when it comes twice, and carol's publishing of the presigned receipt
    ends alice's outgoing mail."""
    a, c = key_pairs()[0], key_pairs()[1]
    a_events: list = []
    c_events: list = []
    alice, _ = _service(tmp_path, "alice", [a], [c], a_events)
    carol, _ = _service(tmp_path, "carol", [c], [a], c_events)
    [local] = alice.send_mail(a.key_id, [c.key_id], "Subject ✉", "<p>Body</p>")
    assert alice.store.by_local_id(local).status is Status.PUBLISHED
    stored = [alice.gxs_store.message(m) for g, _, _ in alice.gxs_store.groups()
              for m, _ in alice.gxs_store.message_ids(g)]
    assert len(stored) == 1
    assert b"Subject" not in stored[0].msg and b"Body" not in stored[0].msg
    check_message(stored[0].msg, stored[0].meta, stored[0].meta.msg_id,
                  alice.gxs_store.group_meta(stored[0].meta.group_id), policy_for(0x0230),
                  alice.identities.public_key)
    bob = peer(2).ssl_id
    _copy_to(alice, carol, bob)
    again = MessageStored(0x0230, stored[0].meta.group_id, stored[0].meta.msg_id, peer(3).ssl_id)
    carol._event(again)  # the same mail once more (another friend, another route)
    assert carol.dropped == {"mail seen before": 1}
    received = [e for e in c_events if isinstance(e, DistantMailReceived)]
    assert [(e.author, e.recipient, e.subject) for e in received] == [
        (a.key_id, c.key_id, "Subject ✉")]
    _copy_to(carol, alice, bob)
    assert [(e.local_id, e.recipient) for e in a_events
            if isinstance(e, DistantMailReceipt)] == [(local, c.key_id)]
    assert alice.store.by_local_id(local).status is Status.RECEIPT


def test_refusing_node_refuses_distant_mail(tmp_path) -> None:
    """With the distant-mail permission "no one", a mail is not delivered and no receipt
    is published; someone else's node (not a recipient) cannot read it either."""
    a, c, x = key_pairs()[0], key_pairs()[1], key_pairs()[2]
    events: list = []
    alice, _ = _service(tmp_path, "alice", [a], [c], [])
    carol, _ = _service(tmp_path, "carol", [c], [a], events, DistantChatPermission.NO_ONE)
    other, _ = _service(tmp_path, "other", [x], [a], events)
    alice.send_mail(a.key_id, [c.key_id], "s", "b")
    _copy_to(alice, carol, peer(2).ssl_id)
    _copy_to(alice, other, peer(2).ssl_id)
    assert not [e for e in events if isinstance(e, DistantMailReceived)]
    assert carol.dropped == {"refused by the distant-mail permission": 1}
    assert sum(1 for g, _, _ in carol.gxs_store.groups()
               for _ in carol.gxs_store.message_ids(g)) == 1  # alice's mail only, no receipt


def test_unknown_recipient_key_is_asked_for_and_waits(tmp_path) -> None:
    """Without the recipient's key the mail waits (PENDING) and friends are asked for the
    identity every round; it leaves as soon as the key is known."""
    a, c = key_pairs()[0], key_pairs()[1]
    alice, clock = _service(tmp_path, "alice", [a], [], [])
    alice.peer_connected(peer(2))
    [local] = alice.send_mail(a.key_id, [c.key_id], "s", "b")
    assert alice.store.by_local_id(local).status is Status.PENDING
    assert (c.key_id, peer(2).ssl_id) in alice.identities.requested
    alice.identities.known[c.key_id] = c.public
    alice.process()
    assert alice.store.by_local_id(local).status is Status.PUBLISHED


def test_store_and_forward_asks_other_friends_to_pull(tmp_path) -> None:
    """A relay storing a mail message from one friend asks its other friends to pull now."""
    a, b, x = key_pairs()[0], key_pairs()[1], key_pairs()[2]
    alice, _ = _service(tmp_path, "alice", [a], [b], [])
    relay, clock = _service(tmp_path, "relay", [x], [a], [])
    for n in (2, 3):
        relay.peer_connected(peer(n))
    clock.advance(0)  # the relay's first round (it makes its own group)
    alice.send_mail(a.key_id, [b.key_id], "s", "b")
    relay.sender.sent.clear()
    _copy_to(alice, relay, peer(2).ssl_id)
    clock.advance(0)
    pulls = [p for p, item in relay.sender.sent if isinstance(item, NxsPullRequestItem)]
    assert pulls == [peer(3).ssl_id]


def test_held_receipts_are_bounded(tmp_path) -> None:
    """Receipts waiting for their group stop at MAX_HELD_RECEIPTS (oldest dropped)."""
    a, c = key_pairs()[0], key_pairs()[1]
    carol, _ = _service(tmp_path, "carol", [c], [a], [])
    alice, _ = _service(tmp_path, "alice", [a], [c], [])
    alice.send_mail(a.key_id, [c.key_id], "s", "b")
    group = next(iter(alice.gxs_store.groups()))[0]
    msg_id = alice.gxs_store.message_ids(group)[0][0]
    m = alice.gxs_store.message(msg_id)
    payload = open_sealed(decode_trans_message(m.msg).payload, c.private)
    size = int.from_bytes(payload[6:10], "big")
    receipt = pqi.decode(payload[2:2 + size])
    for _ in range(MAX_HELD_RECEIPTS + 10):
        carol._publish_receipt(receipt, decode_trans_message(receipt.msg).mail_id)
    assert len(carol._held) == MAX_HELD_RECEIPTS
    assert isinstance(pqi.decode(payload[2 + size:]), MsgItem)
