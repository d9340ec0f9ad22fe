# -*- test-case-name: tests.test_gxstunnel_core -*-
"""The GXS tunnel core as a client of the turtle router (``ITurtleClientService``).

The router asks its pure question (`handle_tunnel_request`) directly; every event it hands
over is fed to the core through ``feed(method, *args)``, which adds ``now`` (a
`pqi.driver.CoreDriver`'s ``feed`` on a node, the simulated network's in tests).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zope.interface import implementer

from pqi.items.ids import SERVICE_GXS_TUNNEL
from pqi.items.turtle import TurtleDirection
from pqi.wire.fields import Sha1Hash, SslId
from services.turtle.interfaces import ITurtleClientService

from .core import GxsTunnelCore

__all__ = ["TurtleEndpoint"]


@implementer(ITurtleClientService)
class TurtleEndpoint:
    """Hands the turtle router's events for GXS tunnels to a `GxsTunnelCore`."""

    service_id = SERVICE_GXS_TUNNEL

    def __init__(self, core: GxsTunnelCore, feed: Callable[..., Any]) -> None:
        self.core = core
        self._feed = feed

    def handle_tunnel_request(self, file_hash: Sha1Hash, peer_id: SslId) -> bool:
        return self.core.serves(file_hash)

    def receive_search_request(self, data: bytes, max_hits: int) -> bytes | None:
        return None  # GXS tunnels answer no searches

    def receive_search_result(self, request_id: int, data: bytes) -> None:
        return None  # and start none

    def receive_turtle_data(self, item: Any, file_hash: Sha1Hash, virtual_peer: SslId,
                            direction: TurtleDirection) -> None:
        self._feed(self.core.turtle_data_received, item, file_hash, virtual_peer)

    def add_virtual_peer(self, file_hash: Sha1Hash, virtual_peer: SslId,
                         direction: TurtleDirection) -> None:
        self._feed(self.core.virtual_peer_added, file_hash, virtual_peer, direction)

    def remove_virtual_peer(self, file_hash: Sha1Hash, virtual_peer: SslId) -> None:
        self._feed(self.core.virtual_peer_removed, file_hash, virtual_peer)
