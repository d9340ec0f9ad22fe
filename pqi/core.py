# -*- test-case-name: tests.test_core_contract -*-
"""The contract every sans-IO core in rsproto keeps, and the outputs they share.

A core is a state machine with no I/O and no clock of its own (h11, aioquic): the skin feeds
it input through core-specific methods that all take ``now`` (``datagram_received(data,
addr, now)``, ``connect(now)``, ``add_friend(ssl_id, now)``...), and then asks it three things,
always the same three:

- ``drain(now)``: every output the core has produced since the last drain, in order, as
  values (`Datagram` to send, core-specific actions, typed event dataclasses).  This is the
  only way out of a core: no callbacks into the skin, so a core can be driven identically by
  the Twisted driver (`pqi.driver.CoreDriver`), by the simulated network (`tools.simnet`) and
  by a test stepping ``now`` by hand;
- ``next_deadline()``: when the core next wants ``handle_timer`` (None: it waits for input);
- ``handle_timer(now)``: time has reached (or passed) that deadline.

`Core` states the contract as a `typing.Protocol` (checked at run time by `is_core`).  This
module imports nothing from Twisted; the layering test keeps it so.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

__all__ = ["Core", "Datagram", "Address", "is_core"]

#: An address as the UDP skin and the simulated network carry it: ``(host, port)``.
Address = tuple[str, int]


@dataclasses.dataclass(frozen=True, slots=True)
class Datagram:
    """A datagram a core wants sent: ``data`` to ``addr`` (None: the core's only peer)."""

    data: bytes
    addr: Address | None = None


@runtime_checkable
class Core(Protocol):
    """What every sans-IO core offers its driver (see the module docstring)."""

    def handle_timer(self, now: float) -> None:
        """Time reached `next_deadline`: run whatever was due (retransmits, timeouts...)."""

    def next_deadline(self) -> float | None:
        """The time at which `handle_timer` should be called next, or None for never."""

    def drain(self, now: float) -> list[Any]:
        """Every output produced since the last call, oldest first (empties the queue)."""


def is_core(obj: object) -> bool:
    """True when ``obj`` offers the three methods of the contract."""
    return isinstance(obj, Core)
