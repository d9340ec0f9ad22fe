# -*- test-case-name: tests.test_mail_receipt -*-
"""Mail receipts (service 0x7E01, rsproto's own): "I committed these mails to my inbox".

RetroShare's mail has no acknowledgement, and RsMsgItem carries no message id.  Between two
rsproto nodes the receiver answers each mail it stored (or already had) with the mail's
*receipt key*, a SHA-256 over what identifies the mail (`services.mail.receipt.receipt_key`);
the sender's outbox copy leaves when the key comes back.  The service id is negotiated through
service control like any other, so a RetroShare peer never enables it and never sees these.
"""

from __future__ import annotations

import construct as c

from pqi.wire.compound import IdList
from pqi.wire.fields import Sha256Hash
from pqi.wire.item import PQItem

from .ids import SERVICE_MAIL_RECEIPT

__all__ = ["MailReceiptItem"]


class MailReceiptItem(PQItem):
    """The receipt keys of mails the sender of this item has committed."""

    SERVICE = SERVICE_MAIL_RECEIPT
    SUBTYPE = 0x01
    PRIORITY = 2
    BODY = c.Struct("keys" / IdList(Sha256Hash))
    keys: tuple[Sha256Hash, ...]
