"""The global router's receiving side: captured routed mail checks out (alice's signature over
what `signed_bytes` says), whole transactions are acknowledged, mail for our identity is
filed once whichever way it came, and the transaction table is bounded."""

from __future__ import annotations

import os

import pytest
from twisted.internet.task import Clock

import pqi
from pqi.items.grouter import (
    GRouterChunk,
    GRouterDataItem,
    GRouterFlags,
    GRouterTransactionAcknItem,
    GRouterTransactionChunkItem,
)
from pqi.items.msg import MsgFlags, MsgItem
from services.distant_mail import grouter as grouter_module
from services.distant_mail.crypto import seal
from services.distant_mail.events import DistantMailReceived
from services.distant_mail.grouter import MAIL_CLIENT_ID, GRouterService, signed_bytes
from services.gxs.security import sign, verify_ok
from tests.captures2_items import raw
from tests.gxs_fixtures import identity_keys, key_pairs
from tests.service_fakes import RecordingSender, peer
from tests.test_distant_mail import FakeIdentities, _service


@pytest.mark.usefixtures("captures2")
def test_captured_routed_mail_is_signed_by_its_sender() -> None:
    """Alice's routed mail (alice:420) holds a data item for carol's identity whose
    signature by alice's identity holds over `signed_bytes`, and fails over anything else."""
    data = pqi.decode(pqi.decode(raw("alice", 420)).chunk.data)
    key = identity_keys()[data.signature.key_id]
    assert verify_ok(signed_bytes(data), key, data.signature)
    assert not verify_ok(pqi.encode(data), key, data.signature)
    assert data.service_id == MAIL_CLIENT_ID


def _routed(author, recipient, mail: MsgItem, routing_id: int = 7) -> GRouterDataItem:
    sealed = seal(pqi.encode(mail), recipient.public)
    item = GRouterDataItem(routing_id, recipient.key_id, MAIL_CLIENT_ID, sealed,
                           sign(b"", author.private), 10, GRouterFlags.ENCRYPTED)
    return GRouterDataItem(routing_id, recipient.key_id, MAIL_CLIENT_ID, sealed,
                           sign(signed_bytes(item), author.private), 10,
                           GRouterFlags.ENCRYPTED)


def _chunks(item: GRouterDataItem, pid: int, size: int = 300) -> list:
    whole = pqi.encode(item)
    return [GRouterTransactionChunkItem(pid, GRouterChunk(n, len(whole), whole[n:n + size]))
            for n in range(0, len(whole), size)]


def test_routed_mail_is_filed_once_and_acknowledged(tmp_path) -> None:
    """Chunks out of order make one transaction, acknowledged when whole; the mail is filed;
    the same mail through GXS trans later is dropped as seen; a forged signature is not
    filed."""
    a, c = key_pairs()[0], key_pairs()[1]
    events: list = []
    carol_mail, _ = _service(tmp_path, "carol", [c], [a], events)
    sender = RecordingSender()
    router = GRouterService(sender, Clock(), carol_mail)
    mail = MsgItem(MsgFlags.OUTGOING, 5, 5, "routed ✉", "<p>hi</p>", to_ids=frozenset({c.key_id}))
    chunks = _chunks(_routed(a, c, mail), 0x1234)
    assert len(chunks) > 2
    for chunk in reversed(chunks):
        router.receive(peer(2), chunk)
    assert [(p, type(i), i.propagation_id) for p, i in sender.sent] == [
        (peer(2).ssl_id, GRouterTransactionAcknItem, 0x1234)]
    assert [(e.author, e.subject) for e in events] == [(a.key_id, "routed ✉")]
    assert carol_mail.accept_mail(a.key_id, c.key_id, mail, pqi.encode(mail)) is False
    forged = _routed(key_pairs()[2], c, MsgItem(MsgFlags(0), 6, 6, "forged", ""), 9)
    forged = GRouterDataItem(forged.routing_id, forged.destination_key, forged.service_id,
                             forged.data, type(forged.signature)(a.key_id,
                                                                 forged.signature.sign_data),
                             10, GRouterFlags.ENCRYPTED)
    for chunk in _chunks(forged, 0x99):
        router.receive(peer(2), chunk)
    assert router.dropped["routed data badly signed"] == 1
    assert len([e for e in events if isinstance(e, DistantMailReceived)]) == 1


def test_transactions_are_bounded_and_bad_chunks_dropped(tmp_path, monkeypatch) -> None:
    """Never more than MAX_TRANSACTIONS half-received transactions; chunks beyond their total
    or over MAX_TRANSACTION_SIZE are dropped."""
    monkeypatch.setattr(grouter_module, "MAX_TRANSACTIONS", 4)
    router = GRouterService(RecordingSender(), Clock(),
                            type("M", (), {"identities": FakeIdentities([], [])})())
    for pid in range(10):
        router.receive(peer(2), GRouterTransactionChunkItem(pid, GRouterChunk(0, 100,
                                                                              os.urandom(10))))
    assert len(router.transactions) == 4
    router.receive(peer(2), GRouterTransactionChunkItem(1, GRouterChunk(95, 100, b"x" * 10)))
    router.receive(peer(2), GRouterTransactionChunkItem(
        2, GRouterChunk(0, grouter_module.MAX_TRANSACTION_SIZE + 1, b"x")))
    assert router.dropped["bad chunk"] == 2
