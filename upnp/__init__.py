"""upnp: port mapping on the home gateway with miniupnpc, run off the reactor thread.

`PortMapper` is the sans-IO state machine (discover, map, renew, unmap, fall back when no
gateway answers); `Gateway` makes its calls with miniupnpc; `UpnpService` runs them in a thread
pool under Twisted and reports `UpnpStatus` changes to its owner.  See docs/upnp.md.
"""

from .gateway import Gateway, UpnpClient, miniupnpc_factory
from .mapper import (
    DEFAULT_DISCOVER_TIMEOUT,
    DEFAULT_LEASE,
    DEFAULT_REDISCOVER_INTERVAL,
    PORT_ATTEMPTS,
    Action,
    AddMapping,
    CallFailed,
    Discover,
    ExternalAddress,
    GatewayFound,
    MapperMisuseError,
    Mapping,
    MappingAdded,
    MappingFailed,
    MappingRemoved,
    NoGateway,
    Outcome,
    PortMapper,
    PortRequest,
    Protocol,
    QueryExternalAddress,
    RemoveMapping,
    UpnpState,
    UpnpStatus,
)
from .service import DEFAULT_STOP_TIMEOUT, UpnpService

__all__ = [
    "UpnpService",
    "UpnpStatus",
    "UpnpState",
    "PortMapper",
    "PortRequest",
    "Protocol",
    "Mapping",
    "MapperMisuseError",
    "Gateway",
    "UpnpClient",
    "miniupnpc_factory",
    "Action",
    "Discover",
    "AddMapping",
    "RemoveMapping",
    "QueryExternalAddress",
    "Outcome",
    "GatewayFound",
    "NoGateway",
    "MappingAdded",
    "MappingFailed",
    "MappingRemoved",
    "ExternalAddress",
    "CallFailed",
    "DEFAULT_LEASE",
    "DEFAULT_DISCOVER_TIMEOUT",
    "DEFAULT_REDISCOVER_INTERVAL",
    "DEFAULT_STOP_TIMEOUT",
    "PORT_ATTEMPTS",
]
