# -*- test-case-name: tests.test_service_heartbeat -*-
"""Heartbeat (0x0016): an empty item every 5 s, and the reset of links gone silent.

RetroShare's ``pqiperson`` resets a link when no heartbeat came for 100 s (20 heartbeat
periods) *and* nothing at all was read for 60 s; we apply the same two thresholds, with the
last-read time taken from the peer's `PQIPerson` (any bytes count, not only items).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from twisted.internet.interfaces import IReactorTime

from pqi.interfaces import DisconnectReason, IItemSender, PeerIdentity
from pqi.items.heartbeat import HeartbeatItem
from pqi.items.ids import SERVICE_HEARTBEAT
from pqi.wire.fields import SslId
from services.base import PeriodicService
from services.spec import ServiceSpec

__all__ = ["HeartbeatService", "SPEC", "HEARTBEAT_PERIOD", "HEARTBEAT_TIMEOUT", "SILENCE_TIMEOUT"]

#: Seconds between heartbeats (``p3heartbeat.cc``).
HEARTBEAT_PERIOD: Final = 5.0
#: Seconds without a heartbeat after which a link is suspect (``pqiperson.cc``: 20 periods).
HEARTBEAT_TIMEOUT: Final = 100.0
#: Seconds without any byte read after which a suspect link is reset (``pqiperson.cc``).
SILENCE_TIMEOUT: Final = 60.0

#: Heartbeat on a node (``heartbeat_period``: seconds between heartbeats).
SPEC: Final = ServiceSpec(
    SERVICE_HEARTBEAT, "heartbeat", attribute="heartbeat", items=(HeartbeatItem,),
    options={"heartbeat_period": HEARTBEAT_PERIOD},
    build=lambda node: HeartbeatService(node.control, node.reactor, node.last_received,
                                        node.reset_link,
                                        period=node.options["heartbeat_period"]))


class HeartbeatService(PeriodicService):
    """Sends heartbeats to every peer that enabled the service and resets silent links.

    ``last_received(ssl_id)`` gives the reactor time of the last read on the peer's link (None
    when unknown); ``reset_link(ssl_id, reason)`` closes it.
    """

    spec = SPEC

    def __init__(self, sender: IItemSender, reactor: IReactorTime,
                 last_received: Callable[[SslId], float | None],
                 reset_link: Callable[[SslId, DisconnectReason], None],
                 period: float = HEARTBEAT_PERIOD) -> None:
        super().__init__(sender, reactor)
        self._last_received = last_received
        self._reset_link = reset_link
        self.period = period
        self.last_heartbeat: dict[SslId, float] = {}
        self.sent = 0
        self.resets = 0

    def peer_connected(self, peer: PeerIdentity) -> None:
        super().peer_connected(peer)
        self.last_heartbeat[peer.ssl_id] = self.reactor.seconds()
        if self.send(peer.ssl_id, HeartbeatItem()):
            self.sent += 1

    def peer_disconnected(self, peer: PeerIdentity, reason: DisconnectReason) -> None:
        super().peer_disconnected(peer, reason)
        self.last_heartbeat.pop(peer.ssl_id, None)

    def receive(self, peer: PeerIdentity, item: object) -> None:
        if isinstance(item, HeartbeatItem):
            self.last_heartbeat[peer.ssl_id] = self.reactor.seconds()

    def tick(self) -> None:
        """One period: a heartbeat to each peer, then the silence check."""
        now = self.reactor.seconds()
        for ssl_id in list(self.peers):
            if self.send(ssl_id, HeartbeatItem()):
                self.sent += 1
        for ssl_id in list(self.peers):
            if self.is_silent(ssl_id, now):
                self.resets += 1
                self.log.warn("no heartbeat from {peer} for {age:.0f} s and no data for "
                              "{silence:.0f} s: resetting the link", peer=ssl_id.to_hex(),
                              age=now - self.last_heartbeat[ssl_id],
                              silence=now - self._last_read(ssl_id, now))
                self.peers.pop(ssl_id, None)
                self.last_heartbeat.pop(ssl_id, None)
                self._reset_link(ssl_id, DisconnectReason.TIMEOUT)

    def is_silent(self, ssl_id: SslId, now: float) -> bool:
        """True when both RetroShare thresholds are passed for ``ssl_id``."""
        last_beat = self.last_heartbeat.get(ssl_id)
        if last_beat is None or now <= last_beat + HEARTBEAT_TIMEOUT:
            return False
        return now - self._last_read(ssl_id, now) > SILENCE_TIMEOUT

    def _last_read(self, ssl_id: SslId, now: float) -> float:
        value = self._last_received(ssl_id)
        return self.last_heartbeat.get(ssl_id, now) if value is None else value
