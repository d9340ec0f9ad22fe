"""Tests of the GXS network-sync items: layouts, and one registered class per GXS service.

Hex strings are items captured from real RetroShare 0.6.7 nodes (file:line of
``tests/vectors/retroshare``: ``captures/``) or built by hand from ``rsnxsitems.cc`` facts.
"""

from __future__ import annotations

import pytest

import pqi
from pqi.items import ids
from pqi.items.nxs import (
    GXS_SERVICES,
    NXS_ITEM_BASES,
    NxsEncryptedDataItem,
    NxsGroupPublishKeyItem,
    NxsGrpItem,
    NxsMsgItem,
    NxsPullRequestItem,
    NxsRsaKey,
    NxsSyncGrpItem,
    NxsSyncGrpReqItem,
    NxsSyncGrpStatsItem,
    NxsSyncMsgItem,
    NxsSyncMsgReqItem,
    NxsTransacFlags,
    NxsTransacItem,
    nxs_item_class,
)
from pqi.wire.fields import GxsId, GxsMessageId

TRANS = ids.SERVICE_GXS_TRANS
GRP = GxsId.from_hex("df1ec0b38e366835fed9433b1fcc8dae")


def _same(item: pqi.PQItem, hexstr: str) -> None:
    raw = bytes.fromhex(hexstr)
    assert pqi.encode(item) == raw
    assert pqi.decode(raw) == item


@pytest.mark.parametrize("service", sorted(GXS_SERVICES))
@pytest.mark.parametrize("base", NXS_ITEM_BASES, ids=lambda b: b.__name__)
def test_one_registered_class_per_service_and_layout(service: int, base: type) -> None:
    """Each (GXS service, layout) has its own registered subclass, named after both."""
    cls = nxs_item_class(service, base)
    assert issubclass(cls, base)
    assert (cls.SERVICE, cls.SUBTYPE, cls.PRIORITY) == (service, base.NXS_SUBTYPE, 6)
    assert pqi.item_class(service, base.NXS_SUBTYPE) is cls
    assert cls.__name__ == f"{base.__name__}_{GXS_SERVICES[service]}"


def test_reputation_and_unknown_services_have_no_nxs_classes() -> None:
    """0x0219 (reputation) has its own item set; asking for NXS classes there is an error."""
    with pytest.raises(KeyError):
        nxs_item_class(ids.SERVICE_REPUTATION, NxsSyncGrpReqItem)
    assert pqi.item_class(ids.SERVICE_REPUTATION, 0x01) is None


def test_sync_group_request_under_two_services() -> None:
    """alice:84 (gxsid) and the same body under forums: only the service id differs."""
    for service, head in [(ids.SERVICE_GXSID, "020211"), (ids.SERVICE_FORUMS, "020215")]:
        cls = nxs_item_class(service, NxsSyncGrpReqItem)
        _same(cls(transaction_number=0, flag=0, created_since=0, sync_hash="", update_ts=0),
              head + "010000001b00000000000000000000700000000600000000")


def test_sync_group_and_stats() -> None:
    """bob:760 (group list entry) and alice:182 (stats request; no transaction number)."""
    _same(nxs_item_class(TRANS, NxsSyncGrpItem)(
        transaction_number=7, flag=1, grp_id=GxsId.from_hex("289da59eab1132979cb4fd9285dbd965"),
        publish_ts=0, author_id=GxsId.null()),
        "02023002000000310000000701289da59eab1132979cb4fd9285dbd965" + "00" * 20)
    _same(nxs_item_class(TRANS, NxsSyncGrpStatsItem)(
        request_type=1, grp_id=GRP, number_of_posts=0, last_post_ts=0),
        "020230030000002400000001df1ec0b38e366835fed9433b1fcc8dae0000000000000000")


def test_sync_message_request_and_transaction_and_pull() -> None:
    """alice:90, alice:799 and carol:57 (the empty pull request)."""
    _same(nxs_item_class(TRANS, NxsSyncMsgReqItem)(
        transaction_number=0, flag=0, created_since=0x6AF31888, sync_hash="", grp_id=GRP,
        update_ts=0),
        "020230100000002b00000000006af31888007000000006df1ec0b38e366835fed9433b1fcc8dae00000000")
    item = nxs_item_class(TRANS, NxsTransacItem)(
        transaction_number=11, transact_flag=NxsTransacFlags.BEGIN_P2
        | NxsTransacFlags.TYPE_GRP_LIST_RESP, n_items=0, update_ts=0)
    _same(item, "02023040000000160000000b01020000000000000000")
    _same(nxs_item_class(TRANS, NxsPullRequestItem)(), "0202309000000008")


def test_group_and_message_binaries_are_typed_with_the_service_id() -> None:
    """RsNxsGrp/RsNxsMsg hold their data in binary TLVs whose type is the service id."""
    grp = nxs_item_class(ids.SERVICE_CHANNELS, NxsGrpItem)(
        transaction_number=9, pos=0, grp_id=GRP, grp=b"g", meta=b"m")
    _same(grp, "020217040000002b" "00000009" "00" + GRP.hex() + "02170000000767"
          "0217000000076d")
    msg = nxs_item_class(ids.SERVICE_CHANNELS, NxsMsgItem)(
        transaction_number=9, pos=1, msg_id=GxsMessageId(b"\x05" * 20), grp_id=GRP,
        msg=b"x", meta=b"")
    _same(msg, "020217200000003e" "00000009" "01" + "05" * 20 + GRP.hex() + "02170000000778"
          "021700000006")


def test_group_binary_of_another_service_is_refused() -> None:
    """A channels group whose TLVs carry the forums type does not decode."""
    raw = bytearray(pqi.encode(nxs_item_class(ids.SERVICE_CHANNELS, NxsGrpItem)(
        transaction_number=0, pos=0, grp_id=GRP, grp=b"", meta=b"")))
    raw[8 + 21:8 + 23] = b"\x02\x15"
    with pytest.raises(pqi.InvalidValueError):
        pqi.decode(bytes(raw))


def test_encrypted_data_and_publish_key() -> None:
    """0x05: txn + BIN_ENCRYPTED TLV; 0x80: group id + SECURITY_KEY TLV (hex key id)."""
    _same(nxs_item_class(TRANS, NxsEncryptedDataItem)(transaction_number=1,
                                                       encrypted_data=b"e"),
          "0202300500000013" "00000001" "01700000000765")
    key = NxsRsaKey(key_id=GxsId(b"\x11" * 16), key_flags=2, start_ts=3, end_ts=4,
                    key_data=b"k")
    _same(nxs_item_class(TRANS, NxsGroupPublishKeyItem)(grp_id=GRP, private_key=key),
          "0202308000000057" + GRP.hex() + "10400000003f" "00a400000026" + "31" * 32
          + "00000002" "00000003" "00000004" "0110000000076b")


def test_sync_message_entry() -> None:
    """0x08: txn, flag, group id, message id (20 bytes), author id."""
    _same(nxs_item_class(TRANS, NxsSyncMsgItem)(
        transaction_number=1, flag=2, grp_id=GRP, msg_id=GxsMessageId(b"\x05" * 20),
        author_id=GxsId(b"\x06" * 16)),
        "0202300800000041" "00000001" "02" + GRP.hex() + "05" * 20 + "06" * 16)
