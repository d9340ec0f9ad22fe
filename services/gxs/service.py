# -*- test-case-name: tests.test_gxs_nodes -*-
"""The Twisted skin of one GXS service: an `NxsCore` on a `CoreDriver`, speaking to friends.

It is the base every GXS service builds on (identities here; channels, forums, boards later):
it registers under the service id, feeds the core the friends that connect and the items they
send, sends what the core says to send, logs what the core refused, asks the identity
service for authors the core does not know (``request_identity``), and hands every other
output (`GroupStored`, `MessageStored`...) to ``on_event``.  With `attach_tunnels` the
service also syncs with distant peers through turtle tunnels
(`services.turtle.gxs_net_tunnel`): their items go into the tunnels, and the core offers each
of them only the group of its tunnel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from twisted.internet.interfaces import IReactorTime

from pqi.driver import CoreDriver
from pqi.interfaces import DisconnectReason, IItemSender, PeerIdentity
from pqi.items.nxs import NxsItem
from pqi.wire.fields import GxsId, SslId
from services.base import Service
from services.gxs.nxs_core import AuthorWanted, NxsCore, Rejected, SendItem
from services.spec import ServiceSpec

__all__ = ["GxsNetService", "MAX_AUTHOR_ASKS"]

#: Friends asked for the unknown author of an item a distant (tunnel) peer sent: identities
#: do not travel through our tunnels, friends usually hold them.
MAX_AUTHOR_ASKS: Final = 8


class GxsNetService(Service):
    """NXS sync of ``core``'s service with our friends."""

    def __init__(self, sender: IItemSender, reactor: IReactorTime, core: NxsCore,
                 spec: ServiceSpec, on_event: Callable[[Any], object] = lambda e: None,
                 request_identity: Callable[[GxsId, SslId], object] | None = None) -> None:
        self.spec = spec  # type: ignore[misc]  (one class, one spec per GXS service id)
        super().__init__(sender, reactor)
        self.core = core
        self.on_event = on_event
        self.request_identity = request_identity
        self.driver = CoreDriver(core, reactor, self._output)
        self.tunnels: Any = None

    def attach_tunnels(self, tunnels: Any) -> None:
        """Sync through ``tunnels`` (a `GxsNetTunnels`) too: its virtual peers join as friends
        limited to their group."""
        self.tunnels = tunnels
        self.core.distant_group = tunnels.group_of
        tunnels.register(self)

    def send(self, peer: SslId, item: Any) -> bool:
        if self.tunnels is not None and self.tunnels.is_distant(peer):
            return bool(self.tunnels.send(peer, item))
        return super().send(peer, item)

    def stop(self) -> None:
        self.driver.stop()

    def peer_connected(self, peer: PeerIdentity) -> None:
        super().peer_connected(peer)
        self.driver.feed(self.core.peer_connected, peer.ssl_id)

    def peer_disconnected(self, peer: PeerIdentity, reason: DisconnectReason) -> None:
        super().peer_disconnected(peer, reason)
        self.driver.feed(self.core.peer_disconnected, peer.ssl_id)

    def receive(self, peer: PeerIdentity, item: object) -> None:
        if isinstance(item, NxsItem):
            self.driver.feed(self.core.item_received, peer.ssl_id, item)

    def _output(self, output: Any) -> None:
        if isinstance(output, SendItem):
            self.send(output.peer, output.item)
            return
        if isinstance(output, AuthorWanted) and self.request_identity is not None:
            asked = [output.peer]
            if self.tunnels is not None and self.tunnels.is_distant(output.peer):
                asked = [p for p in self.peers if not self.tunnels.is_distant(p)]
            for peer in asked[:MAX_AUTHOR_ASKS]:
                self.request_identity(output.author, peer)
        if isinstance(output, Rejected):
            self.log.warn("gxs 0x{service:04x}: refused from {peer}: {reason}",
                          service=output.service, peer=output.peer.to_hex(),
                          reason=output.reason)
        self.on_event(output)
