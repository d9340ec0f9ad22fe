# -*- test-case-name: tests.test_distant_mail -*-
"""Distant mail on a node: mail to GXS identities through GXS trans (service 0x0230), as
RetroShare's ``p3GxsTrans`` and ``p3MsgService`` do it.

Every node has a GXS trans group of its own ("Mail") and keeps every such group it learns
with all their messages (NXS sync, `services.gxs`), so friends store mail and pass it on
until the recipient's node collects it, also while the sender is offline.

Sending (`DistantMailService.send_mail`): the mail (a RetroShare `MsgItem`, as between friends)
is recorded in the outbox (`DistantMailStore`, durable when `send_mail` returns).  Once the
recipient's public key and our group are known, we make a *presigned receipt* (a GXS trans
message of our group, signed by our identity, saying "mail id N arrived") and publish one
message: mail id, a recipient hint (the recipient's id OR a random salt), and the payload
``client service (u16: 2, mail) | the receipt as an NXS message item | the MsgItem``,
encrypted to the recipient's identity key (`crypto.seal`), signed by our identity.  A
recipient key we lack is asked of friends every `PROCESS_PERIOD` s.

Receiving: each new GXS trans message that may be for one of our identities (hint) is
decrypted with its key; a mail seen before (same bytes, also by another route) is dropped; the
permission for distant mail (`Permissions.mail`) may refuse it; else it goes to the node's
inbox (`MailStore`, sender shown as the identity) and we publish the sender's presigned
receipt.  A receipt whose author is ours ends that outgoing mail (`DistantMailReceipt`).

Forwarding is hurried a little beyond RetroShare: a mail group we learn has its messages
asked for at once, and a message we store from one friend makes us ask the others to pull
from us now, so mail and receipts cross a line of friends in seconds, not sync rounds.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import struct
from collections.abc import Callable, Iterable
from typing import Any, Final

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from pqi.interfaces import IItemSender, PeerIdentity
from pqi.items.gxs import (
    KEY_DISTRIB_ADMIN,
    KEY_DISTRIB_PUBLISH,
    GrpMeta,
    MsgMeta,
    decode_msg_meta,
    encode_msg_meta,
)
from pqi.items.gxstrans import (
    CryptoType,
    TransMail,
    TransReceipt,
    decode_trans_message,
    encode_trans_group,
    encode_trans_mail,
    encode_trans_receipt,
    may_be_recipient,
)
from pqi.items.ids import SERVICE_GXS_TRANS
from pqi.items.msg import MsgFlags, MsgItem
from pqi.items.nxs import NXS_ITEM_BASES, NxsMsgItem, NxsPullRequestItem, nxs_item_class
from pqi.wire.errors import DecodeError
from pqi.wire.fields import GxsId, SslId
from pqi.wire.item import decode, encode
from services.chat.service import text_to_html
from services.gxs.nxs_core import SYNC_PERIOD, GroupStored, MessageStored, NxsCore
from services.gxs.policy import policy_for
from services.gxs.security import (
    SignatureError,
    generate_key_pair,
    new_group,
    sign_message,
)
from services.gxs.service import GxsNetService
from services.gxs.store import GxsStore
from services.gxstunnel.distant_chat import DistantChatPermission
from services.spec import Commands, ServiceSpec

from .crypto import SealError, open_sealed, seal
from .events import DistantMailFailed, DistantMailReceipt, DistantMailReceived
from .store import DISTANT_MAIL_FILE, DistantMailStore, Outgoing, Status

__all__ = ["DistantMailService", "SPEC", "COMMANDS", "TRANS_FILE", "PROCESS_PERIOD",
           "RECEIPT_TIMEOUT", "MAIL_CLIENT", "GROUP_NAME", "MAX_HELD_RECEIPTS"]

#: The GXS trans groups and messages in the account directory.
TRANS_FILE: Final = "gxs-0230.sqlite"
#: Outgoing mails are looked at again this often (keys that arrived, receipts, time-outs).
PROCESS_PERIOD: Final = 10.0
#: An outgoing mail without a receipt after this long has failed (``GXS_STORAGE_PERIOD``).
RECEIPT_TIMEOUT: Final = 15 * 86400.0
#: ``GxsTransSubServices::P3_MSG_SERVICE``: the mail client of GXS trans.
MAIL_CLIENT: Final = 0x02
#: The name RetroShare gives its GXS trans groups.
GROUP_NAME: Final = "Mail"
#: Receipts waiting for their sender's group to arrive, at most (oldest dropped).
MAX_HELD_RECEIPTS: Final = 256
_FLAG_PRIVACY_PUBLIC: Final = 0x4
_CIRCLE_PUBLIC: Final = 1
_TRANS_MSG = nxs_item_class(SERVICE_GXS_TRANS, NxsMsgItem)
_PULL = nxs_item_class(SERVICE_GXS_TRANS, NxsPullRequestItem)


def _build(node: Any) -> DistantMailService | None:
    identities = getattr(node, "identities", None)
    if identities is None:
        return None
    distant = getattr(node, "distant", None)
    mail = getattr(node, "mail", None)

    def permission() -> DistantChatPermission:
        return distant.permissions.mail if distant is not None else \
            DistantChatPermission.EVERYONE

    def is_contact(gxs_id: GxsId) -> bool:
        pgp = identities.pgp_id_of(gxs_id)
        return pgp is not None and any(p.pgp_id == pgp for p in node.friends_list.profiles())

    return DistantMailService(node.control, node.reactor, pathlib.Path(node.account.base_dir),
                              identities, node.emit,
                              inbox=None if mail is None else mail.store,
                              permission=permission, is_contact=is_contact,
                              accepts_sender=(lambda g: True) if mail is None
                              else mail.accepts_distant,
                              sync_period=node.options["gxs_sync_period"])


#: Control commands of distant mail (``rsnode mail send --to @ID``).
COMMANDS = Commands()

#: GXS trans on a node (``node.distant_mail``), announced as RetroShare does.
SPEC: Final = ServiceSpec(
    SERVICE_GXS_TRANS, "GXS Mails", attribute="distant_mail", version=(0, 1),
    min_version=(0, 1),
    items=tuple(nxs_item_class(SERVICE_GXS_TRANS, base) for base in NXS_ITEM_BASES),
    events=(DistantMailReceived, DistantMailReceipt, DistantMailFailed), commands=COMMANDS,
    build=_build, close=lambda service: service.close())


class DistantMailService(GxsNetService):
    """GXS trans and distant mail of a node (see the module docstring).

    ``identities``: the identity service (keys); ``inbox``: the mail service's store the
    received mails go to (None: kept nowhere but the events); ``permission()``: who may mail
    us; ``is_contact``: for the "contacts" permission; ``accepts_sender(gxs_id)``: whether
    mail from that identity may be filed (the mail service's `accepts_distant`, which asks
    the ban list).
    """

    def __init__(self, sender: IItemSender, reactor: IReactorTime, base_dir: pathlib.Path,
                 identities: Any, emit: Callable[[Any], object], *, inbox: Any = None,
                 permission: Callable[[], DistantChatPermission] = (
                     lambda: DistantChatPermission.EVERYONE),
                 is_contact: Callable[[GxsId], bool] = lambda g: False,
                 accepts_sender: Callable[[GxsId], bool] = lambda g: True,
                 sync_period: float = SYNC_PERIOD) -> None:
        self.gxs_store = GxsStore(base_dir / TRANS_FILE, SERVICE_GXS_TRANS)
        core = NxsCore(SERVICE_GXS_TRANS, self.gxs_store, author_lookup=identities.public_key,
                       auto_subscribe=True, sync_period=sync_period)
        super().__init__(sender, reactor, core, SPEC, self._event,
                         request_identity=identities.request)
        self.store = DistantMailStore(base_dir / DISTANT_MAIL_FILE)
        self.identities = identities
        self.emit = emit
        self.inbox = inbox
        self.permission = permission
        self.is_contact = is_contact
        self.accepts_sender = accepts_sender
        self._held: list[NxsMsgItem] = []
        self._passing = False
        self._loop: LoopingCall | None = None
        self.dropped: dict[str, int] = {}

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = LoopingCall(self.process)
        self._loop.clock = self.reactor
        self._loop.start(PROCESS_PERIOD, now=True)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        super().stop()

    def close(self) -> None:
        self.store.close()
        self.gxs_store.close()

    def peer_connected(self, peer: PeerIdentity) -> None:
        super().peer_connected(peer)
        self.reactor.callLater(0, self.process)

    # --- sending --------------------------------------------------------------------------

    def send_mail(self, author: GxsId, recipients: Iterable[GxsId], subject: str, body: str,
             *, to_ids: Iterable[GxsId] = (), cc_ids: Iterable[GxsId] = ()) -> list[int]:
        """Queue a mail from our identity ``author`` to each identity of ``recipients``;
        durable when this returns.  Returns the local ids (one per recipient)."""
        if self.identities.private_key(author) is None:
            raise ValueError(f"{author.to_hex()} is not one of our identities")
        now = self.reactor.seconds()
        recipients = list(dict.fromkeys(recipients))
        if not recipients:
            raise ValueError("no recipient identity")
        to_ids = frozenset(to_ids) or frozenset(recipients)
        ids = []
        for recipient in recipients:
            item = MsgItem(MsgFlags.OUTGOING | MsgFlags.PENDING | MsgFlags.DISTANT, int(now),
                           int(now), subject, body, to_ids=to_ids, cc_ids=frozenset(cc_ids))
            mail_id = struct.unpack(">Q", os.urandom(8))[0]
            ids.append(self.store.add(mail_id, author, recipient, encode(item), now))
        self.process()
        return ids

    def process(self) -> None:
        """Move every open outgoing mail on as far as it can go now."""
        now = self.reactor.seconds()
        group = self._own_group()
        for out in self.store.outgoing(open_only=True):
            try:
                self._advance(out, group, now)
            except (SignatureError, DecodeError, KeyError) as e:
                self.log.warn("distant mail {id}: {e}", id=out.local_id, e=str(e))

    def _advance(self, out: Outgoing, group: GrpMeta | None, now: float) -> None:
        if now > out.created + RECEIPT_TIMEOUT:
            self.store.set_status(out.local_id, Status.TIMED_OUT, now)
            self.emit(DistantMailFailed(out.local_id, out.recipient, "no receipt in time"))
            return
        if out.status is Status.PENDING:
            recipient_key = self.identities.public_key(out.recipient)
            if recipient_key is None:
                for peer in list(self.peers):
                    self.identities.request(out.recipient, peer)
                return
            author_key = self.identities.private_key(out.author)
            if group is None or author_key is None:
                return
            msg, meta = self._make_mail(out, group, recipient_key, author_key, now)
            self.store.set_ready(out.local_id, msg, encode_msg_meta(meta), meta.msg_id.to_hex())
            out = self.store.by_local_id(out.local_id)  # type: ignore[assignment]
        if out.status is Status.READY and out.msg is not None and out.meta is not None:
            meta = decode_msg_meta(out.meta)
            if not self.gxs_store.has_message(meta.msg_id):
                self.driver.feed(self.core.publish_message, out.msg, meta)
            self.store.set_status(out.local_id, Status.PUBLISHED)

    def _make_mail(self, out: Outgoing, group: GrpMeta, recipient_key: Any, author_key: Any,
                   now: float) -> tuple[bytes, MsgMeta]:
        policy = policy_for(SERVICE_GXS_TRANS)
        receipt_data = encode_trans_receipt(TransReceipt(out.mail_id))
        receipt_meta = sign_message(receipt_data, MsgMeta(
            group_id=group.group_id, author_id=out.author, publish_ts=int(now)), group, policy,
            author_key=author_key)
        receipt = _TRANS_MSG(transaction_number=0, pos=0, msg_id=receipt_meta.msg_id,
                             grp_id=group.group_id, msg=receipt_data,
                             meta=encode_msg_meta(receipt_meta))
        payload = struct.pack(">H", MAIL_CLIENT) + encode(receipt) + out.data
        salt = os.urandom(16)
        hint = GxsId(bytes(a | b for a, b in zip(bytes(out.recipient), salt, strict=True)))
        data = encode_trans_mail(TransMail(out.mail_id, CryptoType.RSA, hint,
                                           seal(payload, recipient_key)))
        meta = sign_message(data, MsgMeta(group_id=group.group_id, author_id=out.author,
                                          publish_ts=int(now)), group, policy,
                            author_key=author_key)
        return data, meta

    def _own_group(self) -> GrpMeta | None:
        """Our GXS trans group, made on first need (RetroShare's preferred group)."""
        for grp_id, _, _ in self.gxs_store.groups():
            if any(k.key_id == grp_id for k in self.gxs_store.private_keys(grp_id)):
                return self.gxs_store.group_meta(grp_id)
        now = int(self.reactor.seconds())
        admin = generate_key_pair(now, KEY_DISTRIB_ADMIN)
        publish = generate_key_pair(now, KEY_DISTRIB_PUBLISH)
        grp = encode_trans_group()
        meta = new_group(grp, GrpMeta(admin.key_id, name=GROUP_NAME,
                                      group_flags=_FLAG_PRIVACY_PUBLIC,
                                      publish_ts=now, circle_type=_CIRCLE_PUBLIC),
                         admin, publish)
        self.driver.feed(self.core.publish_group, grp, meta,
                         private_keys=(admin.private, publish.private))
        return meta

    # --- receiving ------------------------------------------------------------------------

    def _event(self, event: Any) -> None:
        if isinstance(event, GroupStored):
            if event.peer is not None:  # a new mail group: fetch its messages now
                self.driver.feed(self.core.subscribe, event.grp_id, True)
            self._release_held()
        elif isinstance(event, MessageStored) and event.peer is not None:
            self._pass_on(event.peer)
            stored = self.gxs_store.message(event.msg_id)
            if stored is None:
                return
            try:
                content = decode_trans_message(stored.msg)
            except DecodeError:
                self._drop("not a GXS trans message")
                return
            if isinstance(content, TransReceipt):
                self._receipt(content, stored.meta)
            else:
                self._mail(content, stored.meta)

    def _pass_on(self, source: SslId) -> None:
        """Store and forward: ask our other friends to pull from us now (once per turn),
        rather than at their next sync round."""
        if self._passing:
            return
        self._passing = True

        def pull() -> None:
            self._passing = False
            for peer in list(self.peers):
                if peer != source:
                    self.send(peer, _PULL())
        self.reactor.callLater(0, pull)

    def _receipt(self, receipt: TransReceipt, meta: MsgMeta) -> None:
        if meta.author_id not in self.identities.own_ids():
            return
        out = self.store.by_mail_id(receipt.mail_id)
        if out is None or out.status >= Status.RECEIPT:
            return
        self.store.set_status(out.local_id, Status.RECEIPT, self.reactor.seconds())
        self.emit(DistantMailReceipt(out.local_id, out.recipient))

    def _mail(self, mail: TransMail, meta: MsgMeta) -> None:
        if mail.crypto_type != CryptoType.RSA:
            self._drop("clear-text mail")  # everyone could read it: never accepted
            return
        for own in self.identities.own_ids():
            if not may_be_recipient(mail.recipient_hint, own):
                continue
            key = self.identities.private_key(own)
            if key is None:
                continue
            try:
                payload = open_sealed(mail.payload, key)
            except SealError:
                continue  # the hint matched by chance: not for this identity
            self._deliver(payload, meta.author_id, own, mail.mail_id)
            return

    def _deliver(self, payload: bytes, author: GxsId, own: GxsId, mail_id: int) -> None:
        try:
            (client,) = struct.unpack(">H", payload[:2])
            size = struct.unpack(">I", payload[6:10])[0]
            receipt = decode(payload[2:2 + size])
            item = decode(payload[2 + size:])
        except (DecodeError, struct.error):
            self._drop("undecodable mail payload")
            return
        if client != MAIL_CLIENT or not isinstance(item, MsgItem) or \
                not isinstance(receipt, NxsMsgItem):
            self._drop("mail payload of another kind")
            return
        if self.accept_mail(author, own, item, payload[2 + size:]):
            self._publish_receipt(receipt, mail_id)

    def accept_mail(self, author: GxsId, own: GxsId, item: MsgItem, raw: bytes) -> bool:
        """File a distant mail from ``author`` to our ``own`` identity unless it was seen
        before (by its bytes ``raw``, whichever way it came) or the permission refuses it;
        True when filed."""
        now = self.reactor.seconds()
        if not self.store.first_sight(hashlib.sha1(raw).hexdigest(), now):
            self._drop("mail seen before")
            return False
        permission = self.permission()
        if permission is DistantChatPermission.NO_ONE or (
                permission is DistantChatPermission.CONTACTS and not self.is_contact(author)):
            self._drop("refused by the distant-mail permission")
            return False
        if not self.accepts_sender(author):
            self._drop("refused: the sender's identity is banned")
            return False
        item = _received(item)
        local = None
        if self.inbox is not None:
            local = self.inbox.add_incoming(SslId(bytes(author)), item, now)
        self.emit(DistantMailReceived(local, author, own, item.subject, item.message))
        return True

    def _publish_receipt(self, receipt: NxsMsgItem, mail_id: int) -> None:
        try:
            content = decode_trans_message(receipt.msg)
        except DecodeError:
            self._drop("bad presigned receipt")
            return
        if not isinstance(content, TransReceipt) or content.mail_id != mail_id:
            self._drop("presigned receipt of another mail")
            return
        if self.gxs_store.group_meta(receipt.grp_id) is None:
            self._held = [*self._held[-(MAX_HELD_RECEIPTS - 1):], receipt]
            return
        meta = decode_msg_meta(receipt.meta)
        if self.gxs_store.has_message(meta.msg_id):
            return
        try:
            self.driver.feed(self.core.publish_message, receipt.msg, meta)
        except (SignatureError, KeyError) as e:
            self._drop(f"presigned receipt refused: {e}")

    def _release_held(self) -> None:
        held, self._held = self._held, []
        for receipt in held:
            content = decode_trans_message(receipt.msg)
            if isinstance(content, TransReceipt):
                self._publish_receipt(receipt, content.mail_id)

    def _drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def status_section(self) -> dict[str, Any]:
        return {"outgoing": [{"id": o.local_id, "to": o.recipient.to_hex(),
                              "status": o.status.name.lower()}
                             for o in self.store.outgoing(open_only=True)],
                "groups": len(self.gxs_store.groups()), "dropped": dict(self.dropped)}


def _received(item: MsgItem) -> MsgItem:
    """As RetroShare files a distant mail: DISTANT set, never PARTIAL, not OUTGOING/PENDING."""
    flags = (item.flags | MsgFlags.DISTANT) & ~(MsgFlags.PARTIAL | MsgFlags.OUTGOING |
                                                MsgFlags.PENDING)
    return MsgItem(flags, item.send_time, item.recv_time, item.subject, item.message,
                   item.to_peers, item.cc_peers, item.bcc_peers, item.to_ids, item.cc_ids,
                   item.bcc_ids, item.attachment)


# --- control commands --------------------------------------------------------------------


def _part(node: Any) -> DistantMailService:
    part = getattr(node, "distant_mail", None)
    if part is None:
        raise ValueError("this node runs no distant mail")
    return part  # type: ignore[no-any-return]


@COMMANDS.command("distant_mail_send")
def _send(node: Any, args: dict[str, Any]) -> Any:
    part = _part(node)
    own = node.identities.own_ids()
    identity = args.get("identity")
    if identity is None:
        if not own:
            raise ValueError("no identity yet: create one (rsnode id create NAME)")
        author = own[0]
    else:
        author = GxsId.from_hex(str(identity).lstrip("@"))
    to = [GxsId.from_hex(str(t).lstrip("@")) for t in args.get("to", [])]
    cc = [GxsId.from_hex(str(t).lstrip("@")) for t in args.get("cc", [])]
    bcc = [GxsId.from_hex(str(t).lstrip("@")) for t in args.get("bcc", [])]
    body = str(args.get("body", ""))
    ids = part.send_mail(author, [*to, *cc, *bcc], str(args.get("subject", "")),
                         body if args.get("html") else text_to_html(body), to_ids=to, cc_ids=cc)
    return {"ids": ids}


@COMMANDS.command("distant_mail_outbox")
def _outbox(node: Any, args: dict[str, Any]) -> Any:
    return [{"id": o.local_id, "to": o.recipient.to_hex(), "from": o.author.to_hex(),
             "status": o.status.name.lower(), "created": o.created, "finished": o.finished}
            for o in _part(node).store.outgoing()]
