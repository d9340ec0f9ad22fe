# -*- test-case-name: tests.test_service_bwctrl -*-
"""Bandwidth control (0x0021): tell each peer how many bytes/s it may send us.

RetroShare divides its download budget among connected peers and re-announces about every
6 s (``p3bwctrl.cc`` checks "more than 5 s since the last check"); the captures show
7.5 MB/s announced to a single peer.
"""

from __future__ import annotations

from typing import Final

from twisted.internet.interfaces import IReactorTime

from pqi.interfaces import DisconnectReason, IItemSender, PeerIdentity
from pqi.items.bwctrl import BwCtrlAllowedItem
from pqi.items.ids import SERVICE_BANDWIDTH_CONTROL
from pqi.wire.fields import SslId
from services.base import PeriodicService
from services.spec import ServiceSpec

__all__ = ["BandwidthService", "SPEC", "BWCTRL_PERIOD", "DEFAULT_MAX_RATE"]

#: Seconds between announcements.
BWCTRL_PERIOD: Final = 6.0
#: Our download budget in bytes/s, shared among connected peers.
DEFAULT_MAX_RATE: Final = 7_500_000

#: Bandwidth control on a node (``max_rate``: our download budget, bytes/s).
SPEC: Final = ServiceSpec(
    SERVICE_BANDWIDTH_CONTROL, "bandwidth_ctrl", attribute="bandwidth",
    items=(BwCtrlAllowedItem,), options={"max_rate": DEFAULT_MAX_RATE},
    build=lambda node: BandwidthService(node.control, node.reactor,
                                        max_rate=node.options["max_rate"]))


class BandwidthService(PeriodicService):
    """Announces our allowance to each peer and records theirs for us."""

    spec = SPEC

    def __init__(self, sender: IItemSender, reactor: IReactorTime,
                 max_rate: int = DEFAULT_MAX_RATE, period: float = BWCTRL_PERIOD) -> None:
        super().__init__(sender, reactor)
        self.max_rate = max_rate
        self.period = period
        #: What each peer allows us to send it, bytes/s.
        self.allowed_by_peer: dict[SslId, int] = {}

    def allowance(self) -> int:
        """Bytes/s each connected peer may send us now."""
        return min(0xFFFFFFFF, self.max_rate // max(1, len(self.peers)))

    def peer_connected(self, peer: PeerIdentity) -> None:
        super().peer_connected(peer)
        self.send(peer.ssl_id, BwCtrlAllowedItem(allowed_bw=self.allowance()))

    def peer_disconnected(self, peer: PeerIdentity, reason: DisconnectReason) -> None:
        super().peer_disconnected(peer, reason)
        self.allowed_by_peer.pop(peer.ssl_id, None)

    def tick(self) -> None:
        allowed = self.allowance()
        for ssl_id in list(self.peers):
            self.send(ssl_id, BwCtrlAllowedItem(allowed_bw=allowed))

    def receive(self, peer: PeerIdentity, item: object) -> None:
        if isinstance(item, BwCtrlAllowedItem):
            self.allowed_by_peer[peer.ssl_id] = item.allowed_bw
