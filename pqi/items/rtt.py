# -*- test-case-name: tests.test_items_small -*-
"""RTT (service 0x1011): ping/pong with the sender's timestamps to measure round-trip time.

Timestamps are RetroShare's 64-bit fixed-point seconds, echoed untouched by the pong.
"""

from __future__ import annotations

import construct as c

from pqi.wire.fields import u32, u64
from pqi.wire.item import PQItem

from .ids import SERVICE_RTT

__all__ = ["RttPingItem", "RttPongItem"]


class RttPingItem(PQItem):
    """``RsRttPingItem``: sequence number and the pinger's timestamp."""

    SERVICE = SERVICE_RTT
    SUBTYPE = 0x01
    PRIORITY = 9
    BODY = c.Struct("seq" / u32, "ping_ts" / u64)
    seq: int
    ping_ts: int


class RttPongItem(PQItem):
    """``RsRttPongItem``: the ping's sequence number and timestamp plus the ponger's."""

    SERVICE = SERVICE_RTT
    SUBTYPE = 0x02
    PRIORITY = 9
    BODY = c.Struct("seq" / u32, "ping_ts" / u64, "pong_ts" / u64)
    seq: int
    ping_ts: int
    pong_ts: int
