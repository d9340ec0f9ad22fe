# -*- test-case-name: tests.test_dht_node -*-
"""How well the DHT's lookups converge in a simulated network of sans-IO nodes.

Run ``python3 -m tools.bench.dht`` (2,000 nodes, 200 lookups: a few minutes).  The nodes join
one after another through the first node on `tools.simnet.SimNet` (50 ms one-way latency, no
jitter, so every link keeps its order; each node at its own fake IPv4 address in 10.0.0.0/8,
so per-IP rate limits behave as on a real network), each driven by the node's own
`pqi.driver.CoreDriver` on the simulated clock; then lookups of random ids start from random
nodes, one at a time.  For each lookup it records the queries sent, the round trips (the
longest chain of "node A named node B" among the nodes that answered), and how many of the
true 8 closest nodes it returned.  The figures are in ``docs/dht.md``.

`dht_network` and `measure_lookups` are also what the DHT tests simulate with.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import dataclass, field

from dht.node import DHTConfig, DHTNode
from dht.routing import id_to_int
from tools.simnet import LinkModel, SimNet, SimNode

__all__ = ["main", "dht_network", "add_dht_node", "measure_lookups", "true_closest",
           "LookupStats", "LOOKUP_LIMIT"]

#: Simulated seconds one measured lookup may take before the bench calls it stuck.
LOOKUP_LIMIT = 60.0


def add_dht_node(net: SimNet, rng: random.Random, config: DHTConfig | None = None) -> SimNode:
    """A new `DHTNode` with an id from ``rng`` at the next free 10.x.y.z address of ``net``."""
    n = len(net.nodes) + 1
    addr = (f"10.{(n >> 16) & 0xFF}.{(n >> 8) & 0xFF}.{n & 0xFF}", 6881)
    node = DHTNode(rng.randbytes(20), config, rng=random.Random(rng.randrange(1 << 32)),
                   now=net.clock.seconds())
    return net.add(addr, node)


def dht_network(seed: int, count: int, *, latency: float = 0.05, join_interval: float = 0.05,
                settle: float = 120.0, config: DHTConfig | None = None) -> SimNet:
    """``count`` nodes joining one after another through the first one, then ``settle``
    simulated seconds; ``net.random`` also draws the nodes' ids."""
    net = SimNet(seed, default=LinkModel(delay=latency))
    first = add_dht_node(net, net.random, config).addr
    for _ in range(count - 1):
        node = add_dht_node(net, net.random, config)
        net.feed(node.addr, node.core.bootstrap, [first])
        net.run(join_interval)
    net.run(settle)
    return net


def true_closest(net: SimNet, target: bytes, k: int, *, exclude: bytes = b"") -> list[bytes]:
    """The ids of the ``k`` nodes of ``net`` nearest ``target`` (leaving ``exclude`` out)."""
    t = id_to_int(target)
    ids = (n.core.node_id for n in net.nodes.values() if n.core.node_id != exclude)
    return sorted(ids, key=lambda i: id_to_int(i) ^ t)[:k]


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


def measure_lookups(net: SimNet, count: int, *, k: int = 8) -> LookupStats:
    """Run ``count`` lookups of random ids from random nodes, one at a time."""
    stats = LookupStats(table_sizes=[len(n.core.routing) for n in net.nodes.values()])
    addrs = list(net.nodes)
    for _ in range(count):
        target = net.random.randbytes(20)
        src = net.nodes[net.random.choice(addrs)]
        lk = net.feed(src.addr, src.core.lookup, target)
        net.run(LOOKUP_LIMIT, until=lambda lk=lk: lk.done)  # type: ignore[misc]
        if not lk.done:
            raise RuntimeError(f"lookup did not finish within {LOOKUP_LIMIT} simulated seconds")
        src.outputs.clear()  # the LookupDone event: nobody else waits for it
        truth = true_closest(net, target, k, exclude=src.core.node_id)
        got = [n.node_id for n in lk.results(k)]
        stats.queries.append(lk.queries)
        stats.round_trips.append(lk.round_trips)
        stats.overlap.append(len(set(truth) & set(got)))
        stats.nearest_found.append(bool(got) and got[0] == truth[0])
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools.bench.dht", description=__doc__)
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--settle", type=float, default=60.0,
                        help="simulated seconds after the last join before measuring")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    net = dht_network(args.seed, args.nodes, settle=args.settle)
    built = time.perf_counter()
    stats = measure_lookups(net, args.lookups)
    done = time.perf_counter()
    s = stats.summary()
    print(f"nodes {args.nodes}, seed {args.seed}, {net.delivered} datagrams delivered, "
          f"{net.clock.seconds():.0f} simulated s")
    print(f"build {built - started:.1f} s, lookups {done - built:.1f} s (wall clock)")
    print(f"lookups: {s['lookups']:.0f}")
    print(f"queries per lookup: median {s['queries_median']:.1f}, p95 {s['queries_p95']:.0f}")
    print(f"round trips per lookup: median {s['round_trips_median']:.1f}, "
          f"p95 {s['round_trips_p95']:.0f}")
    print(f"true 8 closest found: mean {s['closest8_overlap_mean']:.2f} of 8; "
          f"nearest found in {100 * s['nearest_found_rate']:.1f}% of lookups")
    print(f"routing table size: median {s['table_size_median']:.0f}, "
          f"p5 {s['table_size_p5']:.0f}, p95 {s['table_size_p95']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
