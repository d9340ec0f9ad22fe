# -*- test-case-name: tests.test_interfaces -*-
"""Who is at the end of a link and what happened to it: plain values, no I/O.

The link manager (a sans-IO core), the Twisted link skins and the services all speak of peers
and link changes in these terms; `pqi.interfaces` re-exports them beside the zope interfaces.
"""

from __future__ import annotations

import dataclasses
import enum

from pqi.wire.address import NetAddress
from pqi.wire.fields import PgpId, SslId

__all__ = ["PeerIdentity", "LinkState", "DisconnectReason", "LinkEvent"]


@dataclasses.dataclass(frozen=True)
class PeerIdentity:
    """Who is at the other end of an authenticated link."""

    ssl_id: SslId
    pgp_id: PgpId
    location_name: str = ""


class LinkState(enum.Enum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


class DisconnectReason(enum.Enum):
    """Why a link went down; shown by ``rsnode status`` and given to services."""

    CLOSED = "closed by peer"
    LOCAL = "closed locally"
    TIMEOUT = "heartbeat timeout"
    FRAMING = "framing error"
    REPLACED = "replaced by a simultaneous connection"
    TLS = "TLS refused"
    ERROR = "transport error"


@dataclasses.dataclass(frozen=True)
class LinkEvent:
    """A link of a friend location came up or went down."""

    peer: PeerIdentity
    state: LinkState
    reason: DisconnectReason | None = None
    address: NetAddress | None = None
    detail: str = ""
