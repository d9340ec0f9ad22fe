# -*- test-case-name: tests.test_linkup -*-
"""When a peer can take our link-up traffic: RetroShare's service-enabling delay, sans-IO.

RetroShare enables a service for a peer only when its own tick has processed *our*
ServiceInfo list, and until then it drops, without a word, every item of that service we
send.  The captures show the delay (docs/links.md, "Link-up timing"): a real node sends its
first service items 174 to 371 ms after the later of the two ServiceInfo lists, about 200 ms
in most connections.  So a service's link-up traffic (discovery's CONTACT, the file-list root
request...) must wait for whichever comes first:

* ``LINKUP_DELAY`` seconds after the peer's list arrived (well past the captured delays), or
* the first item the peer sends of any service but ServiceInfo: RetroShare filters its
  outgoing items through the same per-peer set and enables every service in one tick, so
  such an item proves our list was processed (service control then starts the services at
  once and `forget`s the wait).

`LinkUpSchedule` is the core that keeps the waits: ``negotiated(peer, now)`` starts one,
``forget(peer)`` drops it (link down, or the peer spoke first), and `drain` hands out one
`StartServices(peer)` per peer whose services may start now.  It keeps
the `pqi.core` contract; service control drives it with `pqi.driver.CoreDriver`.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from pqi.wire.fields import SslId

__all__ = ["LinkUpSchedule", "StartServices", "WaitingPeersFullError", "LINKUP_DELAY",
           "MAX_WAITING_PEERS"]

#: Seconds we give a peer to process our ServiceInfo list before our services start talking
#: to it (the captures' slowest node took 0.371 s; see docs/links.md).
LINKUP_DELAY: Final = 1.0
#: Most peers waiting at once (one per link; a node never holds more links than this).
MAX_WAITING_PEERS: Final = 4096


class WaitingPeersFullError(Exception):
    """More peers are waiting for their services to start than `MAX_WAITING_PEERS`."""


@dataclasses.dataclass(frozen=True)
class StartServices:
    """The peer processed our list (or had the time to): its services may start now."""

    peer: SslId


class LinkUpSchedule:
    """The per-peer wait between the ServiceInfo exchange and the services' first items."""

    def __init__(self, delay: float = LINKUP_DELAY,
                 max_peers: int = MAX_WAITING_PEERS) -> None:
        self.delay = delay
        self.max_peers = max_peers
        self._due: dict[SslId, float] = {}
        self._out: list[StartServices] = []

    def negotiated(self, peer: SslId, now: float) -> None:
        """The peer's list arrived (again): its services start ``delay`` seconds from now."""
        if peer not in self._due and len(self._due) >= self.max_peers:
            raise WaitingPeersFullError(f"{len(self._due)} peers already wait")
        if self.delay <= 0:
            self._due.pop(peer, None)
            self._out.append(StartServices(peer))
            return
        self._due[peer] = now + self.delay

    def forget(self, peer: SslId) -> None:
        """Nothing is to start for the peer (its link went down, or it spoke first)."""
        self._due.pop(peer, None)
        self._out = [s for s in self._out if s.peer != peer]

    def waiting(self, peer: SslId) -> bool:
        """Whether the peer's services still wait to start."""
        return peer in self._due

    def __len__(self) -> int:
        return len(self._due)

    # --- the core contract --------------------------------------------------------------------

    def handle_timer(self, now: float) -> None:
        for peer in [p for p, due in self._due.items() if due <= now]:
            del self._due[peer]
            self._out.append(StartServices(peer))

    def next_deadline(self) -> float | None:
        return min(self._due.values(), default=None)

    def drain(self, now: float) -> list[StartServices]:
        out, self._out = self._out, []
        return out
