# -*- test-case-name: tests.test_items_small -*-
"""Status (service 0x0102): online, away, busy... sent on connect and on every change."""

from __future__ import annotations

import enum

import construct as c

from pqi.wire.fields import u32
from pqi.wire.item import PQItem

from .ids import SERVICE_STATUS

__all__ = ["PeerStatus", "StatusItem"]


class PeerStatus(enum.IntEnum):
    """The status values RetroShare defines (``rsstatus.h``)."""

    OFFLINE = 0
    AWAY = 1
    BUSY = 2
    ONLINE = 3
    INACTIVE = 4


class StatusItem(PQItem):
    """``RsStatusItem``: when it was sent and the status (a `PeerStatus` value, kept raw)."""

    SERVICE = SERVICE_STATUS
    SUBTYPE = 0x01
    PRIORITY = 2
    BODY = c.Struct("send_time" / u32, "status" / u32)
    send_time: int
    status: int
