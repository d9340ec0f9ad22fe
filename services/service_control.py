# -*- test-case-name: tests.test_service_control -*-
"""Service control: the ServiceInfo (0x0020) negotiation and the per-peer item gate.

Every link starts with each side sending the list of services it runs.  A service is enabled
for a peer only when both lists carry it with the same full id and name, and each side's
version is at least the other's minimum (RetroShare's ``p3ServiceControl``).  Items of a
service that is not enabled for a peer are dropped and counted, in both directions: a service
only ever sees, and only ever reaches, peers that agreed to speak it.

`ServiceControl` is a plain object driven by link events and items; it sends through a
callable the node gives it, so tests drive it with recording senders and no sockets.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from pqi.interfaces import DisconnectReason, IItemSender, IService, PeerIdentity
from pqi.items.ids import SERVICE_SERVICEINFO
from pqi.items.serviceinfo import ServiceInfo, ServiceInfoListItem, full_service_id
from pqi.wire.fields import SslId
from pqi.wire.item import PQItem, UnknownItem

__all__ = [
    "Service",
    "PeriodicService",
    "ServiceControl",
    "ServiceControlError",
    "compatible",
    "service_info",
    "SERVICEINFO_NAME",
    "RETROSHARE_SERVICES",
]

#: Name under which service control itself is listed.
SERVICEINFO_NAME = "serviceinfo"

#: (service id, name, version, min version) of every service RetroShare 0.6.7 announces, as in
#: the captured 982-byte list.  Our services announce exactly these entries.
RETROSHARE_SERVICES: dict[int, tuple[str, tuple[int, int], tuple[int, int]]] = {
    0x0011: ("disc", (1, 0), (1, 0)),
    0x0012: ("chat", (1, 0), (1, 0)),
    0x0013: ("msg", (1, 0), (1, 0)),
    0x0014: ("turtle", (1, 0), (1, 0)),
    0x0016: ("heartbeat", (1, 0), (1, 0)),
    0x0017: ("ft", (1, 0), (1, 0)),
    0x0018: ("Global Router", (1, 0), (1, 0)),
    0x0019: ("file_database", (1, 0), (1, 0)),
    0x0020: ("serviceinfo", (1, 0), (1, 0)),
    0x0021: ("bandwidth_ctrl", (1, 0), (1, 0)),
    0x0028: ("GxsTunnels", (1, 0), (1, 0)),
    0x0101: ("banlist", (1, 0), (1, 0)),
    0x0102: ("status", (1, 0), (1, 0)),
    0x0211: ("gxsid", (1, 0), (1, 0)),
    0x0215: ("gxsforums", (1, 0), (1, 0)),
    0x0216: ("gxsposted", (1, 0), (1, 0)),
    0x0217: ("gxschannels", (1, 0), (1, 0)),
    0x0218: ("gxscircle", (1, 0), (1, 0)),
    0x0219: ("gxsreputation", (1, 0), (1, 0)),
    0x0230: ("GXS Mails", (0, 1), (0, 1)),
    0x1011: ("rtt", (1, 0), (1, 0)),
}


class ServiceControlError(Exception):
    """The node was given two services with the same service id: only one can be announced."""


def service_info(service: IService) -> ServiceInfo:
    """The list entry that announces ``service``."""
    return ServiceInfo(service.name, full_service_id(service.service_id),
                       service.version[0], service.version[1],
                       service.min_version[0], service.min_version[1])


def compatible(ours: ServiceInfo, theirs: ServiceInfo) -> bool:
    """RetroShare's rule: same full id and name, each version at least the other's minimum."""
    return (ours.service_type == theirs.service_type and ours.name == theirs.name
            and (theirs.version_major, theirs.version_minor)
            >= (ours.min_version_major, ours.min_version_minor)
            and (ours.version_major, ours.version_minor)
            >= (theirs.min_version_major, theirs.min_version_minor))


@implementer(IService)
class Service:
    """Base of our network services: identity from `RETROSHARE_SERVICES`, a sender, a clock.

    Subclasses set ``service_id`` and override the hooks they need; ``peers`` holds the peers
    for which the service is enabled now.  ``start``/``stop`` bracket periodic work (the node
    calls them from its own startService/stopService).
    """

    service_id: int = 0
    log = Logger()

    def __init__(self, sender: IItemSender, reactor: IReactorTime) -> None:
        name, version, min_version = RETROSHARE_SERVICES[self.service_id]
        self.name: str = name
        self.version: tuple[int, int] = version
        self.min_version: tuple[int, int] = min_version
        self.sender = sender
        self.reactor = reactor
        self.peers: dict[SslId, PeerIdentity] = {}

    def start(self) -> None:
        """Begin periodic work (no-op unless the service has timers)."""

    def stop(self) -> None:
        """End periodic work."""

    def peer_connected(self, peer: PeerIdentity) -> None:
        self.peers[peer.ssl_id] = peer

    def peer_disconnected(self, peer: PeerIdentity, reason: DisconnectReason) -> None:
        self.peers.pop(peer.ssl_id, None)

    def receive(self, peer: PeerIdentity, item: object) -> None:
        """Items this service does not handle are ignored (subclasses dispatch by type)."""

    def send(self, peer: SslId, item: PQItem) -> bool:
        return bool(self.sender.send(peer, item))


class PeriodicService(Service):
    """A service that does its work every ``period`` seconds between ``start`` and ``stop``.

    The first ``tick`` comes one period after ``start`` (RetroShare's services wait a turn
    too), on the service's injected clock so tests step it.
    """

    period: float = 0.0

    def __init__(self, sender: IItemSender, reactor: IReactorTime) -> None:
        super().__init__(sender, reactor)
        self._loop: LoopingCall | None = None

    def tick(self) -> None:
        """The periodic work."""

    def start(self) -> None:
        self._loop = LoopingCall(self.tick)
        self._loop.clock = self.reactor
        self._loop.start(self.period, now=False)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None


@dataclasses.dataclass
class _PeerState:
    identity: PeerIdentity
    remote: dict[int, ServiceInfo] | None = None
    enabled: frozenset[int] = frozenset()


@implementer(IItemSender)
class ServiceControl:
    """Negotiates services per peer and gates items through the enabled set.

    ``link_send(ssl_id, item) -> bool`` is the raw route to a peer's link.  Services are
    given this object as their `IItemSender`, so an item a service tries to send to a peer that
    did not enable it is refused (returns False) and counted, never written.
    """

    log = Logger()

    def __init__(self, link_send: Callable[[SslId, Any], bool]) -> None:
        self._link_send = link_send
        self._services: dict[int, IService] = {}
        self._peers: dict[SslId, _PeerState] = {}
        #: (peer ssl id, service id) -> items received and dropped (service not enabled).
        self.dropped_in: collections.Counter[tuple[SslId, int]] = collections.Counter()
        #: (peer ssl id, service id) -> items a service tried to send and we refused.
        self.dropped_out: collections.Counter[tuple[SslId, int]] = collections.Counter()
        self._observers: list[Callable[[PeerIdentity, frozenset[int]], None]] = []

    # --- configuration ---------------------------------------------------------------------

    def add_service(self, service: IService) -> None:
        """Register a service; it is announced on every link made afterwards."""
        if service.service_id == SERVICE_SERVICEINFO or service.service_id in self._services:
            raise ServiceControlError(f"service 0x{service.service_id:04x} registered twice")
        self._services[service.service_id] = service

    def remove_service(self, service_id: int) -> IService:
        """Stop announcing a service (links made afterwards do not enable it)."""
        return self._services.pop(service_id)

    def services(self) -> list[IService]:
        return list(self._services.values())

    def add_negotiation_observer(
            self, observer: Callable[[PeerIdentity, frozenset[int]], None]) -> None:
        """Call ``observer(peer, enabled service ids)`` after each negotiation."""
        self._observers.append(observer)

    def our_list(self) -> dict[int, ServiceInfo]:
        """Our ServiceInfo entries, keyed by full service id (serviceinfo itself included)."""
        entries = [ServiceInfo(SERVICEINFO_NAME, full_service_id(SERVICE_SERVICEINFO))]
        entries += [service_info(s) for s in self._services.values()]
        return {e.service_type: e for e in sorted(entries, key=lambda e: e.service_type)}

    def list_item(self) -> ServiceInfoListItem:
        return ServiceInfoListItem(services=self.our_list())

    # --- link events -------------------------------------------------------------------------

    def link_up(self, peer: PeerIdentity) -> None:
        """A link to ``peer`` is authenticated: announce our services (nothing enabled yet)."""
        self._peers[peer.ssl_id] = _PeerState(peer)
        self._link_send(peer.ssl_id, self.list_item())

    def link_down(self, peer: PeerIdentity, reason: DisconnectReason) -> None:
        """The link is gone: every service enabled for the peer hears of it once."""
        state = self._peers.pop(peer.ssl_id, None)
        if state is None:
            return
        for service_id in sorted(state.enabled):
            self._services[service_id].peer_disconnected(state.identity, reason)

    # --- items -------------------------------------------------------------------------------

    def deliver(self, peer: PeerIdentity, item: PQItem | UnknownItem) -> None:
        """An item arrived from ``peer``: negotiate, dispatch or drop-and-count."""
        state = self._peers.get(peer.ssl_id)
        if state is None:
            self.dropped_in[(peer.ssl_id, item.SERVICE)] += 1
            return
        if isinstance(item, ServiceInfoListItem):
            self._negotiate(state, item.services)
            return
        if item.SERVICE == SERVICE_SERVICEINFO:
            return  # permissions item: RetroShare never acts on it either
        if item.SERVICE not in state.enabled or isinstance(item, UnknownItem):
            self.dropped_in[(peer.ssl_id, item.SERVICE)] += 1
            self.log.debug("dropped {service} item from {peer}: service not enabled",
                           service=f"0x{item.SERVICE:04x}", peer=peer.ssl_id.to_hex())
            return
        self._services[item.SERVICE].receive(state.identity, item)

    def _negotiate(self, state: _PeerState, remote: dict[int, ServiceInfo]) -> None:
        ours = self.our_list()
        enabled = frozenset(
            service_id for service_id in self._services
            if (theirs := remote.get(full_service_id(service_id))) is not None
            and compatible(ours[full_service_id(service_id)], theirs))
        previous = state.enabled
        state.remote = dict(remote)
        state.enabled = enabled
        self.log.info("services with {peer}: {names}", peer=state.identity.ssl_id.to_hex(),
                      names=" ".join(sorted(self._services[s].name for s in enabled)))
        for service_id in sorted(previous - enabled):
            self._services[service_id].peer_disconnected(state.identity, DisconnectReason.LOCAL)
        for service_id in sorted(enabled - previous):
            self._services[service_id].peer_connected(state.identity)
        for observer in list(self._observers):
            observer(state.identity, enabled)

    # --- IItemSender -------------------------------------------------------------------------

    def send(self, peer: SslId, item: object) -> bool:
        state = self._peers.get(peer)
        service = getattr(item, "SERVICE", None)
        if state is None or service not in state.enabled:
            if service is not None:
                self.dropped_out[(peer, service)] += 1
            return False
        return bool(self._link_send(peer, item))

    def connected_peers(self) -> list[PeerIdentity]:
        return [s.identity for s in self._peers.values()]

    # --- queries -----------------------------------------------------------------------------

    def enabled(self, peer: SslId) -> frozenset[int]:
        """Service ids enabled for ``peer`` (empty before its list arrived)."""
        state = self._peers.get(peer)
        return state.enabled if state is not None else frozenset()

    def remote_list(self, peer: SslId) -> dict[int, ServiceInfo] | None:
        """The peer's announced list, or None before it arrived."""
        state = self._peers.get(peer)
        return None if state is None or state.remote is None else dict(state.remote)

    def is_enabled(self, peer: SslId, service_id: int) -> bool:
        return service_id in self.enabled(peer)

    def peers_with(self, service_id: int) -> Iterable[PeerIdentity]:
        return [s.identity for s in self._peers.values() if service_id in s.enabled]
