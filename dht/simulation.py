# -*- test-case-name: tests.test_dht_node -*-
"""A deterministic in-process network of sans-IO `DHTNode` cores, for tests and benchmarks.

One event queue holds datagram deliveries (a fixed one-way latency, so each link is FIFO) and
node timers; time only moves when the queue says so.  Every node gets its own fake IPv4 address
in 10.0.0.0/8, so per-IP rate limits behave as on a real network.
"""

from __future__ import annotations

import heapq
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from .krpc import Address
from .node import Datagram, DHTConfig, DHTNode, Lookup
from .routing import id_to_int

__all__ = ["FakeNetwork", "LookupStats", "measure_lookups"]


class FakeNetwork:
    """Nodes, a clock and a queue of events; `run_until` advances them."""

    def __init__(self, seed: int, *, latency: float = 0.05, config: DHTConfig | None = None,
                 ) -> None:
        self.rng = random.Random(seed)
        self.latency = latency
        self.config = config
        self.now = 0.0
        self.nodes: dict[Address, DHTNode] = {}
        self._queue: list[tuple[float, int, Address, bytes | None, Address | None]] = []
        self._seq = 0
        self._timers: dict[Address, float] = {}
        self.delivered = 0

    def add_node(self) -> DHTNode:
        n = len(self.nodes) + 1
        addr = (f"10.{(n >> 16) & 0xFF}.{(n >> 8) & 0xFF}.{n & 0xFF}", 6881)
        node = DHTNode(self.rng.randbytes(20), self.config,
                       rng=random.Random(self.rng.randrange(1 << 32)), now=self.now)
        self.nodes[addr] = node
        self._schedule(addr)
        return node

    def addr_of(self, node: DHTNode) -> Address:
        for a, n in self.nodes.items():
            if n is node:
                return a
        raise KeyError("node not in this network")

    def _push(self, when: float, dest: Address, data: bytes | None, src: Address | None) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (when, self._seq, dest, data, src))

    def _schedule(self, addr: Address) -> None:
        deadline = max(self.nodes[addr].next_deadline(), self.now)
        if self._timers.get(addr, float("inf")) > deadline:
            self._timers[addr] = deadline
            self._push(deadline, addr, None, None)

    def send(self, src: Address, datagrams: list[Datagram]) -> None:
        """Put what ``src`` wants to send on the wire and re-arm its timer."""
        for data, dest in datagrams:
            if dest in self.nodes:
                self._push(self.now + self.latency, dest, data, src)
        self._schedule(src)

    def run_until(self, end: float, *, max_events: int = 10_000_000) -> None:
        """Process events up to time ``end`` (bounded by ``max_events``)."""
        for _ in range(max_events):
            if not self._queue or self._queue[0][0] > end:
                break
            when, _seq, dest, data, src = heapq.heappop(self._queue)
            self.now = when
            node = self.nodes[dest]
            if data is None:
                if self._timers.get(dest) != when:
                    continue
                del self._timers[dest]
                self.send(dest, node.handle_timer(when))
            else:
                assert src is not None
                self.delivered += 1
                self.send(dest, node.datagram_received(data, src, when))
        self.now = max(self.now, end)

    def run_while(self, cond: Callable[[], bool], *, limit: float) -> None:
        """Advance in small steps while ``cond()`` holds, at most ``limit`` seconds."""
        end = self.now + limit
        while cond() and self.now < end:
            self.run_until(self.now + 0.5)

    def true_closest(self, target: bytes, k: int, *, exclude: bytes = b"") -> list[bytes]:
        t = id_to_int(target)
        ids = (n.node_id for n in self.nodes.values() if n.node_id != exclude)
        return sorted(ids, key=lambda i: id_to_int(i) ^ t)[:k]

    def build(self, count: int, *, join_interval: float = 0.05, settle: float = 120.0) -> None:
        """Add ``count`` nodes joining one after another through the first one."""
        first = self.add_node()
        first_addr = self.addr_of(first)
        for _ in range(count - 1):
            node = self.add_node()
            addr = self.addr_of(node)
            self.send(addr, node.bootstrap([first_addr], self.now))
            self.run_until(self.now + join_interval)
        self.run_until(self.now + settle)


@dataclass
class LookupStats:
    """Figures over a batch of lookups (each field: one value per lookup)."""

    queries: list[int] = field(default_factory=list)
    round_trips: list[int] = field(default_factory=list)
    #: How many of the true k closest each lookup returned.
    overlap: list[int] = field(default_factory=list)
    #: Whether the nearest result is the true nearest node.
    nearest_found: list[bool] = field(default_factory=list)
    table_sizes: list[int] = field(default_factory=list)

    @staticmethod
    def _pct(values: list[int], q: float) -> float:
        ordered = sorted(values)
        return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])

    def summary(self) -> dict[str, float]:
        return {
            "lookups": len(self.queries),
            "queries_median": statistics.median(self.queries),
            "queries_p95": self._pct(self.queries, 0.95),
            "round_trips_median": statistics.median(self.round_trips),
            "round_trips_p95": self._pct(self.round_trips, 0.95),
            "closest8_overlap_mean": statistics.fmean(self.overlap),
            "nearest_found_rate": statistics.fmean(self.nearest_found),
            "table_size_median": statistics.median(self.table_sizes),
            "table_size_p5": self._pct(self.table_sizes, 0.05),
            "table_size_p95": self._pct(self.table_sizes, 0.95),
        }


def measure_lookups(net: FakeNetwork, count: int, *, k: int = 8) -> LookupStats:
    """Run ``count`` lookups of random ids from random nodes, one at a time."""
    stats = LookupStats(table_sizes=[len(n.routing) for n in net.nodes.values()])
    addrs = list(net.nodes)
    for _ in range(count):
        target = net.rng.randbytes(20)
        src = net.rng.choice(addrs)
        node = net.nodes[src]
        finished: list[Lookup] = []
        node.lookup(target, net.now, on_done=finished.append)
        net.send(src, node.take_datagrams())
        net.run_while(lambda f=finished: not f, limit=60.0)  # type: ignore[misc]
        assert finished, "lookup did not finish within 60 simulated seconds"
        lk = finished[0]
        truth = net.true_closest(target, k, exclude=node.node_id)
        got = [n.node_id for n in lk.results(k)]
        stats.queries.append(lk.queries)
        stats.round_trips.append(lk.round_trips)
        stats.overlap.append(len(set(truth) & set(got)))
        stats.nearest_found.append(bool(got) and got[0] == truth[0])
    return stats
