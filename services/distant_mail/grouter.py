# -*- test-case-name: tests.test_distant_grouter -*-
"""The global router (service 0x0018), receiving side: distant mail that a RetroShare node
sends the older way, besides GXS trans.

A friend hands us a routed item in transaction chunks (`GRouterTransactionChunkItem`); once
a transaction is whole we acknowledge it (`GRouterTransactionAcknItem`, as RetroShare) and
read the item.  A `GRouterDataItem` for one of our identities, signed by its sender's
identity (over routing id, destination, client service and data) and sealed to our key,
carries a serialised mail (`MsgItem`); it is filed by distant mail
(`DistantMailService.accept_mail`), so a mail that also came through GXS trans is filed once.

Not done here: relaying routed items for others, sending routed items, and signed receipts
(the receipt of a mail travels back through GXS trans).  Items for others are acknowledged
and dropped.  Transactions are bounded: `MAX_TRANSACTIONS` open at once (oldest dropped),
`MAX_TRANSACTION_SIZE` bytes each, `TRANSACTION_LIFE` seconds to complete.
"""

from __future__ import annotations

import collections
import dataclasses
import struct
from typing import Any, Final

from twisted.internet.interfaces import IReactorTime

from pqi.interfaces import IItemSender, PeerIdentity
from pqi.items.grouter import (
    GRouterDataItem,
    GRouterFlags,
    GRouterSignedReceiptItem,
    GRouterTransactionAcknItem,
    GRouterTransactionChunkItem,
)
from pqi.items.ids import SERVICE_GROUTER
from pqi.items.msg import MsgItem
from pqi.wire.errors import DecodeError
from pqi.wire.fields import GxsId, SslId
from pqi.wire.item import decode
from services.base import Service
from services.gxs.security import verify_ok
from services.spec import ServiceSpec

from .crypto import SealError, open_sealed

__all__ = ["GRouterService", "SPEC", "MAX_TRANSACTIONS", "MAX_TRANSACTION_SIZE",
           "TRANSACTION_LIFE", "MAIL_CLIENT_ID", "signed_bytes"]

#: Open transactions kept at once (all friends); the oldest is dropped beyond.
MAX_TRANSACTIONS: Final = 64
#: Largest routed item we reassemble.
MAX_TRANSACTION_SIZE: Final = 2 * 1024 * 1024
#: Seconds a transaction may take to complete.
TRANSACTION_LIFE: Final = 120.0
#: ``GROUTER_CLIENT_ID_MESSAGES``: routed data for the mail service.
MAIL_CLIENT_ID: Final = 0x1001


def signed_bytes(item: GRouterDataItem) -> bytes:
    """What the sender's identity signs: routing id, destination, client service and the
    length-prefixed data (the item serialised up to its data, without item header)."""
    return (struct.pack(">Q", item.routing_id) + bytes(item.destination_key)
            + struct.pack(">II", item.service_id, len(item.data)) + item.data)


@dataclasses.dataclass
class _Transaction:
    total: int
    started: float
    parts: dict[int, bytes] = dataclasses.field(default_factory=dict)

    def size(self) -> int:
        return sum(len(p) for p in self.parts.values())


def _build(node: Any) -> GRouterService | None:
    mail = getattr(node, "distant_mail", None)
    if mail is None:
        return None
    return GRouterService(node.control, node.reactor, mail)


#: The global router on a node (``node.grouter``): receives distant mail sent through it.
SPEC: Final = ServiceSpec(
    SERVICE_GROUTER, "Global Router", attribute="grouter",
    items=(GRouterDataItem, GRouterSignedReceiptItem, GRouterTransactionChunkItem,
           GRouterTransactionAcknItem), build=_build)


class GRouterService(Service):
    """Receives routed distant mail for our identities (see the module docstring)."""

    spec = SPEC

    def __init__(self, sender: IItemSender, reactor: IReactorTime, mail: Any) -> None:
        super().__init__(sender, reactor)
        self.mail = mail
        self.transactions: collections.OrderedDict[tuple[SslId, int], _Transaction] = \
            collections.OrderedDict()
        self.dropped: collections.Counter[str] = collections.Counter()

    def receive(self, peer: PeerIdentity, item: object) -> None:
        if isinstance(item, GRouterTransactionChunkItem):
            self._chunk(peer.ssl_id, item)
        elif isinstance(item, GRouterTransactionAcknItem):
            return  # we send no routed items, so no acknowledgement concerns us
        else:
            self.dropped["unexpected item"] += 1

    def _chunk(self, peer: SslId, item: GRouterTransactionChunkItem) -> None:
        now = self.reactor.seconds()
        for key, t in list(self.transactions.items()):
            if now > t.started + TRANSACTION_LIFE:
                del self.transactions[key]
                self.dropped["transaction timed out"] += 1
        chunk = item.chunk
        if chunk.total > MAX_TRANSACTION_SIZE or chunk.start + len(chunk.data) > chunk.total:
            self.dropped["bad chunk"] += 1
            return
        key = (peer, item.propagation_id)
        t = self.transactions.get(key)
        if t is None:
            while len(self.transactions) >= MAX_TRANSACTIONS:
                self.transactions.popitem(last=False)
                self.dropped["too many transactions"] += 1
            t = self.transactions[key] = _Transaction(chunk.total, now)
        if t.total != chunk.total:
            del self.transactions[key]
            self.dropped["bad chunk"] += 1
            return
        t.parts[chunk.start] = chunk.data
        whole = self._whole(t)
        if whole is None:
            return
        del self.transactions[key]
        self.send(peer, GRouterTransactionAcknItem(item.propagation_id))
        try:
            routed = decode(whole)
        except DecodeError:
            self.dropped["undecodable routed item"] += 1
            return
        if isinstance(routed, GRouterDataItem):
            self._data(routed)
        else:
            self.dropped["routed item not for us"] += 1

    @staticmethod
    def _whole(t: _Transaction) -> bytes | None:
        out = b""
        for start in sorted(t.parts):
            if start != len(out):
                return None
            out += t.parts[start]
        return out if len(out) == t.total else None

    def _data(self, item: GRouterDataItem) -> None:
        identities = self.mail.identities
        own = item.destination_key
        key = identities.private_key(own) if own in identities.own_ids() else None
        if key is None:
            self.dropped["routed data for another identity"] += 1
            return
        author = item.signature.key_id
        author_key = identities.public_key(author)
        if author_key is None:
            for peer in list(self.peers):
                identities.request(author, peer)
            self.dropped["routed data from an unknown identity"] += 1
            return
        if not verify_ok(signed_bytes(item), author_key, item.signature):
            self.dropped["routed data badly signed"] += 1
            return
        if item.service_id != MAIL_CLIENT_ID or not item.flags & GRouterFlags.ENCRYPTED:
            self.dropped["routed data of another kind"] += 1
            return
        try:
            clear = open_sealed(item.data, key)
            mail = decode(clear)
        except (SealError, DecodeError):
            self.dropped["routed data unreadable"] += 1
            return
        if not isinstance(mail, MsgItem):
            self.dropped["routed data of another kind"] += 1
            return
        self.mail.accept_mail(author, GxsId(own), mail, clear)
