# -*- test-case-name: tests.test_items_small -*-
"""Heartbeat (service 0x0016): an empty item every 5 s keeps a quiet link provably alive."""

from __future__ import annotations

from pqi.wire.item import PQItem

from .ids import SERVICE_HEARTBEAT

__all__ = ["HeartbeatItem"]


class HeartbeatItem(PQItem):
    """``RsHeartbeatItem``: no body."""

    SERVICE = SERVICE_HEARTBEAT
    SUBTYPE = 0x01
    PRIORITY = 8
