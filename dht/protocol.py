# -*- test-case-name: tests.test_dht_service -*-
"""Twisted glue: a UDP protocol that feeds a `DHTNode` through a `pqi.driver.CoreDriver`.

The UDP port is shared with the TCP-over-UDP layer (RetroShare uses one UDP port for both), so
datagrams are demultiplexed on their first byte: a bencoded dictionary starts with ``d``; anything
else goes to ``other_handler``.  The node's datagrams go to the transport, its events to
``on_event`` (the `dht.service.DHTService` turns them into Deferreds).

A port that reads bursts (`tcponudp.udpport.BatchUdpPort`) hands them to ``datagramsReceived``:
each run of non-DHT datagrams in a burst goes to ``other_batch_handler`` in one call when one is
given, so TOU segments keep their batching.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from pqi.core import Datagram
from pqi.driver import CoreDriver

from .krpc import Address
from .node import DHTEvent, DHTNode

__all__ = ["DHTProtocol"]


class DHTProtocol(DatagramProtocol):
    """Moves datagrams between a UDP transport and a sans-IO `DHTNode`."""

    log = Logger()

    def __init__(self, node: DHTNode, reactor: IReactorTime, *,
                 other_handler: Callable[[bytes, Address], None] | None = None,
                 other_batch_handler: Callable[[list[bytes], Address], None] | None = None,
                 on_event: Callable[[DHTEvent], object] | None = None,
                 address_filter: Callable[[str], bool] | None = None) -> None:
        self.node = node
        #: The ban list's question for a datagram's host (None: every host is accepted):
        #: datagrams from or to a refused host are dropped, whatever they carry.
        self.address_filter = address_filter
        #: Datagrams dropped in and out because their host is banned.
        self.banned_dropped = 0
        self.reactor = reactor
        #: Receives every datagram that is not a bencoded dictionary (TOU, stunner, relay).
        self.other_handler = other_handler
        #: Receives each run of such datagrams in a burst read at once (None: one by one to
        #: ``other_handler``).
        self.other_batch_handler = other_batch_handler
        #: Receives the node's events (lookups done, answers, connect requests).
        self.on_event = on_event
        #: Datagrams neither the DHT nor ``other_handler`` took.
        self.unclaimed = 0
        self.driver = CoreDriver(node, reactor, self._output)

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        peer = (addr[0], addr[1])
        if self.address_filter is not None and not self.address_filter(peer[0]):
            self.banned_dropped += 1
            return
        if datagram[:1] == b"d":
            self.driver.feed(self.node.datagram_received, datagram, peer)
        elif self.other_handler is not None:
            self.other_handler(datagram, peer)
        else:
            self.unclaimed += 1

    def datagramsReceived(self, datagrams: list[bytes], addr: tuple[str, int]) -> None:
        """A burst from one address, in the order sent: DHT datagrams one by one, each run of
        others in one call to ``other_batch_handler`` (or one by one without it)."""
        batch = self.other_batch_handler
        if batch is None or self.other_handler is None:
            for datagram in datagrams:
                self.datagramReceived(datagram, addr)
            return
        peer = (addr[0], addr[1])
        if self.address_filter is not None and not self.address_filter(peer[0]):
            self.banned_dropped += len(datagrams)
            return
        run: list[bytes] = []
        for datagram in datagrams:
            if datagram[:1] != b"d":
                run.append(datagram)
                continue
            if run:
                batch(run, peer)
                run = []
            self.driver.feed(self.node.datagram_received, datagram, peer)
        if run:
            batch(run, peer)

    def _output(self, output: Datagram | DHTEvent) -> None:
        if isinstance(output, Datagram):
            if self.transport is None:
                return
            if self.address_filter is not None and not self.address_filter(output.addr[0]):
                self.banned_dropped += 1
                return
            try:
                self.transport.write(output.data, output.addr)
            except OSError as exc:  # e.g. EPERM/ENETUNREACH for one destination
                self.log.debug("DHT send to {dest} failed: {exc}", dest=output.addr, exc=exc)
        elif self.on_event is not None:
            self.on_event(output)

    def stopProtocol(self) -> None:
        self.driver.stop()
