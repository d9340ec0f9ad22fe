# -*- test-case-name: tests.test_items_nxs -*-
"""GXS network sync (NXS): the item set every GXS service uses to sync groups and messages.

The same layouts travel under each GXS service's own id (0x0211 identities, 0x0215 forums,
0x0230 GXS-trans, ...), and the binary TLVs inside group and message items are typed with that
service id.  The registry is keyed by (service, subtype), so one class per layout is written
here and `_register` derives one registered subclass per (GXS service, subtype) from it, named
``<Base>_<Service>`` (``NxsSyncGrpReqItem_Forums``).  Look them up with `nxs_item_class`.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, ClassVar, Final

import construct as c

from pqi.wire import tlvtypes as tt
from pqi.wire.compound import FlagsField
from pqi.wire.errors import InvalidValueError
from pqi.wire.fields import GxsId, GxsMessageId, IdField, u8, u16, u32
from pqi.wire.item import PQItem
from pqi.wire.tlv import TLV, BinaryTLV, StringTLV

from . import ids

__all__ = [
    "GXS_SERVICES", "NxsTransacFlags", "NxsRsaKey", "NXS_ITEM_BASES", "nxs_item_class",
    "NxsItem", "NxsSyncGrpReqItem", "NxsSyncGrpItem", "NxsSyncGrpStatsItem", "NxsGrpItem",
    "NxsEncryptedDataItem", "NxsSyncMsgItem", "NxsSyncMsgReqItem", "NxsMsgItem",
    "NxsTransacItem", "NxsGroupPublishKeyItem", "NxsPullRequestItem",
    "TLV_BIN_ENCRYPTED", "TLV_SECURITY_KEY", "TLV_KEY_EVP_PKEY", "RsaKeyTLV",
]

#: Binary TLV types used by NXS items (``rstlvbase.h``).
TLV_BIN_ENCRYPTED: Final = 0x0170
TLV_SECURITY_KEY: Final = 0x1040
TLV_KEY_EVP_PKEY: Final = 0x0110

#: GXS services that sync through NXS, with the suffix of their generated class names.
#: (0x0219 reputation and 0x2233 distant sync have item sets of their own.)
GXS_SERVICES: Final[dict[int, str]] = {
    ids.SERVICE_GXSID: "GxsId",
    ids.SERVICE_PHOTO: "Photo",
    ids.SERVICE_WIKI: "Wiki",
    ids.SERVICE_WIRE: "Wire",
    ids.SERVICE_FORUMS: "Forums",
    ids.SERVICE_POSTED: "Posted",
    ids.SERVICE_CHANNELS: "Channels",
    ids.SERVICE_GXSCIRCLE: "GxsCircle",
    ids.SERVICE_GXS_RECOGN: "GxsRecogn",
    ids.SERVICE_GXS_TRANS: "GxsTrans",
}


class NxsTransacFlags(enum.IntFlag):
    """``RsNxsTransacItem::FLAG_*``: a state in the low byte, a transaction type in the high."""

    BEGIN_P1 = 0x0001
    BEGIN_P2 = 0x0002
    END_SUCCESS = 0x0004
    CANCEL = 0x0008
    END_FAIL_NUM = 0x0010
    END_FAIL_TIMEOUT = 0x0020
    END_FAIL_FULL = 0x0040
    TYPE_GRP_LIST_RESP = 0x0100
    TYPE_MSG_LIST_RESP = 0x0200
    TYPE_GRP_LIST_REQ = 0x0400
    TYPE_MSG_LIST_REQ = 0x0800
    TYPE_GRPS = 0x1000
    TYPE_MSGS = 0x2000
    TYPE_ENCRYPTED_DATA = 0x4000


class NxsItem(PQItem):
    """Base of the NXS layouts: not registered itself; see `nxs_item_class`.

    ``NXS_SUBTYPE`` is the subtype the derived classes register under; `body_for` gives the
    body schema under a given service id (the same for most layouts).
    """

    PRIORITY = 6
    NXS_SUBTYPE: ClassVar[int]

    @classmethod
    def body_for(cls, service: int) -> c.Construct:
        return cls.BODY


class NxsSyncGrpReqItem(NxsItem):
    """``RsNxsSyncGrpReqItem``: which groups changed since ``update_ts``?"""

    NXS_SUBTYPE = 0x01
    BODY = c.Struct("transaction_number" / u32, "flag" / u8, "created_since" / u32,
                    "sync_hash" / StringTLV(tt.HASH_SHA1), "update_ts" / u32)
    transaction_number: int
    flag: int
    created_since: int
    sync_hash: str
    update_ts: int


class NxsSyncGrpItem(NxsItem):
    """``RsNxsSyncGrpItem``: one group id (and its publish time and author) in a list."""

    NXS_SUBTYPE = 0x02
    BODY = c.Struct("transaction_number" / u32, "flag" / u8, "grp_id" / IdField(GxsId),
                    "publish_ts" / u32, "author_id" / IdField(GxsId))
    transaction_number: int
    flag: int
    grp_id: GxsId
    publish_ts: int
    author_id: GxsId


class NxsSyncGrpStatsItem(NxsItem):
    """``RsNxsSyncGrpStatsItem``: post count and last post time of a group (no txn number)."""

    NXS_SUBTYPE = 0x03
    BODY = c.Struct("request_type" / u32, "grp_id" / IdField(GxsId),
                    "number_of_posts" / u32, "last_post_ts" / u32)
    request_type: int
    grp_id: GxsId
    number_of_posts: int
    last_post_ts: int


def _grp_body(service: int) -> c.Construct:
    return c.Struct("transaction_number" / u32, "pos" / u8, "grp_id" / IdField(GxsId),
                    "grp" / BinaryTLV(service), "meta" / BinaryTLV(service))


class NxsGrpItem(NxsItem):
    """``RsNxsGrp``: a whole group, data and metadata in binary TLVs typed by the service."""

    NXS_SUBTYPE = 0x04
    BODY = _grp_body(ids.SERVICE_NXS)
    transaction_number: int
    pos: int
    grp_id: GxsId
    grp: bytes
    meta: bytes

    @classmethod
    def body_for(cls, service: int) -> c.Construct:
        return _grp_body(service)


class NxsEncryptedDataItem(NxsItem):
    """``RsNxsEncryptedDataItem``: a transaction item encrypted for a circle."""

    NXS_SUBTYPE = 0x05
    BODY = c.Struct("transaction_number" / u32, "encrypted_data" / BinaryTLV(TLV_BIN_ENCRYPTED))
    transaction_number: int
    encrypted_data: bytes


class NxsSyncMsgItem(NxsItem):
    """``RsNxsSyncMsgItem``: one message id of a group in a list."""

    NXS_SUBTYPE = 0x08
    BODY = c.Struct("transaction_number" / u32, "flag" / u8, "grp_id" / IdField(GxsId),
                    "msg_id" / IdField(GxsMessageId), "author_id" / IdField(GxsId))
    transaction_number: int
    flag: int
    grp_id: GxsId
    msg_id: GxsMessageId
    author_id: GxsId


class NxsSyncMsgReqItem(NxsItem):
    """``RsNxsSyncMsgReqItem``: which messages of this group changed since ``update_ts``?"""

    NXS_SUBTYPE = 0x10
    BODY = c.Struct("transaction_number" / u32, "flag" / u8, "created_since" / u32,
                    "sync_hash" / StringTLV(tt.HASH_SHA1), "grp_id" / IdField(GxsId),
                    "update_ts" / u32)
    transaction_number: int
    flag: int
    created_since: int
    sync_hash: str
    grp_id: GxsId
    update_ts: int


def _msg_body(service: int) -> c.Construct:
    return c.Struct("transaction_number" / u32, "pos" / u8, "msg_id" / IdField(GxsMessageId),
                    "grp_id" / IdField(GxsId), "msg" / BinaryTLV(service),
                    "meta" / BinaryTLV(service))


class NxsMsgItem(NxsItem):
    """``RsNxsMsg``: a whole message, data and metadata in binary TLVs typed by the service."""

    NXS_SUBTYPE = 0x20
    BODY = _msg_body(ids.SERVICE_NXS)
    transaction_number: int
    pos: int
    msg_id: GxsMessageId
    grp_id: GxsId
    msg: bytes
    meta: bytes

    @classmethod
    def body_for(cls, service: int) -> c.Construct:
        return _msg_body(service)


class NxsTransacItem(NxsItem):
    """``RsNxsTransacItem``: begins, acknowledges or ends a transaction of ``n_items``."""

    NXS_SUBTYPE = 0x40
    BODY = c.Struct("transaction_number" / u32, "transact_flag" / FlagsField(NxsTransacFlags, u16),
                    "n_items" / u32, "update_ts" / u32)
    transaction_number: int
    transact_flag: NxsTransacFlags
    n_items: int
    update_ts: int


@dataclasses.dataclass(frozen=True)
class NxsRsaKey:
    """``RsTlvRSAKey`` (SECURITY_KEY 0x1040): key id, flags, validity and the DER key."""

    key_id: GxsId
    key_flags: int
    start_ts: int
    end_ts: int
    key_data: bytes


class _KeyId(c.Adapter):
    """A GXS id carried as its hex text in a STR_KEYID string TLV."""

    def _decode(self, obj: str, context: Any, path: str) -> GxsId:
        try:
            return GxsId.from_hex(obj)
        except ValueError as e:
            raise InvalidValueError(f"key id {obj!r} is not a GXS id", field=path) from e

    def _encode(self, obj: GxsId, context: Any, path: str) -> str:
        return obj.to_hex()


#: The ``RsTlvRSAKey`` construct (also the elements of a GXS key set, `pqi.items.gxs`).
RsaKeyTLV = c.ExprAdapter(
    TLV(TLV_SECURITY_KEY, c.Struct(
        "key_id" / _KeyId(StringTLV(tt.STR_KEYID)), "key_flags" / u32, "start_ts" / u32,
        "end_ts" / u32, "key_data" / BinaryTLV(TLV_KEY_EVP_PKEY)), whole=False),
    lambda obj, ctx: NxsRsaKey(obj.key_id, obj.key_flags, obj.start_ts, obj.end_ts,
                               obj.key_data),
    lambda obj, ctx: dataclasses.asdict(obj),
)


class NxsGroupPublishKeyItem(NxsItem):
    """``RsNxsGroupPublishKeyItem``: hands a group's private publish key to a friend."""

    NXS_SUBTYPE = 0x80
    BODY = c.Struct("grp_id" / IdField(GxsId), "private_key" / RsaKeyTLV)
    grp_id: GxsId
    private_key: NxsRsaKey


class NxsPullRequestItem(NxsItem):
    """``RsNxsPullRequestItem``: asks the friend to sync with us now (empty body)."""

    NXS_SUBTYPE = 0x90


#: The layouts, one per subtype.
NXS_ITEM_BASES: Final[tuple[type[NxsItem], ...]] = (
    NxsSyncGrpReqItem, NxsSyncGrpItem, NxsSyncGrpStatsItem, NxsGrpItem, NxsEncryptedDataItem,
    NxsSyncMsgItem, NxsSyncMsgReqItem, NxsMsgItem, NxsTransacItem, NxsGroupPublishKeyItem,
    NxsPullRequestItem)

_CLASSES: dict[tuple[int, int], type[NxsItem]] = {}


def _register(base: type[NxsItem], service: int, suffix: str) -> type[NxsItem]:
    """Derive and register ``base`` under ``service``."""
    name = f"{base.__name__}_{suffix}"
    namespace: dict[str, Any] = {
        "SERVICE": service, "SUBTYPE": base.NXS_SUBTYPE, "__module__": __name__,
        "__qualname__": name, "__doc__": f"{base.__name__} of service 0x{service:04x}.",
    }
    body = base.body_for(service)
    if body is not base.BODY:
        namespace["BODY"] = body
    cls = type(name, (base,), namespace)
    globals()[name] = cls  # importable by name, so reprs and pickles resolve
    return cls


for _service, _suffix in GXS_SERVICES.items():
    for _base in NXS_ITEM_BASES:
        _CLASSES[_service, _base.NXS_SUBTYPE] = _register(_base, _service, _suffix)


def nxs_item_class(service: int, base: type[NxsItem]) -> type[NxsItem]:
    """The registered class of layout ``base`` under GXS service ``service``."""
    try:
        return _CLASSES[service, base.NXS_SUBTYPE]
    except KeyError:
        raise KeyError(f"no NXS item {base.__name__} for service 0x{service:04x}") from None
