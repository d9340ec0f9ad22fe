# -*- test-case-name: tests.test_items_gxstunnel -*-
"""GXS tunnels (service 0x0028): the items two identities exchange inside a turtle tunnel.

They never travel alone on a link: each is serialised into the data of a turtle
``GENERIC_DATA`` / ``GENERIC_FAST_DATA`` item.  The Diffie-Hellman public key goes in clear
behind 8 zero bytes; every other item is encrypted (`services.gxstunnel.crypto`).  A data
item carries the bytes of one client service of the tunnel (distant chat: a serialised chat
item) and is acknowledged by its counter.
"""

from __future__ import annotations

import enum
from typing import Final

import construct as c

from pqi.wire.fields import RawMemory, u32, u64
from pqi.wire.item import PQItem
from pqi.wire.tlvvalues import KeySignature, KeySignatureTLV

from .ids import SERVICE_GXS_TUNNEL
from .nxs import NxsRsaKey, RsaKeyTLV

__all__ = [
    "GxsTunnelFlags", "MAX_DH_PUBLIC_KEY", "MAX_TUNNEL_DATA",
    "GxsTunnelDataItem", "GxsTunnelDhPublicKeyItem", "GxsTunnelStatusItem",
    "GxsTunnelDataAckItem",
]

#: Largest DH public key we read (RetroShare's prime has 2048 bits: 256 bytes).
MAX_DH_PUBLIC_KEY: Final = 1024
#: Largest client payload of one data item (a distant chat item is far smaller).
MAX_TUNNEL_DATA: Final = 1 << 20
#: ``QOS_PRIORITY_RS_CHAT_ITEM``.
_PRIORITY: Final = 7


class GxsTunnelFlags(enum.IntEnum):
    """``RS_GXS_TUNNEL_FLAG_*``: what a status item says."""

    CLOSING_DISTANT_CONNECTION = 0x0400
    ACK_DISTANT_CONNECTION = 0x0800
    KEEP_ALIVE = 0x1000


class GxsTunnelDataItem(PQItem):
    """``RsGxsTunnelDataItem``: ``data`` for the client service ``service_id``; the counter
    makes it unique (acknowledged, deduplicated) and keeps the order."""

    SERVICE = SERVICE_GXS_TUNNEL
    SUBTYPE = 0x01
    PRIORITY = _PRIORITY
    BODY = c.Struct("counter" / u64, "flags" / u32, "service_id" / u32,
                    "data" / RawMemory(MAX_TUNNEL_DATA, "MAX_TUNNEL_DATA"))
    counter: int
    flags: int
    service_id: int
    data: bytes


class GxsTunnelDhPublicKeyItem(PQItem):
    """``RsGxsTunnelDHPublicKeyItem``: our DH public value (big-endian bytes, as OpenSSL's
    ``BN_bn2bin``), the identity's signature over exactly those bytes, and its public key."""

    SERVICE = SERVICE_GXS_TUNNEL
    SUBTYPE = 0x02
    PRIORITY = _PRIORITY
    BODY = c.Struct("public_key" / RawMemory(MAX_DH_PUBLIC_KEY, "MAX_DH_PUBLIC_KEY"),
                    "signature" / KeySignatureTLV, "gxs_key" / RsaKeyTLV)
    public_key: bytes
    signature: KeySignature
    gxs_key: NxsRsaKey


class GxsTunnelStatusItem(PQItem):
    """``RsGxsTunnelStatusItem``: one of `GxsTunnelFlags` (other values are ignored)."""

    SERVICE = SERVICE_GXS_TUNNEL
    SUBTYPE = 0x03
    PRIORITY = _PRIORITY
    BODY = c.Struct("status" / u32)
    status: int


class GxsTunnelDataAckItem(PQItem):
    """``RsGxsTunnelDataAckItem``: the data item ``counter`` arrived."""

    SERVICE = SERVICE_GXS_TUNNEL
    SUBTYPE = 0x04
    PRIORITY = _PRIORITY
    BODY = c.Struct("counter" / u64)
    counter: int
