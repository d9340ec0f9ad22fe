# -*- test-case-name: tests.test_items_small -*-
"""ServiceInfo (service 0x0020): the list of services a node runs, sent first on every link.

A service is enabled towards a peer only when both lists hold it with the same full id and name
and compatible versions; everything else for that service is then dropped.
"""

from __future__ import annotations

import dataclasses
from typing import Final

import construct as c

from pqi.wire.compound import DataclassStruct
from pqi.wire.fields import RsString, u16, u32
from pqi.wire.item import PKT_VERSION_SERVICE, PQItem
from pqi.wire.tlv import TLV, MapTLV, UInt32TLV

from .ids import SERVICE_SERVICEINFO

__all__ = ["ServiceInfo", "ServiceInfoListItem", "ServiceInfoPermissionsItem",
           "SERVICE_INFO_TLV", "full_service_id"]

#: The map, pair, key and value TLV types of the service list are all 1.
SERVICE_INFO_TLV: Final = 0x0001


def full_service_id(service: int) -> int:
    """The 32-bit id a service is listed under: ``0x02 << 24 | service << 8``."""
    return PKT_VERSION_SERVICE << 24 | service << 8


@dataclasses.dataclass(frozen=True)
class ServiceInfo:
    """One service as announced: name, full id, version and the oldest version it talks to."""

    name: str
    service_type: int
    version_major: int = 1
    version_minor: int = 0
    min_version_major: int = 1
    min_version_minor: int = 0


_ServiceInfoTLV = TLV(SERVICE_INFO_TLV, DataclassStruct(
    ServiceInfo, "name" / RsString, "service_type" / u32, "version_major" / u16,
    "version_minor" / u16, "min_version_major" / u16, "min_version_minor" / u16), whole=False)


class ServiceInfoListItem(PQItem):
    """``RsServiceInfoListItem``: full service id -> `ServiceInfo`, sorted by id on the wire."""

    SERVICE = SERVICE_SERVICEINFO
    SUBTYPE = 0x01
    PRIORITY = 8
    BODY = c.Struct("services" / MapTLV(SERVICE_INFO_TLV, SERVICE_INFO_TLV,
                                        UInt32TLV(SERVICE_INFO_TLV), _ServiceInfoTLV))
    services: dict[int, ServiceInfo]


class ServiceInfoPermissionsItem(PQItem):
    """``RsServiceInfoPermissionsItem``: the bandwidth (bytes/s) a peer allows us."""

    SERVICE = SERVICE_SERVICEINFO
    SUBTYPE = 0x02
    PRIORITY = 8
    BODY = c.Struct("allowed_bw" / u32)
    allowed_bw: int
