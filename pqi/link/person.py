# -*- test-case-name: tests.test_person -*-
"""PQIPerson: one friend location, as the layers above see it, whatever link carries it.

RetroShare's ``pqiperson`` owns one connection attempt per transport and forwards items of the
one that is up.  Ours owns nothing but the current link (a `PQIStreamer`, attached by the
`pqi.link.netinterface.NetInterface` when the link manager reports it up): a link can be replaced
(simultaneous connects, reconnects) while services keep talking to the same `PQIPerson`.  Counters
and times live here rather than on the link so that they survive replacements, and
``last_received`` is what the heartbeat service watches to declare a silent link dead.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from pqi.interfaces import DisconnectReason, IPQInterface, PeerIdentity
from pqi.wire.address import NetAddress
from pqi.wire.streamer import Item, PQIStreamer, Sent

__all__ = ["PQIPerson", "PeerNotConnectedError", "ItemHandler"]

#: What the layer above gives to receive items: ``handler(peer, item)``.
ItemHandler = Callable[[PeerIdentity, Item], object]


class PeerNotConnectedError(ConnectionError):
    """An item was sent to a friend that has no link right now; nothing was queued."""

    def __init__(self, peer: PeerIdentity) -> None:
        super().__init__(f"{peer.ssl_id} is not connected")
        self.peer = peer


@implementer(IPQInterface)
class PQIPerson:
    """Items to and from one friend location over its current link.

    ``closer(link_id, reason)`` is how `close` asks the owner (the NetInterface) to drop the
    link, so the link manager learns about it like about any other close.
    """

    log = Logger()

    def __init__(self, peer: PeerIdentity, clock: IReactorTime,
                 closer: Callable[[int, DisconnectReason], object],
                 handler: ItemHandler | None = None) -> None:
        self.peer = peer
        self.clock = clock
        self.handler = handler
        self._closer = closer
        self.link: PQIStreamer | None = None
        self.link_id: int | None = None
        #: The remote address of the current link, and when it came up.
        self.address: NetAddress | None = None
        self.connected_at: float | None = None
        #: When the current link last delivered bytes or an item, for heartbeat timeouts.
        self.last_received: float | None = None
        self.links_up = 0
        self.dropped_not_active = 0
        self._done = {"items_in": 0, "items_out": 0, "bytes_in": 0, "bytes_out": 0}

    # -- IPQInterface ----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.link is not None

    def send_item(self, item: Item) -> Sent:
        """Queue ``item`` on the current link; the `Sent` handle says when it was written.

        Raises `PeerNotConnectedError` when there is none, `pqi.wire.errors.QueueFullError` when
        the peer reads too slowly.
        """
        if self.link is None:
            raise PeerNotConnectedError(self.peer)
        return self.link.send(item)

    def close(self, reason: DisconnectReason = DisconnectReason.LOCAL) -> None:
        """Drop the current link (no-op without one); the NetInterface reports it down."""
        if self.link_id is not None:
            self._closer(self.link_id, reason)

    # -- counters (over every link this person has had) -------------------------------------

    def _total(self, name: str) -> int:
        current = getattr(self.link, name) if self.link is not None else 0
        return self._done[name] + current

    @property
    def items_in(self) -> int:
        return self._total("items_in")

    @property
    def items_out(self) -> int:
        return self._total("items_out")

    @property
    def bytes_in(self) -> int:
        return self._total("bytes_in")

    @property
    def bytes_out(self) -> int:
        return self._total("bytes_out")

    # -- the NetInterface's side -----------------------------------------------------------

    def attach(self, link_id: int, link: PQIStreamer, address: NetAddress | None) -> None:
        """Make ``link`` the current link (the link manager reported it up)."""
        if self.link is not None:
            self.detach(self.link_id)  # type: ignore[arg-type]
        self.link = link
        self.link_id = link_id
        self.address = address
        self.connected_at = self.clock.seconds()
        self.links_up += 1

    def detach(self, link_id: int) -> None:
        """``link_id`` is no longer the current link; keep its counters."""
        if self.link_id != link_id or self.link is None:
            return
        for name in self._done:
            self._done[name] += getattr(self.link, name)
        self.link = None
        self.link_id = None
        self.address = None
        self.connected_at = None

    def deliver(self, link_id: int, item: Item) -> None:
        """An item arrived on ``link_id``: hand it up if that is the current link."""
        if link_id != self.link_id:
            # A link that lost a tie-break may still be draining: its items are not ours.
            self.dropped_not_active += 1
            return
        self.last_received = self.clock.seconds()
        if self.handler is not None:
            try:
                self.handler(self.peer, item)
            except Exception:
                # One service's bug must not take the link (and every other service) down.
                self.log.failure("item handler failed for {peer} ({item})",
                                 peer=str(self.peer.ssl_id), item=type(item).__name__)
