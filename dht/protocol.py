# -*- test-case-name: tests.test_dht_service -*-
"""Twisted glue: a UDP protocol that feeds a `DHTNode` and maps its deadline to ``callLater``.

The UDP port is shared with the TCP-over-UDP layer (RetroShare uses one UDP port for both), so
datagrams are demultiplexed on their first byte: a bencoded dictionary starts with ``d``; anything
else goes to ``other_handler``.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from .krpc import Address
from .node import Datagram, DHTNode

__all__ = ["DHTProtocol"]


class DHTProtocol(DatagramProtocol):
    """Moves datagrams between a UDP transport and a sans-IO `DHTNode`."""

    log = Logger()

    def __init__(self, node: DHTNode, reactor: IReactorTime, *,
                 other_handler: Callable[[bytes, Address], None] | None = None) -> None:
        self.node = node
        self.reactor = reactor
        #: Receives every datagram that is not a bencoded dictionary (TOU, stunner, relay).
        self.other_handler = other_handler
        #: Datagrams neither the DHT nor ``other_handler`` took.
        self.unclaimed = 0
        self._timer: IDelayedCall | None = None
        self._timer_at: float | None = None

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        peer = (addr[0], addr[1])
        if datagram[:1] == b"d":
            self.send(self.node.datagram_received(datagram, peer, self.reactor.seconds()))
        elif self.other_handler is not None:
            self.other_handler(datagram, peer)
        else:
            self.unclaimed += 1

    def call(self, fn: Callable[[float], list[Datagram]]) -> None:
        """Run a core API call ``fn(now)`` and send what it returns."""
        self.send(fn(self.reactor.seconds()))

    def send(self, datagrams: list[Datagram]) -> None:
        if self.transport is not None:
            for data, dest in datagrams:
                try:
                    self.transport.write(data, dest)
                except OSError as exc:  # e.g. EPERM/ENETUNREACH for one destination
                    self.log.debug("DHT send to {dest} failed: {exc}", dest=dest, exc=exc)
        self._reschedule()

    def _reschedule(self) -> None:
        if self.transport is None:
            return
        deadline = self.node.next_deadline()
        if self._timer is not None and self._timer.active():
            if self._timer_at is not None and self._timer_at <= deadline:
                return
            self._timer.cancel()
        delay = max(0.0, deadline - self.reactor.seconds())
        self._timer_at = deadline
        self._timer = self.reactor.callLater(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.send(self.node.handle_timer(self.reactor.seconds()))

    def stopProtocol(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
