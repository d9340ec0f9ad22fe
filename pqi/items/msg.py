# -*- test-case-name: tests.test_items_msg -*-
"""Mail between friends (service 0x0013): one item per message, addressed by peer or GXS id.

Subtypes 0x03..0x0b are RetroShare's local storage records and never travel; only
`MsgItem` (0x01) is a network item.
"""

from __future__ import annotations

import enum

import construct as c

from pqi.wire import tlvtypes as tt
from pqi.wire.compound import FlagsField
from pqi.wire.fields import GxsId, SslId, u32
from pqi.wire.item import PQItem
from pqi.wire.tlv import IdSetTLV, StringTLV
from pqi.wire.tlvvalues import FileSet, FileSetTLV

from .ids import SERVICE_MSG

__all__ = ["MsgFlags", "MsgItem"]


class MsgFlags(enum.IntFlag):
    """``RS_MSG_FLAGS_*`` (``rsmsgitems.h``)."""

    OUTGOING = 0x00000001
    PENDING = 0x00000002
    DRAFT = 0x00000004
    NEW = 0x00000010
    TRASH = 0x00000020
    UNREAD_BY_USER = 0x00000040
    REPLIED = 0x00000080
    FORWARDED = 0x00000100
    STAR = 0x00000200
    PARTIAL = 0x00000400
    USER_REQUEST = 0x00000800
    FRIEND_RECOMMENDATION = 0x00001000
    RETURN_RECEPT = 0x00002000
    ENCRYPTED = 0x00004000
    DISTANT = 0x00008000
    SIGNATURE_CHECKS = 0x00010000
    SIGNED = 0x00020000
    LOAD_EMBEDDED_IMAGES = 0x00040000
    DECRYPTED = 0x00080000
    ROUTED = 0x00100000
    PUBLISH_KEY = 0x00200000
    SPAM = 0x00400000


class MsgItem(PQItem):
    """``RsMsgItem``: flags, times, subject, HTML body, six recipient sets, attachments."""

    SERVICE = SERVICE_MSG
    SUBTYPE = 0x01
    PRIORITY = 2
    BODY = c.Struct(
        "flags" / FlagsField(MsgFlags), "send_time" / u32, "recv_time" / u32,
        "subject" / StringTLV(tt.STR_SUBJECT), "message" / StringTLV(tt.STR_MSG),
        "to_peers" / IdSetTLV(tt.PEERSET, SslId), "cc_peers" / IdSetTLV(tt.PEERSET, SslId),
        "bcc_peers" / IdSetTLV(tt.PEERSET, SslId),
        "to_ids" / IdSetTLV(tt.GXSIDSET, GxsId), "cc_ids" / IdSetTLV(tt.GXSIDSET, GxsId),
        "bcc_ids" / IdSetTLV(tt.GXSIDSET, GxsId),
        "attachment" / FileSetTLV)
    flags: MsgFlags
    send_time: int
    recv_time: int
    subject: str
    message: str
    to_peers: frozenset[SslId] = frozenset()
    cc_peers: frozenset[SslId] = frozenset()
    bcc_peers: frozenset[SslId] = frozenset()
    to_ids: frozenset[GxsId] = frozenset()
    cc_ids: frozenset[GxsId] = frozenset()
    bcc_ids: frozenset[GxsId] = frozenset()
    attachment: FileSet = FileSet()
