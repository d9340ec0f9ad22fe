# -*- test-case-name: tests.test_nxs_core -*-
"""Item-speaking cores on the simulated network: each friend link carries encoded items.

`ItemNode` adapts a core that takes ``item_received(peer, item, now)`` and outputs values with
``peer`` and ``item`` (``SendItem`` of the NXS, lobby and reputation cores) to `tools.simnet`:
an item to send becomes a datagram of its bytes to the friend's address, and a datagram
received is decoded and handed to the core, so a simulation exercises the real codecs and
counts real bytes.  Other outputs are kept in ``events``.
"""

from __future__ import annotations

from typing import Any

import pqi
from pqi.core import Address, Datagram
from pqi.wire.fields import SslId

__all__ = ["ItemNode"]


class ItemNode:
    """A core plus the address book of its friends (a sans-IO core itself)."""

    def __init__(self, core: Any, addr_of: dict[SslId, Address]) -> None:
        self.core = core
        self.addr_of = addr_of
        self.peer_of = {a: p for p, a in addr_of.items()}
        self.events: list[Any] = []

    def datagram_received(self, data: bytes, src: Address, now: float) -> None:
        self.core.item_received(self.peer_of[src], pqi.decode(data), now)

    def handle_timer(self, now: float) -> None:
        self.core.handle_timer(now)

    def next_deadline(self) -> float | None:
        deadline: float | None = self.core.next_deadline()
        return deadline

    def drain(self, now: float) -> list[Any]:
        out: list[Any] = []
        for o in self.core.drain(now):
            if hasattr(o, "peer") and hasattr(o, "item"):
                out.append(Datagram(pqi.encode(o.item), self.addr_of[o.peer]))
            else:
                self.events.append(o)
        return out
