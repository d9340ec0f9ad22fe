# -*- test-case-name: tests.test_mail -*-
"""Mail between friends (msg service, 0x0013): store and forward, nothing lost, nothing twice.

Sending (`MailService.send_mail`) writes the mail and one copy per recipient to the `MailStore` in a
single transaction before it returns.  A copy leaves when its recipient is connected (now, or
when it next connects, also after we restarted) and is marked delivered only once its bytes
were handed to the recipient's link *and* that link was still up `SETTLE_DELAY` seconds later
(by then the bytes left our process: a crash in between loses nothing; the copy goes again
and the receiver's dedupe drops it).  "Handed to the link" is what the streamer reports for
that very item: the `Sent` handle of the send fires once the item's last byte went to the
transport.  (Earlier versions searched the written bytes for the mail's last slice, and two
mails ending alike were taken one for the other: issue 14.)  That is the rule with RetroShare
peers.  A recipient that is an rsproto node negotiates mail receipts
(`services.mail.receipt`): its copy leaves the outbox only when the receiver says it committed
the mail, so a receiver killed with our bytes in its socket buffer loses nothing.

Receiving stores the mail under its dedupe key (`pqi`-independent, see `mail_store.mail_key`)
and reports it once.  RsMsgItem carries no message id on the wire, so uniqueness comes from
the content: our sender never gives two mails with the same subject and body the same send
time (it moves the second one on by a second), and the key covers sender, send time, subject,
body, to/cc and attachment hashes.

Wire compatibility: a copy is what RetroShare 0.6.7 sends (``p3MsgService``): flags
OUTGOING|PENDING, receive time = send time, to/cc peer sets, and the recipient alone in the bcc
set when it is a bcc recipient (the other bcc recipients stay hidden).
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from pqi.interfaces import DisconnectReason, IItemSender, PeerIdentity
from pqi.items.ids import SERVICE_MSG
from pqi.items.msg import MsgFlags, MsgItem
from pqi.wire.errors import EncodeError
from pqi.wire.fields import Sha256Hash, SslId
from pqi.wire.item import decode, encode
from pqi.wire.tlvvalues import FileItem, FileSet
from services.base import Service
from services.chat.service import html_to_text
from services.mail.receipt import MAX_UNACKNOWLEDGED, RECEIPT_TIMEOUT, MailReceipts, receipt_key
from services.mail.store import MAIL_FILE, InboxRow, MailStore
from services.spec import Commands, ServiceSpec

__all__ = [
    "MailService", "Mail", "Draft", "MailError", "NoRecipientError", "MailTooLargeError",
    "UnknownMailError", "SETTLE_DELAY", "WIRE_FLAGS", "MailReceived", "MailDelivered",
    "FileOffered", "SPEC",
]

#: How long a link must stay up after a copy was written before the copy counts as delivered.
SETTLE_DELAY: Final = 1.0
#: The flags RetroShare's sender leaves on the copies it sends.
WIRE_FLAGS: Final = MsgFlags.OUTGOING | MsgFlags.PENDING
#: How soon copies are tried again when a recipient's link queue was full (s).
_RETRY: Final = 0.2


@dataclasses.dataclass(frozen=True)
class MailReceived:
    """A new mail is in the inbox (a copy we already had is never reported again)."""

    mail: Mail


@dataclasses.dataclass(frozen=True)
class MailDelivered:
    """A copy of one of our mails reached a recipient: an rsproto recipient's receipt came
    back, or (a RetroShare recipient) its link stayed up `SETTLE_DELAY` s after the copy's
    last byte was written."""

    #: The mail's id in our outbox.
    mail_id: int
    #: The recipient location.
    peer: SslId


@dataclasses.dataclass(frozen=True)
class FileOffered:
    """A friend's mail carries a file (RetroShare's way to send one): ``node.accept_offer``
    downloads it."""

    #: The friend location that sent the mail.
    peer: SslId
    #: The file: name, size, hash.
    item: FileItem
    #: The mail's id in our inbox.
    mail_id: int


#: Control commands of mail (``rsnode mail``).
COMMANDS = Commands()

#: Mail on a node: inbox and outbox in the account's `MAIL_FILE` (``mail_settle_delay``:
#: `SETTLE_DELAY`).
SPEC: Final = ServiceSpec(
    SERVICE_MSG, "msg", attribute="mail", items=(MsgItem,),
    events=(MailReceived, MailDelivered, FileOffered), commands=COMMANDS,
    cli="services.cli.chat:register_mail", options={"mail_settle_delay": SETTLE_DELAY},
    build=lambda node: MailService(node.control, node.reactor,
                                   MailStore(Path(node.account.base_dir) / MAIL_FILE),
                                   node.link_of, node.emit,
                                   settle_delay=node.options["mail_settle_delay"]),
    close=lambda mail: mail.store.close())


@COMMANDS.command("mail_send")
def _mail_send(node: Any, args: dict[str, Any]) -> Any:
    return node.send_mail(list(args.get("to", [])), str(args.get("subject", "")),
                          str(args.get("body", "")), cc=list(args.get("cc", [])),
                          bcc=list(args.get("bcc", [])), html=bool(args.get("html")))


@COMMANDS.command("mail_list")
def _mail_list(node: Any, args: dict[str, Any]) -> Any:
    return [node.named({k: v for k, v in m.to_json().items() if k not in ("body", "text")})
            for m in node.inbox(unread_only=bool(args.get("unread")), tag=args.get("tag"))]


@COMMANDS.command("mail_read")
def _mail_read(node: Any, args: dict[str, Any]) -> Any:
    return node.named(node.read_mail(int(args["id"])).to_json())


@COMMANDS.command("mail_delete")
def _mail_delete(node: Any, args: dict[str, Any]) -> Any:
    return node.mail.delete(int(args["id"]))


@COMMANDS.command("mail_outbox")
def _mail_outbox(node: Any, args: dict[str, Any]) -> Any:
    # ``online``: the recipient's link is up, so its copy has left (it counts as delivered
    # once the link stayed up the settle delay); otherwise it leaves when the recipient
    # connects.
    return [{"mail": m, "to": p.to_hex(), "online": p in node.mail.peers}
            for m, p in node.mail.outbox()]


class MailError(Exception):
    """Base of the mail service's errors."""


class NoRecipientError(MailError):
    """A mail needs at least one recipient (to, cc or bcc)."""


class MailTooLargeError(MailError):
    """Subject, body and attachment list together must fit one item (256 KiB); send large
    content as an attached file instead."""


class UnknownMailError(MailError, KeyError):
    """There is no mail with that id in the inbox."""


@dataclasses.dataclass(frozen=True)
class Mail:
    """A received mail (``id`` is its inbox id)."""

    id: int
    sender: SslId
    send_time: int
    recv_time: float
    subject: str
    body: str
    to: frozenset[SslId]
    cc: frozenset[SslId]
    attachments: tuple[FileItem, ...]
    read: bool = False
    tags: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return html_to_text(self.body)

    @classmethod
    def from_row(cls, row: InboxRow) -> Mail:
        item = row.item
        return cls(row.id, row.sender, item.send_time, row.recv_time, item.subject,
                   item.message, frozenset(item.to_peers), frozenset(item.cc_peers),
                   item.attachment.items, row.read, row.tags)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "from": self.sender.to_hex(), "send_time": self.send_time,
                "recv_time": self.recv_time, "subject": self.subject, "body": self.body,
                "text": self.text, "to": sorted(p.to_hex() for p in self.to),
                "cc": sorted(p.to_hex() for p in self.cc), "read": self.read,
                "tags": list(self.tags),
                "attachments": [{"name": f.name, "size": f.size, "hash": f.hash.to_hex()}
                                for f in self.attachments]}


@dataclasses.dataclass(frozen=True)
class Draft:
    """A mail to send (`MailService.reply` and `MailService.forward` prepare one)."""

    subject: str
    body: str
    to: tuple[SslId, ...] = ()
    cc: tuple[SslId, ...] = ()
    bcc: tuple[SslId, ...] = ()
    attachments: tuple[FileItem, ...] = ()


class MailService(Service):
    """Outbox, delivery and inbox.

    ``link_of(ssl_id)`` gives the friend's current `PQIStreamer` (None when offline);
    ``emit(event)`` reports `MailReceived` (then a `FileOffered` per attachment) and
    `MailDelivered`.
    """

    spec = SPEC

    def __init__(self, sender: IItemSender, reactor: IReactorTime, store: MailStore,
                 link_of: Callable[[SslId], Any], emit: Callable[[object], None] | None = None,
                 settle_delay: float = SETTLE_DELAY) -> None:
        super().__init__(sender, reactor)
        self.store = store
        self._link_of = link_of
        self._emit = emit or (lambda event: None)
        self.settle_delay = settle_delay
        #: Received copies dropped because the inbox already had them.
        self.duplicates = 0
        #: ``identity_banned(gxs_id)``: whether an identity is banned (the ban list sets it,
        #: `services.banlist.service.BanListService.is_identity_banned`).  Mail between
        #: friends is signed by no identity, so only distant mail asks (`accepts_distant`).
        self.identity_banned: Callable[[bytes], bool] = lambda gxs_id: False
        #: Distant mails refused because their sender identity is banned.
        self.refused_distant = 0
        self._in_flight: dict[SslId, set[int]] = {}
        #: Copies sent to a recipient that speaks receipts: receipt key -> outbox mail ids
        #: (at most `MAX_UNACKNOWLEDGED` per recipient).
        self._awaiting: dict[SslId, dict[Sha256Hash, list[int]]] = {}
        self._timers: set[IDelayedCall] = set()
        self._retry: IDelayedCall | None = None
        #: The receipt service (`services.mail.receipt`), when the node runs it.
        self.receipts: MailReceipts | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        for timer in list(self._timers) + ([self._retry] if self._retry else []):
            if timer.active():
                timer.cancel()
        self._timers.clear()
        self._retry = None
        self._in_flight.clear()
        self._awaiting.clear()

    def peer_connected(self, peer: PeerIdentity) -> None:
        super().peer_connected(peer)
        self._deliver(peer.ssl_id)

    def peer_disconnected(self, peer: PeerIdentity, reason: DisconnectReason) -> None:
        super().peer_disconnected(peer, reason)
        self._in_flight.pop(peer.ssl_id, None)
        self._awaiting.pop(peer.ssl_id, None)

    # --- composing ---------------------------------------------------------------------------

    def send_mail(self, to: Iterable[SslId] = (), subject: str = "", body: str = "", *,
             cc: Iterable[SslId] = (), bcc: Iterable[SslId] = (),
             attachments: Iterable[FileItem] = ()) -> int:
        """Queue a mail for its recipients; it is on disk when this returns its outbox id."""
        to_set, cc_set, bcc_set = frozenset(to), frozenset(cc), frozenset(bcc)
        recipients = to_set | cc_set | bcc_set
        if not recipients:
            raise NoRecipientError("a mail needs at least one recipient")
        now = int(self.reactor.seconds()) & 0xFFFFFFFF
        latest = self.store.latest_send_time(subject, body)
        send_time = now if latest is None or latest < now else latest + 1
        files = FileSet(items=tuple(attachments))
        copies = {}
        for peer in sorted(recipients):
            copies[peer] = MsgItem(
                flags=WIRE_FLAGS, send_time=send_time, recv_time=send_time, subject=subject,
                message=body, to_peers=to_set, cc_peers=cc_set,
                bcc_peers=frozenset({peer}) if peer in bcc_set else frozenset(),
                attachment=files)
            try:
                encode(copies[peer])
            except EncodeError as e:
                raise MailTooLargeError(str(e)) from e
        mail_id = self.store.add_outgoing(send_time, subject, body, copies,
                                          self.reactor.seconds())
        for peer in sorted(recipients):
            if peer in self.peers:
                self._deliver(peer)
        return mail_id

    def send_draft(self, draft: Draft) -> int:
        return self.send_mail(draft.to, draft.subject, draft.body, cc=draft.cc, bcc=draft.bcc,
                         attachments=draft.attachments)

    def reply(self, mail_id: int, body: str, *, reply_all: bool = False,
              own: SslId | None = None) -> Draft:
        """A reply to an inbox mail: to its sender (and, with ``reply_all``, its other to/cc
        recipients except ``own``), subject "Re: ...", the original quoted below ``body``."""
        mail = self.mail(mail_id)
        cc: tuple[SslId, ...] = ()
        if reply_all:
            cc = tuple(sorted((mail.to | mail.cc) - {mail.sender} - ({own} if own else set())))
        subject = mail.subject if mail.subject.startswith("Re:") else f"Re: {mail.subject}"
        return Draft(subject, body + _quote(mail), to=(mail.sender,), cc=cc)

    def forward(self, mail_id: int, to: Iterable[SslId] = (), body: str = "") -> Draft:
        """A forward of an inbox mail with its attachments: subject "Fwd: ..."."""
        mail = self.mail(mail_id)
        subject = mail.subject if mail.subject.startswith("Fwd:") else f"Fwd: {mail.subject}"
        return Draft(subject, body + _quote(mail), to=tuple(to), attachments=mail.attachments)

    def outbox(self) -> list[tuple[int, SslId]]:
        """(outbox mail id, recipient) of every copy not delivered yet."""
        return [(e.mail_id, e.peer) for e in self.store.pending()]

    # --- inbox -------------------------------------------------------------------------------

    def inbox(self, *, unread_only: bool = False, tag: str | None = None,
              include_deleted: bool = False) -> list[Mail]:
        return [Mail.from_row(r) for r in self.store.inbox(
            unread_only=unread_only, tag=tag, include_deleted=include_deleted)]

    def mail(self, mail_id: int) -> Mail:
        row = self.store.get(mail_id)
        if row is None or row.deleted:
            raise UnknownMailError(f"no mail {mail_id} in the inbox")
        return Mail.from_row(row)

    def mark_read(self, mail_id: int, read: bool = True) -> None:
        self._update(mail_id, read=read)

    def set_tags(self, mail_id: int, tags: Iterable[str]) -> None:
        self._update(mail_id, tags=tags)

    def tag(self, mail_id: int, tag: str) -> None:
        self.set_tags(mail_id, (*self.mail(mail_id).tags, tag))

    def untag(self, mail_id: int, tag: str) -> None:
        self.set_tags(mail_id, [t for t in self.mail(mail_id).tags if t != tag])

    def delete(self, mail_id: int) -> None:
        """Remove a mail from the inbox (its dedupe key stays: a late copy stays away)."""
        self._update(mail_id, deleted=True)

    def _update(self, mail_id: int, **changes: Any) -> None:
        row = self.store.get(mail_id)
        if row is None or row.deleted:
            raise UnknownMailError(f"no mail {mail_id} in the inbox")
        self.store.update(mail_id, **changes)

    # --- receiving ---------------------------------------------------------------------------

    def receive(self, peer: PeerIdentity, item: object) -> None:
        if not isinstance(item, MsgItem):
            return
        mail_id = self.store.add_incoming(peer.ssl_id, item, self.reactor.seconds())
        if self.receipts is not None:  # committed (now or before): the sender may forget it
            self.receipts.acknowledge(peer.ssl_id, item)
        if mail_id is None:
            self.duplicates += 1
            self.log.info("dropped a copy of a mail we already have from {peer}",
                          peer=peer.ssl_id.to_hex())
            return
        mail = self.mail(mail_id)
        self._emit(MailReceived(mail))
        for attachment in mail.attachments:
            self._emit(FileOffered(mail.sender, attachment, mail.id))

    def accepts_distant(self, sender_id: bytes) -> bool:
        """The check distant mail (from a GXS identity, through a tunnel) makes before it
        stores a mail: RetroShare refuses mail from a banned identity; counted and logged."""
        if not self.identity_banned(bytes(sender_id)):
            return True
        self.refused_distant += 1
        self.log.info("refused distant mail from banned identity {gxs_id}",
                      gxs_id=bytes(sender_id).hex())
        return False

    # --- delivery ----------------------------------------------------------------------------

    def _deliver(self, peer: SslId) -> None:
        link = self._link_of(peer)
        if link is None or peer not in self.peers:
            return
        flying = self._in_flight.setdefault(peer, set())
        receipts = self.receipts is not None and self.receipts.speaks(peer)
        awaiting = self._awaiting.setdefault(peer, {}) if receipts else None
        for mail_id in self.store.pending_ids(peer):
            if mail_id in flying:
                continue
            if awaiting is not None and len(flying) >= MAX_UNACKNOWLEDGED:
                break  # the rest goes as receipts come back
            raw = self.store.outgoing_item(mail_id, peer)
            if raw is None:
                continue
            item = decode(raw)
            flying.add(mail_id)
            sent = self.send_tracked(peer, item)  # type: ignore[arg-type]
            if not sent:
                flying.discard(mail_id)
                self._schedule_retry()
                break
            if awaiting is not None:
                key = receipt_key(item)  # type: ignore[arg-type]
                awaiting.setdefault(key, []).append(mail_id)
                sent.when_written().addCallbacks(
                    lambda _sent, mail_id=mail_id, key=key:
                        self._await_receipt(peer, link, key, mail_id),
                    lambda _failure, mail_id=mail_id: self._unsent(peer, flying, mail_id))
                continue
            sent.when_written().addCallbacks(
                lambda _sent, mail_id=mail_id: self._written(peer, link, mail_id),
                lambda _failure, mail_id=mail_id: self._unsent(peer, flying, mail_id))

    def _unsent(self, peer: SslId, flying: set[int], mail_id: int) -> None:
        """The link closed before the copy was written: it stays in the outbox, and goes again
        on the next link (``peer_disconnected`` forgot what was in flight on this one)."""
        flying.discard(mail_id)

    def receipts_received(self, peer: SslId, keys: Iterable[Sha256Hash]) -> int:
        """``peer`` committed the mails of ``keys``: their copies are delivered.  Returns how
        many keys matched no copy we wait for (a second receipt for a copy sent twice)."""
        awaiting = self._awaiting.get(peer, {})
        flying = self._in_flight.get(peer, set())
        unexpected = 0
        for key in keys:
            mail_ids = awaiting.pop(key, None)
            if mail_ids is None:
                unexpected += 1
                continue
            for mail_id in mail_ids:
                flying.discard(mail_id)
                self.store.mark_delivered(mail_id, peer, self.reactor.seconds())
                self._emit(MailDelivered(mail_id, peer))
        if len(flying) <= MAX_UNACKNOWLEDGED // 2 and peer in self.peers:
            self._deliver(peer)  # the window has room again
        return unexpected

    def _await_receipt(self, peer: SslId, link: Any, key: Sha256Hash, mail_id: int) -> None:
        """The copy is written; if its receipt has not come `RECEIPT_TIMEOUT` s later on the
        same link, it goes again (the receiver's dedupe drops it and sends the receipt)."""
        timer: IDelayedCall | None = None

        def expire() -> None:
            self._timers.discard(timer)  # type: ignore[arg-type]
            mail_ids = self._awaiting.get(peer, {}).get(key)
            if mail_ids is None or mail_id not in mail_ids or self._link_of(peer) is not link:
                return  # acknowledged, or the link went (the next one sends it again)
            mail_ids.remove(mail_id)
            if not mail_ids:
                del self._awaiting[peer][key]
            self._in_flight.get(peer, set()).discard(mail_id)
            self._deliver(peer)

        timer = self.reactor.callLater(RECEIPT_TIMEOUT, expire)
        self._timers.add(timer)

    def _written(self, peer: SslId, link: Any, mail_id: int) -> None:
        """The copy's last byte went to ``link``: delivered if the link holds `settle_delay`."""
        timer: IDelayedCall | None = None

        def settle() -> None:
            self._timers.discard(timer)  # type: ignore[arg-type]
            flying = self._in_flight.get(peer, set())
            flying.discard(mail_id)
            if self._link_of(peer) is link and not getattr(link, "lost", False):
                self.store.mark_delivered(mail_id, peer, self.reactor.seconds())
                self._emit(MailDelivered(mail_id, peer))
            else:  # the link was replaced or lost meanwhile: send the copy again
                self._deliver(peer)

        timer = self.reactor.callLater(self.settle_delay, settle)
        self._timers.add(timer)

    def _schedule_retry(self) -> None:
        if self._retry is None or not self._retry.active():
            self._retry = self.reactor.callLater(_RETRY, self._retry_now)

    def _retry_now(self) -> None:
        self._retry = None
        for peer in list(self.peers):
            self._deliver(peer)


def _quote(mail: Mail) -> str:
    return ("<br/><br/>-----Original Message-----<br/>"
            f"Subject: {html.escape(mail.subject, quote=False)}<br/><br/>{mail.body}")
