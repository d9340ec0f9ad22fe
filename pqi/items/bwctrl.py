# -*- test-case-name: tests.test_items_small -*-
"""Bandwidth control (service 0x0021): how many bytes/s a peer may send us."""

from __future__ import annotations

import construct as c

from pqi.wire import tlvtypes as tt
from pqi.wire.item import PQItem
from pqi.wire.tlv import UInt32TLV

from .ids import SERVICE_BANDWIDTH_CONTROL

__all__ = ["BwCtrlAllowedItem"]


class BwCtrlAllowedItem(PQItem):
    """``RsBwCtrlAllowedItem``: the allowed rate in a UINT32_BW TLV."""

    SERVICE = SERVICE_BANDWIDTH_CONTROL
    SUBTYPE = 0x01
    PRIORITY = 9
    BODY = c.Struct("allowed_bw" / UInt32TLV(tt.UINT32_BW))
    allowed_bw: int
