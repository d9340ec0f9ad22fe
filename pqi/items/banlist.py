# -*- test-case-name: tests.test_items_small -*-
"""Ban list (service 0x0101): IP addresses a peer has banned, shared among friends."""

from __future__ import annotations

import dataclasses

import construct as c

from pqi.wire import tlvtypes as tt
from pqi.wire.address import AddressTLV, NetAddress
from pqi.wire.compound import DataclassStruct
from pqi.wire.fields import u8, u32
from pqi.wire.item import PQItem
from pqi.wire.tlv import TLV, StringTLV, TLVList

from .ids import SERVICE_BANLIST

__all__ = ["BanEntry", "BanEntryTLV", "BanListTLV", "BanListItem"]


@dataclasses.dataclass(frozen=True)
class BanEntry:
    """``RsTlvBanListEntry``: an address (or masked range), why and since when it is banned."""

    addr: NetAddress | None
    level: int = 0
    reason: int = 0
    age: int = 0
    masked_bytes: int = 0
    comment: str = ""


BanEntryTLV = TLV(tt.BAN_ENTRY, DataclassStruct(
    BanEntry, "addr" / AddressTLV, "level" / u32, "reason" / u32, "age" / u32,
    "masked_bytes" / u8, "comment" / StringTLV(tt.STR_COMMENT)), whole=False)

#: BAN_LIST 0x1091: BAN_ENTRY TLVs back to back.
BanListTLV = TLVList(tt.BAN_LIST, BanEntryTLV)


class BanListItem(PQItem):
    """``RsBanListItem`` (subtype 0x03; 0x01 and 0x02 are deprecated)."""

    SERVICE = SERVICE_BANLIST
    SUBTYPE = 0x03
    PRIORITY = 3
    BODY = c.Struct("entries" / BanListTLV)
    entries: list[BanEntry]
