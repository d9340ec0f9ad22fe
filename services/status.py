# -*- test-case-name: tests.test_service_status -*-
"""Status (0x0102): online, away, busy, inactive, offline; sent on connect and on change."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Final

from twisted.internet.interfaces import IReactorTime

from pqi.interfaces import DisconnectReason, IItemSender, PeerIdentity
from pqi.items.ids import SERVICE_STATUS
from pqi.items.status import PeerStatus, StatusItem
from pqi.wire.fields import SslId
from services.base import Service
from services.spec import Commands, ServiceSpec

__all__ = ["StatusService", "PeerStatus", "StatusValueError", "StatusChanged", "SPEC"]


class StatusValueError(ValueError):
    """Only online, away, busy and inactive can be announced: offline is what friends see when
    the node is not connected, so it is never sent."""


@dataclasses.dataclass(frozen=True)
class StatusChanged:
    """A friend's status changed (OFFLINE when its link went down)."""

    #: The friend location.
    peer: PeerIdentity
    #: Its new status: a `PeerStatus`, or the raw int a newer peer sent.
    status: int


#: Control commands of the status service.
COMMANDS = Commands()

#: Status on a node.
SPEC: Final = ServiceSpec(
    SERVICE_STATUS, "status", attribute="status", items=(StatusItem,),
    events=(StatusChanged,), commands=COMMANDS,
    build=lambda node: StatusService(node.control, node.reactor, node.emit))


@COMMANDS.command("set_status")
def _set_status(node: Any, args: dict[str, Any]) -> None:
    node.set_status(int(args["status"]))


class StatusService(Service):
    """Announces our status and remembers each friend's.

    ``emit(StatusChanged)`` reports whenever a friend's status changes, including the
    switch to OFFLINE when its link goes down.  Unknown status values from a peer are kept raw
    (``int``) so a newer peer's value is shown, not rejected.
    """

    spec = SPEC

    def __init__(self, sender: IItemSender, reactor: IReactorTime,
                 emit: Callable[[StatusChanged], None] | None = None) -> None:
        super().__init__(sender, reactor)
        self.own_status: PeerStatus = PeerStatus.ONLINE
        self._status: dict[SslId, int] = {}
        self._emit = emit

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
        if self._emit is not None:
            self._emit(StatusChanged(peer, status))
