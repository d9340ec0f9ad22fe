# -*- test-case-name: tests.test_service_status -*-
"""Status (0x0102): online, away, busy, inactive, offline; sent on connect and on change."""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IReactorTime

from pqi.interfaces import DisconnectReason, IItemSender, PeerIdentity
from pqi.items.ids import SERVICE_STATUS
from pqi.items.status import PeerStatus, StatusItem
from pqi.wire.fields import SslId
from services.service_control import Service

__all__ = ["StatusService", "PeerStatus", "StatusValueError"]


class StatusValueError(ValueError):
    """Only online, away, busy and inactive can be announced: offline is what friends see when
    the node is not connected, so it is never sent."""


class StatusService(Service):
    """Announces our status and remembers each friend's.

    ``on_change(peer, status)`` is called whenever a friend's status changes, including the
    switch to OFFLINE when its link goes down.  Unknown status values from a peer are kept raw
    (``int``) so a newer peer's value is shown, not rejected.
    """

    service_id = SERVICE_STATUS

    def __init__(self, sender: IItemSender, reactor: IReactorTime,
                 on_change: Callable[[PeerIdentity, int], None] | None = None) -> None:
        super().__init__(sender, reactor)
        self.own_status: PeerStatus = PeerStatus.ONLINE
        self._status: dict[SslId, int] = {}
        self._on_change = on_change

    def status_of(self, ssl_id: SslId) -> int:
        """A friend's last announced status (OFFLINE when not connected)."""
        return self._status.get(ssl_id, PeerStatus.OFFLINE)

    def set_status(self, status: int) -> None:
        """Change our status and tell every connected friend."""
        try:
            value = PeerStatus(status)
        except ValueError:
            raise StatusValueError(f"unknown status {status}") from None
        if value == PeerStatus.OFFLINE:
            raise StatusValueError("offline cannot be announced")
        self.own_status = value
        for ssl_id in list(self.peers):
            self._announce(ssl_id)

    def peer_connected(self, peer: PeerIdentity) -> None:
        super().peer_connected(peer)
        self._announce(peer.ssl_id)

    def peer_disconnected(self, peer: PeerIdentity, reason: DisconnectReason) -> None:
        super().peer_disconnected(peer, reason)
        self._update(peer, PeerStatus.OFFLINE)

    def receive(self, peer: PeerIdentity, item: object) -> None:
        if isinstance(item, StatusItem):
            status = item.status
            self._update(peer, PeerStatus(status) if status in PeerStatus._value2member_map_
                         else status)

    def _announce(self, ssl_id: SslId) -> None:
        now = int(self.reactor.seconds()) & 0xFFFFFFFF
        self.send(ssl_id, StatusItem(send_time=now, status=int(self.own_status)))

    def _update(self, peer: PeerIdentity, status: int) -> None:
        if self._status.get(peer.ssl_id, PeerStatus.OFFLINE) == status:
            return
        if status == PeerStatus.OFFLINE:
            self._status.pop(peer.ssl_id, None)
        else:
            self._status[peer.ssl_id] = status
        if self._on_change is not None:
            self._on_change(peer, status)
