# -*- test-case-name: tests.test_service_control -*-
"""Service control: the ServiceInfo (0x0020) negotiation and the per-peer item gate.

Every link starts with each side sending the list of services it runs.  A service is enabled
for a peer only when both lists carry it with the same full id and name, and each side's
version is at least the other's minimum (RetroShare's ``p3ServiceControl``).  Items of a
service that is not enabled for a peer are dropped and counted, in both directions: a service
only ever sees, and only ever reaches, peers that agreed to speak it.

Services hear of a peer (``peer_connected``) only once the peer can take their items:
RetroShare enables a service for us only when its tick has processed our list, and silently
drops what arrives before.  So negotiation enables the services at once for what the peer
sends, but their link-up traffic waits for `services.linkup.LINKUP_DELAY` seconds after the
peer's list or for the peer's first service item, whichever comes first (`services.linkup`).
Without a clock (unit tests of services) they start at negotiation.

``drop_until_started=True`` makes service control behave as RetroShare's: items of a peer
are dropped (and counted) until the peer's services started, and they start only after the
delay, never early.  It exists for tests: a node with it is the RetroShare-like peer that
shows our link-up timing works.

`ServiceControl` is a plain object driven by link events and items; it sends through a
callable the node gives it, so tests drive it with recording senders and no sockets.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from pqi.driver import CoreDriver
from pqi.interfaces import DisconnectReason, IItemSender, IService, PeerIdentity
from pqi.items.ids import SERVICE_SERVICEINFO
from pqi.items.serviceinfo import ServiceInfo, ServiceInfoListItem, full_service_id
from pqi.wire.fields import SslId
from pqi.wire.item import PQItem, UnknownItem
from services.linkup import LINKUP_DELAY, LinkUpSchedule, StartServices

__all__ = [
    "ServiceControl",
    "ServiceControlError",
    "compatible",
    "service_info",
    "SERVICEINFO_NAME",
]

#: Name under which service control itself is listed.
SERVICEINFO_NAME = "serviceinfo"


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


@dataclasses.dataclass
class _PeerState:
    identity: PeerIdentity
    remote: dict[int, ServiceInfo] | None = None
    enabled: frozenset[int] = frozenset()
    #: The services in ``enabled`` heard ``peer_connected`` (the peer can take their items).
    started: bool = False


@implementer(IItemSender)
class ServiceControl:
    """Negotiates services per peer and gates items through the enabled set.

    ``link_send(ssl_id, item) -> bool`` is the raw route to a peer's link.  Services are
    given this object as their `IItemSender`, so an item a service tries to send to a peer that
    did not enable it is refused (returns False) and counted, never written.
    """

    log = Logger()

    def __init__(self, link_send: Callable[[SslId, Any], bool],
                 clock: IReactorTime | None = None, *, linkup_delay: float = LINKUP_DELAY,
                 drop_until_started: bool = False) -> None:
        self._link_send = link_send
        self.drop_until_started = drop_until_started
        self._schedule = LinkUpSchedule(linkup_delay if clock is not None else 0.0)
        self._driver = (CoreDriver(self._schedule, clock, self._on_schedule)
                        if clock is not None else None)
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
        """Call ``observer(peer, enabled service ids)`` once the services started with a
        peer, and after each later negotiation."""
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
        self._schedule.forget(peer.ssl_id)
        if not state.started:
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
        if (item.SERVICE not in state.enabled or isinstance(item, UnknownItem)
                or (self.drop_until_started and not state.started)):
            self.dropped_in[(peer.ssl_id, item.SERVICE)] += 1
            self.log.debug("dropped {service} item from {peer}: service not enabled",
                           service=f"0x{item.SERVICE:04x}", peer=peer.ssl_id.to_hex())
            return
        if not state.started:
            # The peer sends service items only once it processed our list: start now.
            self._schedule.forget(peer.ssl_id)
            self._start(state)
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
        if not state.started:
            if not self._schedule.waiting(state.identity.ssl_id):
                self._feed(self._schedule.negotiated, state.identity.ssl_id)
            return
        for service_id in sorted(previous - enabled):
            self._services[service_id].peer_disconnected(state.identity, DisconnectReason.LOCAL)
        for service_id in sorted(enabled - previous):
            self._services[service_id].peer_connected(state.identity)
        self._notify(state)

    def _feed(self, method: Callable[..., None], *args: Any) -> None:
        """Call a schedule input and hand its outputs over (at once without a clock)."""
        if self._driver is not None:
            self._driver.feed(method, *args)
            return
        method(*args, now=0.0)
        for output in self._schedule.drain(0.0):
            self._on_schedule(output)

    def _on_schedule(self, output: StartServices) -> None:
        state = self._peers.get(output.peer)
        if state is not None and not state.started:
            self._start(state)

    def _start(self, state: _PeerState) -> None:
        """The peer can take our items now: every enabled service hears of it."""
        state.started = True
        for service_id in sorted(state.enabled):
            self._services[service_id].peer_connected(state.identity)
        self._notify(state)

    def _notify(self, state: _PeerState) -> None:
        for observer in list(self._observers):
            observer(state.identity, state.enabled)

    # --- IItemSender -------------------------------------------------------------------------

    def send(self, peer: SslId, item: object) -> Any:
        """Queue ``item`` for ``peer`` if its service is enabled with it: the link's `Sent`
        handle (truthy) when queued, False otherwise."""
        state = self._peers.get(peer)
        service = getattr(item, "SERVICE", None)
        if state is None or service not in state.enabled:
            if service is not None:
                self.dropped_out[(peer, service)] += 1
            return False
        return self._link_send(peer, item) or False

    def connected_peers(self) -> list[PeerIdentity]:
        return [s.identity for s in self._peers.values()]

    def stop(self) -> None:
        """Cancel the link-up timer (the node stops)."""
        if self._driver is not None:
            self._driver.stop()

    # --- queries -----------------------------------------------------------------------------

    def enabled(self, peer: SslId) -> frozenset[int]:
        """Service ids running with ``peer``: negotiated, and started (empty before)."""
        state = self._peers.get(peer)
        return state.enabled if state is not None and state.started else frozenset()

    def negotiated(self, peer: SslId) -> frozenset[int]:
        """Service ids both lists agreed on, started or not (the gate lets their items pass)."""
        state = self._peers.get(peer)
        return state.enabled if state is not None else frozenset()

    def remote_list(self, peer: SslId) -> dict[int, ServiceInfo] | None:
        """The peer's announced list, or None before it arrived."""
        state = self._peers.get(peer)
        return None if state is None or state.remote is None else dict(state.remote)

    def is_enabled(self, peer: SslId, service_id: int) -> bool:
        return service_id in self.enabled(peer)

    def started(self, peer: SslId) -> bool:
        """Whether the peer's services heard of it (it can take their items)."""
        state = self._peers.get(peer)
        return state is not None and state.started

    def peers_with(self, service_id: int) -> Iterable[PeerIdentity]:
        return [s.identity for s in self._peers.values()
                if s.started and service_id in s.enabled]
