# -*- test-case-name: tests.test_jsonapi_conformance -*-
"""``/rsMail/*`` (and the same calls under ``/rsMsgs/*``): mail.

Mail ids are decimal strings like RetroShare's: an inbox mail keeps its inbox id, a sent
mail is `SENT_BASE` plus its outbox id, a distant mail's tracking id `DISTANT_BASE` plus its
distant outbox id.  Trash, star and the five default tags are kept as tags of the inbox
mail.  ``sendMail`` addresses GXS identities, as RetroShare (distant mail, from the ``from``
identity; an identity whose key we do not have yet is "an unknown recipient", as there),
and also friend SSL ids (an extension: a direct mail).  The distant-messaging permission
flags are kept by the node (``rsnode distant permissions``).
"""

from __future__ import annotations

from typing import Any, Final

from pqi.identity.friends import UnknownFriendError
from pqi.wire.fields import GxsId, SslId
from services.gxstunnel.distant_chat import DistantChatPermission
from services.mail.service import MailError

from .api import ApiContext, EndpointTable
from .encoding import Params, x64
from .rs_files import file_info

__all__ = ["ENDPOINTS", "SENT_BASE", "DEFAULT_TAGS", "Box", "MsgFlag"]

ENDPOINTS = EndpointTable()

#: Sent mails' ids start here (inbox ids are below).
SENT_BASE: Final = 1 << 31
#: Distant mails' tracking ids start here (the distant outbox's local ids above it).
DISTANT_BASE: Final = 3 << 30
#: RetroShare's default tag types: id, name, colour.
DEFAULT_TAGS: Final = ((1, "Important", 16711680), (2, "Work", 16750848),
                       (3, "Personal", 39168), (4, "Todo", 3355647), (5, "Later", 10040217))
TRASH_TAG: Final = "trash"
STAR_TAG: Final = "star"
#: Mails listed by one ``getMessageSummaries``.
MAX_SUMMARIES: Final = 10000


class Box:
    """``BoxName``."""

    INBOX: Final = 1
    OUTBOX: Final = 2
    DRAFTS: Final = 3
    SENT: Final = 4
    TRASH: Final = 5
    ALL: Final = 6


class MsgFlag:
    """``RS_MSG_*`` flags."""

    OUTGOING: Final = 0x0001
    PENDING: Final = 0x0002
    NEW: Final = 0x0010
    TRASH: Final = 0x0020
    STAR: Final = 0x0200


#: MsgAddress ``_type`` (RS peer id) and ``_mode`` (to, cc, bcc).
ADDR_PEER: Final = 1
MODE_TO, MODE_CC, MODE_BCC = 1, 2, 3


def _both(*names: str, **kwargs: Any) -> Any:
    paths = [f"/{cls}/{name}" for name in names for cls in ("rsMail", "rsMsgs")]
    return ENDPOINTS.add(*paths, **kwargs)


def _address(peer: str | None, mode: int = MODE_TO) -> dict[str, Any]:
    if peer is None:
        return {"_type": 0, "_mode": 0, "_addr_string": ""}
    return {"_type": ADDR_PEER, "_mode": mode, "_addr_string": peer}


def _tag_ids(tags: tuple[str, ...]) -> list[int]:
    return sorted(int(t[4:]) for t in tags if t.startswith("tag:") and t[4:].isdigit())


def _inbox_flags(mail: Any) -> int:
    flags = 0 if mail.read else MsgFlag.NEW
    if TRASH_TAG in mail.tags:
        flags |= MsgFlag.TRASH
    if STAR_TAG in mail.tags:
        flags |= MsgFlag.STAR
    return flags


def _inbox_record(ctx: ApiContext, mail: Any) -> dict[str, Any]:
    own = ctx.node.ssl_id.to_hex()
    destinations = ([_address(p.to_hex()) for p in sorted(mail.to, key=bytes)]
                    + [_address(p.to_hex(), MODE_CC) for p in sorted(mail.cc, key=bytes)])
    return {"msgId": str(mail.id), "from": _address(mail.sender.to_hex()),
            "to": _address(own), "msgflags": _inbox_flags(mail),
            "msgtags": _tag_ids(mail.tags), "title": mail.subject, "count": 0,
            "ts": x64(mail.send_time), "destinations": destinations}


def _sent(ctx: ApiContext) -> list[dict[str, Any]]:
    own = ctx.node.ssl_id.to_hex()
    out = []
    for mail_id, send_time, subject, recipients in ctx.node.mail.store.sent():
        pending = any(d is None for d in recipients.values())
        out.append({"msgId": str(SENT_BASE + mail_id), "from": _address(own),
                    "to": _address(None),
                    "msgflags": MsgFlag.OUTGOING | (MsgFlag.PENDING if pending else 0),
                    "msgtags": [], "title": subject, "count": 0, "ts": x64(send_time),
                    "destinations": [_address(p) for p in sorted(recipients)],
                    "_pending": pending})
    return out


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not k.startswith("_")}


@_both("getMessageSummaries")
def get_message_summaries(ctx: ApiContext, p: Params) -> dict[str, Any]:
    box = p.int("box", Box.INBOX)
    inbox = ctx.node.mail.inbox()
    out: list[dict[str, Any]] = []
    if box in (Box.INBOX, Box.ALL):
        out += [_inbox_record(ctx, m) for m in inbox if TRASH_TAG not in m.tags]
    if box in (Box.TRASH, Box.ALL):
        out += [_inbox_record(ctx, m) for m in inbox if TRASH_TAG in m.tags]
    if box in (Box.SENT, Box.OUTBOX, Box.ALL):
        out += [_public(r) for r in _sent(ctx)
                if box == Box.ALL or (box == Box.OUTBOX) == r["_pending"]]
    return {"msgList": out[:MAX_SUMMARIES], "retval": True}


def _empty_message() -> dict[str, Any]:
    return {"msgId": "", "from": _address(None), "to": _address(None), "destinations": [],
            "msgflags": 0, "title": "", "msg": "", "attach_title": "", "attach_comment": "",
            "files": [], "size": 0, "count": 0, "ts": 0}


def _mail_id(p: Params) -> int | None:
    text = p.str("msgId")
    return int(text) if text.isdigit() and len(text) < 20 else None


def _inbox_mail(ctx: ApiContext, p: Params) -> Any | None:
    mail_id = _mail_id(p)
    if mail_id is None or mail_id >= SENT_BASE:
        return None
    try:
        return ctx.node.mail.mail(mail_id)
    except (MailError, KeyError):
        return None


@_both("getMessage")
def get_message(ctx: ApiContext, p: Params) -> dict[str, Any]:
    mail = _inbox_mail(ctx, p)
    if mail is not None:
        record = _inbox_record(ctx, mail)
        files = [file_info(fname=f.name, hash=f.hash.to_hex(), size=x64(f.size))
                 for f in mail.attachments]
        return {"msg": {"msgId": record["msgId"], "from": record["from"], "to": record["to"],
                        "destinations": record["destinations"],
                        "msgflags": record["msgflags"], "title": mail.subject,
                        "msg": mail.body, "attach_title": "", "attach_comment": "",
                        "files": files, "size": sum(f.size for f in mail.attachments),
                        "count": len(files), "ts": mail.send_time & 0xFFFFFFFF},
                "retval": True}
    mail_id = _mail_id(p)
    for record in _sent(ctx):
        if mail_id is not None and record["msgId"] == str(mail_id):
            body = ctx.node.mail.store.sent_body(mail_id - SENT_BASE)
            return {"msg": {"msgId": record["msgId"], "from": record["from"],
                            "to": record["to"], "destinations": record["destinations"],
                            "msgflags": record["msgflags"], "title": record["title"],
                            "msg": body or "", "attach_title": "",
                            "attach_comment": "", "files": [], "size": 0, "count": 0,
                            "ts": record["ts"]["xint64"] & 0xFFFFFFFF}, "retval": True}
    return {"msg": _empty_message(), "retval": False}


@_both("getMessageCount")
def get_message_count(ctx: ApiContext, p: Params) -> dict[str, Any]:
    inbox = ctx.node.mail.inbox()
    sent = _sent(ctx)
    live = [m for m in inbox if TRASH_TAG not in m.tags]
    return {"nInbox": len(live), "nInboxNew": sum(1 for m in live if not m.read),
            "nOutbox": sum(1 for r in sent if r["_pending"]), "nDraftbox": 0,
            "nSentbox": sum(1 for r in sent if not r["_pending"]),
            "nTrashbox": len(inbox) - len(live)}


def _retag(ctx: ApiContext, p: Params, tag: str, on: bool) -> dict[str, Any]:
    mail = _inbox_mail(ctx, p)
    if mail is None:
        return {"retval": False}
    tags = [t for t in mail.tags if t != tag] + ([tag] if on else [])
    ctx.node.mail.set_tags(mail.id, tags)
    return {"retval": True}


@_both("MessageToTrash")
def message_to_trash(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return _retag(ctx, p, TRASH_TAG, p.bool("bTrash"))


@_both("MessageStar")
def message_star(ctx: ApiContext, p: Params) -> dict[str, Any]:
    if not isinstance(p.data.get("mark"), bool):
        return {"retval": False}
    return _retag(ctx, p, STAR_TAG, p.bool("mark"))


@_both("MessageRead")
def message_read(ctx: ApiContext, p: Params) -> dict[str, Any]:
    mail = _inbox_mail(ctx, p)
    if mail is None:
        return {"retval": False}
    ctx.node.mail.mark_read(mail.id, not p.bool("unreadByUser"))
    return {"retval": True}


@_both("MessageDelete")
def message_delete(ctx: ApiContext, p: Params) -> dict[str, Any]:
    mail = _inbox_mail(ctx, p)
    if mail is None:
        return {"retval": False}
    ctx.node.mail.delete(mail.id)
    return {"retval": True}


@_both("getMessageTagTypes")
def get_message_tag_types(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"tags": {"types": [{"key": n, "value": {"first": name, "second": colour}}
                               for n, name, colour in DEFAULT_TAGS]}, "retval": True}


@_both("getMessageTag")
def get_message_tag(ctx: ApiContext, p: Params) -> dict[str, Any]:
    mail = _inbox_mail(ctx, p)
    if mail is None:
        return {"info": {"msgId": "", "tagIds": []}, "retval": False}
    return {"info": {"msgId": str(mail.id), "tagIds": _tag_ids(mail.tags)}, "retval": True}


@_both("setMessageTag")
def set_message_tag(ctx: ApiContext, p: Params) -> dict[str, Any]:
    tag = p.int("tagId")
    if not any(n == tag for n, _, _ in DEFAULT_TAGS):
        return {"retval": False}
    return _retag(ctx, p, f"tag:{tag}", p.bool("set"))


@_both("setMessageTagType", "removeMessageTagType",
       note="the five default tags only: changes refused")
def change_message_tag_type(ctx: ApiContext, p: Params) -> dict[str, Any]:
    return {"retval": False}


@_both("getDistantMessagingPermissionFlags")
def get_distant_messaging_permission_flags(ctx: ApiContext, p: Params) -> dict[str, Any]:
    distant = getattr(ctx.node, "distant", None)
    return {"retval": 0 if distant is None else int(distant.permissions.mail)}


@_both("setDistantMessagingPermissionFlags")
def set_distant_messaging_permission_flags(ctx: ApiContext, p: Params) -> dict[str, Any]:
    distant, flags = getattr(ctx.node, "distant", None), p.int("flags")
    if distant is not None and flags in tuple(DistantChatPermission):
        distant.set_permissions(mail=DistantChatPermission(flags))
    return {}


def _friends(ctx: ApiContext, ids: list[str]) -> list[SslId] | None:
    out = []
    for text in ids:
        try:
            ssl_id = SslId.from_hex(text)
            ctx.node.friends_list.location(ssl_id)
        except (ValueError, UnknownFriendError):
            return None
        out.append(ssl_id)
    return out


@_both("MessageSend")
def message_send(ctx: ApiContext, p: Params) -> Any:
    info = p.sub("info")
    by_mode: dict[int, list[str]] = {MODE_TO: [], MODE_CC: [], MODE_BCC: []}
    for entry in info.list("destinations", lambda e: Params(e) if isinstance(e, dict)
                           else None):
        mode = entry.int("_mode")
        if entry.int("_type") == ADDR_PEER and mode in by_mode:
            by_mode[mode].append(entry.ssl_id("_addr_string"))
    if not any(by_mode.values()):
        to = info.sub("to")
        if to.int("_type") == ADDR_PEER:
            by_mode[MODE_TO].append(to.ssl_id("_addr_string"))
    to, cc, bcc = (_friends(ctx, by_mode[m]) for m in (MODE_TO, MODE_CC, MODE_BCC))
    if to is None or cc is None or bcc is None or not (to or cc or bcc):
        return {"retval": False}
    d = ctx.node.send_mail(to, info.str("title"), info.str("msg"), cc=cc, bcc=bcc)
    return d.addCallbacks(lambda _: {"retval": True}, lambda f: {"retval": False})


def _identities(ctx: ApiContext, ids: list[str]) -> list[GxsId] | None:
    """Known GXS identities (distant mail needs their keys), or None if one is unknown."""
    identities = getattr(ctx.node, "identities", None)
    out = []
    for text in ids:
        try:
            gxs_id = GxsId.from_hex(text)
        except ValueError:
            return None
        if identities is None or identities.public_key(gxs_id) is None:
            return None
        out.append(gxs_id)
    return out


@_both("sendMail", note="recipients are GXS identities (distant mail) and, as an "
                        "extension, friend SSL ids (direct mail)")
def send_mail(ctx: ApiContext, p: Params) -> Any:
    groups = [[t.lower() for t in p.strings(name)] for name in ("to", "cc", "bcc")]
    friends: list[list[SslId]] = [[], [], []]
    distant: list[list[GxsId]] = [[], [], []]
    for n, group in enumerate(groups):
        for text in group:
            friend, ident = _friends(ctx, [text]), _identities(ctx, [text])
            if friend:
                friends[n] += friend
            elif ident and getattr(ctx.node, "distant_mail", None) is not None:
                distant[n] += ident
            else:
                name = ("to", "cc", "bcc")[n]
                return {"trackingIds": [], "errorMsg": f"{name} contains an unknown "
                                                       f"recipient: {text}", "retval": 0}
    if not any(friends) and not any(distant):
        return {"trackingIds": [], "errorMsg": "no recipient", "retval": 0}
    tracking: list[dict[str, str]] = []
    if any(distant):
        own = ctx.node.identities.own_ids()
        author = GxsId.from_hex(p.str("from")) if _is_gxs(p.str("from")) else None
        if author is None or author not in own:
            return {"trackingIds": [], "errorMsg": "from is not one of our identities",
                    "retval": 0}
        recipients = [*distant[0], *distant[1], *distant[2]]
        local = ctx.node.distant_mail.send_mail(author, recipients, p.str("subject"),
                                                p.str("mailBody"), to_ids=distant[0],
                                                cc_ids=distant[1])
        tracking += [{"mMailId": str(DISTANT_BASE + n), "mRecipientId": r.to_hex()}
                     for n, r in zip(local, recipients, strict=True)]
    to, cc, bcc = friends
    if not (to or cc or bcc):
        return {"trackingIds": tracking, "errorMsg": "", "retval": 1}

    def sent(mail_id: int) -> dict[str, Any]:
        return {"trackingIds": tracking + [{"mMailId": str(SENT_BASE + mail_id),
                                            "mRecipientId": r.to_hex()}
                                           for r in (*to, *cc, *bcc)],
                "errorMsg": "", "retval": 1}

    d = ctx.node.send_mail(to, p.str("subject"), p.str("mailBody"), cc=cc, bcc=bcc)
    return d.addCallbacks(sent, lambda f: {"trackingIds": tracking,
                                           "errorMsg": f.getErrorMessage(), "retval": 0})


def _is_gxs(text: str) -> bool:
    try:
        GxsId.from_hex(text)
    except ValueError:
        return False
    return True

