# -*- test-case-name: tests.test_gxs_net_tunnel -*-
"""GXS network tunnels (service 0x2233, ``RsGxsNetTunnelService``): distant GXS sync and
group search over turtle.

These items never travel between friends: they are the clear text inside the encrypted
generic data items of a group's tunnels (virtual peer names, keep-alives), or the opaque
payload of turtle generic search requests and results (group searches).  The layouts follow
libretroshare's ``rsgxsnettunnel.cc``; no capture of real nodes holds them yet.
"""

from __future__ import annotations

import dataclasses

import construct as c

from pqi.wire import tlvtypes as tt
from pqi.wire.compound import DataclassStruct, TupleArray
from pqi.wire.fields import GxsId, IdField, RawMemory, RsString, Sha1Hash, SslId, u16, u32, u64
from pqi.wire.item import PQItem
from pqi.wire.tlv import StringTLV

from .ids import SERVICE_GXS_DISTANT

__all__ = [
    "GxsGroupSummary", "GxsNetTunnelVirtualPeerItem", "GxsNetTunnelKeepAliveItem",
    "GxsNetTunnelRandomBiasItem", "GxsNetTunnelSearchSubstringItem",
    "GxsNetTunnelSearchGroupRequestItem", "GxsNetTunnelSearchGroupDataItem",
    "GxsNetTunnelSearchGroupSummaryItem", "GxsServiceSearchRequestItem",
    "GxsServiceSearchReplyItem",
]


@dataclasses.dataclass(frozen=True)
class GxsGroupSummary:
    """``RsGxsGroupSummary``: what a group search hit tells about a group."""

    group_id: GxsId
    name: str
    author_id: GxsId
    publish_ts: int
    message_count: int
    last_message_ts: int
    sign_flags: int
    popularity: int
    search_context: str


_Summary = DataclassStruct(
    GxsGroupSummary, "group_id" / IdField(GxsId), "name" / RsString,
    "author_id" / IdField(GxsId), "publish_ts" / u64, "message_count" / u32,
    "last_message_ts" / u64, "sign_flags" / u32, "popularity" / u32,
    "search_context" / RsString)


class GxsNetTunnelVirtualPeerItem(PQItem):
    """``VIRTUAL_PEER``: the GXS virtual peer id the sender uses for this group, the first
    thing each end sends through a new tunnel."""

    SERVICE = SERVICE_GXS_DISTANT
    PRIORITY = 3
    SUBTYPE = 0x01
    BODY = c.Struct("virtual_peer_id" / IdField(SslId))
    virtual_peer_id: SslId


class GxsNetTunnelKeepAliveItem(PQItem):
    """``KEEP_ALIVE``: keeps an idle tunnel from being closed by the routers."""

    SERVICE = SERVICE_GXS_DISTANT
    PRIORITY = 3
    SUBTYPE = 0x02
    BODY = c.Struct()


class GxsNetTunnelRandomBiasItem(PQItem):
    """``RANDOM_BIAS``: the 20-byte bias virtual peer ids are made from (kept in RetroShare's
    configuration, never sent)."""

    SERVICE = SERVICE_GXS_DISTANT
    PRIORITY = 3
    SUBTYPE = 0x03
    BODY = c.Struct("bias" / IdField(Sha1Hash))  # 20 raw bytes, as a SHA-1
    bias: Sha1Hash


class GxsNetTunnelSearchSubstringItem(PQItem):
    """``SEARCH_SUBSTRING``: groups of ``service`` whose name contains the text."""

    SERVICE = SERVICE_GXS_DISTANT
    PRIORITY = 3
    SUBTYPE = 0x04
    BODY = c.Struct("service" / u16, "substring" / StringTLV(tt.STR_KEY))
    service: int
    substring: str


class GxsNetTunnelSearchGroupRequestItem(PQItem):
    """``SEARCH_GROUP_REQUEST``: the group data of the group whose id hashes to this."""

    SERVICE = SERVICE_GXS_DISTANT
    PRIORITY = 3
    SUBTYPE = 0x05
    BODY = c.Struct("service" / u16, "hashed_group_id" / IdField(Sha1Hash))
    service: int
    hashed_group_id: Sha1Hash


class GxsNetTunnelSearchGroupDataItem(PQItem):
    """``SEARCH_GROUP_DATA``: the answer to a group request (encrypted group data)."""

    SERVICE = SERVICE_GXS_DISTANT
    PRIORITY = 3
    SUBTYPE = 0x07
    BODY = c.Struct("service" / u16, "encrypted_group_data" / RawMemory())
    service: int
    encrypted_group_data: bytes


class GxsNetTunnelSearchGroupSummaryItem(PQItem):
    """``SEARCH_GROUP_SUMMARY``: the answer to a substring search (the groups found)."""

    SERVICE = SERVICE_GXS_DISTANT
    PRIORITY = 3
    SUBTYPE = 0x08
    BODY = c.Struct("service" / u16,
                    "groups" / TupleArray(_Summary, min_size=16 + 4 + 16 + 8 + 4 + 8 + 12))
    service: int
    groups: tuple[GxsGroupSummary, ...]


class GxsServiceSearchRequestItem(PQItem):
    """``SERVICE_SEARCH_REQUEST``: a search whose data only the named service reads."""

    SERVICE = SERVICE_GXS_DISTANT
    PRIORITY = 3
    SUBTYPE = 0x09
    BODY = c.Struct("service" / u16, "search_data" / RawMemory())
    service: int
    search_data: bytes


class GxsServiceSearchReplyItem(PQItem):
    """``SERVICE_SEARCH_REPLY``: the named service's answer to a service search."""

    SERVICE = SERVICE_GXS_DISTANT
    PRIORITY = 3
    SUBTYPE = 0x0A
    BODY = c.Struct("service" / u16, "reply_data" / RawMemory())
    service: int
    reply_data: bytes
