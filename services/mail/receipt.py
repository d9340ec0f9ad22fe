# -*- test-case-name: tests.test_mail_receipt -*-
"""Mail receipts between rsproto nodes: a copy leaves the outbox when the receiver committed it.

RetroShare's mail service has no acknowledgement: with a RetroShare peer the outbox can only
know that a copy's last byte went to the link and that the link stayed up `SETTLE_DELAY`
seconds (`services.mail.service`).  Bytes in a dying receiver's socket buffer are lost anyway.
Two rsproto nodes do better: both run this service (id `SERVICE_MAIL_RECEIPT`, ours; see
`pqi.items.ids` for why a RetroShare node never enables it), and

- the receiver sends a `MailReceiptItem` with the mail's `receipt_key` once the mail is in
  its inbox database (committed, or found there already: a copy sent again after a lost
  receipt is acknowledged again);
- the sender, when service control enabled this service with the recipient, keeps each copy
  in its outbox until the receipt with its key arrives, whatever the link did meanwhile; a
  copy written but not acknowledged within `RECEIPT_TIMEOUT` seconds goes again (the
  receiver's dedupe drops it and answers with the receipt).

Which rule a copy follows is decided per recipient when it is sent: `MailReceipts.speaks`.
"""

from __future__ import annotations

import hashlib
import struct
from typing import TYPE_CHECKING, Final

from twisted.internet.interfaces import IReactorTime

from pqi.interfaces import IItemSender, PeerIdentity
from pqi.items.ids import SERVICE_MAIL_RECEIPT
from pqi.items.msg import MsgItem
from pqi.items.receipt import MailReceiptItem
from pqi.wire.fields import Sha256Hash, SslId
from services.base import Service
from services.spec import ServiceSpec

if TYPE_CHECKING:
    from services.mail.service import MailService

__all__ = ["MailReceipts", "receipt_key", "RECEIPT_SPEC", "RECEIPT_TIMEOUT",
           "MAX_UNACKNOWLEDGED", "SERVICE_MAIL_RECEIPT"]

#: A copy written to the link but not acknowledged this long after goes again (s).
RECEIPT_TIMEOUT: Final = 30.0
#: Copies sent to one recipient and not yet acknowledged, at most: the rest wait in the
#: outbox (on disk) until receipts come back.
MAX_UNACKNOWLEDGED: Final = 512


def receipt_key(item: MsgItem) -> Sha256Hash:
    """What both ends compute for one mail: SHA-256 over its send time, subject, body, to/cc
    addresses and attachment hashes (the fields RetroShare does not rewrite on the way; the
    sender is the link's peer, so it is not needed)."""
    h = hashlib.sha256(b"rsproto mail receipt\n")
    h.update(struct.pack(">I", item.send_time))
    for text in (item.subject, item.message):
        data = text.encode("utf-8", "surrogateescape")
        h.update(struct.pack(">I", len(data)) + data)
    for ids in (item.to_peers, item.cc_peers, item.to_ids, item.cc_ids):
        h.update(struct.pack(">I", len(ids)) + b"".join(sorted(bytes(i) for i in ids)))
    files = item.attachment.items
    h.update(struct.pack(">I", len(files)) + b"".join(bytes(f.hash) for f in files))
    return Sha256Hash(h.digest())


#: Announced as ``rsproto_mail_receipt``; after the mail service in the registry (its build
#: attaches to ``node.mail``).
RECEIPT_SPEC: Final = ServiceSpec(
    SERVICE_MAIL_RECEIPT, "rsproto_mail_receipt", attribute="mail_receipts",
    items=(MailReceiptItem,),
    build=lambda node: MailReceipts(node.control, node.reactor, node.mail))


class MailReceipts(Service):
    """Sends receipts for the mails ``mail`` stores and hands it the receipts that arrive.

    ``sender`` is service control (its ``is_enabled(peer, service_id)`` says whether the
    recipient speaks receipts); built after the mail service, it attaches itself to it.
    """

    spec = RECEIPT_SPEC

    def __init__(self, sender: IItemSender, reactor: IReactorTime, mail: MailService) -> None:
        super().__init__(sender, reactor)
        self.mail = mail
        #: Receipts that arrived for no copy we were waiting for (a resent copy's second
        #: receipt, or one from before our restart).
        self.unexpected = 0
        mail.receipts = self

    def speaks(self, peer: SslId) -> bool:
        """Whether ``peer`` negotiated receipts with us (an rsproto node)."""
        is_enabled = getattr(self.sender, "is_enabled", None)
        return bool(is_enabled is not None and is_enabled(peer, SERVICE_MAIL_RECEIPT))

    def acknowledge(self, peer: SslId, item: MsgItem) -> None:
        """``item`` from ``peer`` is in our inbox database: tell ``peer``, if it listens."""
        if self.speaks(peer):
            self.send(peer, MailReceiptItem(keys=(receipt_key(item),)))

    def receive(self, peer: PeerIdentity, item: object) -> None:
        if isinstance(item, MailReceiptItem):
            self.unexpected += self.mail.receipts_received(peer.ssl_id, item.keys)

