# -*- test-case-name: tests.test_items_discovery -*-
"""Gossip discovery (service 0x0011): who we are, where we are, and our friends' PGP keys.

On connect each side sends its own CONTACT and identity list; PGP_LIST exchanges the profile
ids each side knows, and unknown keys are fetched with a GETCERT list answered by
PGP_CERT_BINARY.
"""

from __future__ import annotations

import dataclasses
import enum
import io
from typing import Any, Union

import construct as c

from pqi.wire import tlvtypes as tt
from pqi.wire.address import AddressInfo, AddressSetTLV, AddressTLV, NetAddress
from pqi.wire.compound import IdList
from pqi.wire.fields import GxsId, IdField, PgpId, RawMemory, SslId, u16, u32
from pqi.wire.item import PQItem
from pqi.wire.tlv import IdSetTLV, StringTLV, peek_tlv_type

from .ids import SERVICE_GOSSIP_DISCOVERY

__all__ = [
    "PgpListMode", "HiddenAddress", "ContactAddresses", "ContactAddressesField",
    "DiscPgpListItem", "DiscPgpCertItem", "DiscContactItem", "DiscIdentityListItem",
    "DiscPgpKeyItem",
]

class PgpListMode(enum.IntEnum):
    """What a PGP_LIST is for (``RsGossipDiscoveryPgpListMode``)."""

    NONE = 0
    FRIENDS = 1
    GETCERT = 2


class DiscPgpListItem(PQItem):
    """``RsDiscPgpListItem``: a mode and a set of profile ids."""

    SERVICE = SERVICE_GOSSIP_DISCOVERY
    SUBTYPE = 0x01
    PRIORITY = 2
    BODY = c.Struct("mode" / u32, "pgp_ids" / IdSetTLV(tt.PGPIDSET, PgpId))
    mode: int
    pgp_ids: frozenset[PgpId]


class DiscPgpCertItem(PQItem):
    """``RsDiscPgpCertItem`` (deprecated): a profile id and its armoured key as a string TLV.

    Current nodes send PGP_CERT_BINARY instead; this one is decoded so that an old peer's item
    is recognised rather than counted as unknown.
    """

    SERVICE = SERVICE_GOSSIP_DISCOVERY
    SUBTYPE = 0x02
    PRIORITY = 2
    BODY = c.Struct("pgp_id" / IdField(PgpId), "pgp_cert" / StringTLV(tt.STR_PGPCERT))
    pgp_id: PgpId
    pgp_cert: str


@dataclasses.dataclass(frozen=True)
class HiddenAddress:
    """The tail of a CONTACT from a Tor/I2P node: its onion/i2p address and port."""

    addr: str
    port: int


@dataclasses.dataclass(frozen=True)
class ContactAddresses:
    """The tail of a CONTACT from a clear-net node: its addresses as it knows them."""

    local_v4: NetAddress | None = None
    ext_v4: NetAddress | None = None
    local_v6: NetAddress | None = None
    ext_v6: NetAddress | None = None
    current_connect: NetAddress | None = None
    dyndns: str = ""
    local_list: tuple[AddressInfo, ...] = ()
    ext_list: tuple[AddressInfo, ...] = ()


_Hidden = c.Struct("addr" / StringTLV(tt.STR_DOMADDR), "port" / u16)
_Clear = c.Struct(
    "local_v4" / AddressTLV, "ext_v4" / AddressTLV, "local_v6" / AddressTLV,
    "ext_v6" / AddressTLV, "current_connect" / AddressTLV, "dyndns" / StringTLV(tt.STR_DYNDNS),
    "local_list" / AddressSetTLV, "ext_list" / AddressSetTLV)


class _ContactAddresses(c.Construct):
    """The hidden/clear branch: hidden iff the next TLV is a DOMADDR string (as RetroShare)."""

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> Any:
        if peek_tlv_type(stream) == tt.STR_DOMADDR:
            v = _Hidden._parsereport(stream, context, path)
            return HiddenAddress(v.addr, v.port)
        v = _Clear._parsereport(stream, context, path)
        return ContactAddresses(**{n: v[n] for n in _CLEAR_NAMES})

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        if isinstance(obj, HiddenAddress):
            _Hidden._build(dict(addr=obj.addr, port=obj.port), stream, context, path)
        else:
            _Clear._build({n: getattr(obj, n) for n in _CLEAR_NAMES}, stream, context, path)
        return obj


_CLEAR_NAMES = [f.name for f in dataclasses.fields(ContactAddresses)]
ContactAddressesField = _ContactAddresses()


class DiscContactItem(PQItem):
    """``RsDiscContactItem``: a location's ids, name, version, modes and addresses."""

    SERVICE = SERVICE_GOSSIP_DISCOVERY
    SUBTYPE = 0x05
    PRIORITY = 2
    BODY = c.Struct(
        "pgp_id" / IdField(PgpId), "ssl_id" / IdField(SslId),
        "location" / StringTLV(tt.STR_LOCATION), "version" / StringTLV(tt.STR_VERSION),
        "net_mode" / u32, "vs_disc" / u16, "vs_dht" / u16, "last_contact" / u32,
        "addresses" / ContactAddressesField)
    pgp_id: PgpId
    ssl_id: SslId
    location: str
    version: str
    net_mode: int
    vs_disc: int
    vs_dht: int
    last_contact: int
    addresses: Union[HiddenAddress, ContactAddresses]


class DiscIdentityListItem(PQItem):
    """``RsDiscIdentityListItem``: the GXS identities the sender owns (list, in order)."""

    SERVICE = SERVICE_GOSSIP_DISCOVERY
    SUBTYPE = 0x06
    PRIORITY = 2
    BODY = c.Struct("identities" / IdList(GxsId))
    identities: tuple[GxsId, ...]


class DiscPgpKeyItem(PQItem):
    """``RsDiscPgpKeyItem`` (PGP_CERT_BINARY): a profile id and its binary OpenPGP key."""

    SERVICE = SERVICE_GOSSIP_DISCOVERY
    SUBTYPE = 0x09
    PRIORITY = 2
    BODY = c.Struct("pgp_id" / IdField(PgpId),
                    "key_data" / RawMemory())
    pgp_id: PgpId
    key_data: bytes
