# -*- test-case-name: tests.test_service_control -*-
"""`Service` and `PeriodicService`: the bases of our network services.

A service's identity (id, name, versions) comes from its `services.spec.ServiceSpec`, the one
place it is declared; the base gives it a sender (service control's gate), a clock, and the
set of peers that enabled it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from pqi.interfaces import DisconnectReason, IItemSender, IService, PeerIdentity
from pqi.wire.fields import SslId
from pqi.wire.item import PQItem

from .spec import ServiceSpec

__all__ = ["Service", "PeriodicService"]


@implementer(IService)
class Service:
    """Base of our network services: identity from ``spec``, a sender, a clock.

    Subclasses set ``spec`` and override the hooks they need; ``peers`` holds the peers for
    which the service is enabled now.  ``start``/``stop`` bracket periodic work (the node
    calls them from its own startService/stopService).
    """

    spec: ClassVar[ServiceSpec]
    service_id: int = 0
    log = Logger()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        spec = cls.__dict__.get("spec")
        if spec is not None:
            cls.service_id = spec.service_id

    def __init__(self, sender: IItemSender, reactor: IReactorTime) -> None:
        spec = self.spec
        self.service_id = spec.service_id
        self.name: str = spec.name
        self.version: tuple[int, int] = spec.version
        self.min_version: tuple[int, int] = spec.min_version
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

    def send_tracked(self, peer: SslId, item: PQItem) -> Any:
        """Send ``item`` and return what the link returned: a `pqi.wire.streamer.Sent` handle
        (its ``when_written()`` fires once the item's last byte went to the transport) when
        it was queued, something false when it was not."""
        return self.sender.send(peer, item)


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
